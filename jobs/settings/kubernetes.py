"""``kubernetes``: where and how build Jobs run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..release import released_builder_image
from .base import Section


class SecretKeyRef(Section):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
    """Name of a Secret in the builds' namespace."""

    key: str = Field(pattern=r"^[-._a-zA-Z0-9]{1,253}$")
    """Key within the Secret."""


class ConfigMapKeyRef(Section):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
    """Name of a ConfigMap in the builds' namespace."""

    key: str = Field(pattern=r"^[-._a-zA-Z0-9]{1,253}$")
    """Key within the ConfigMap."""


class BuildKitTlsKeys(Section):
    ca: str = Field(default="ca.pem", pattern=r"^[-._a-zA-Z0-9]{1,253}$")
    """The key of the CA's certificate (cert-manager's: ``ca.crt``)."""

    cert: str = Field(default="cert.pem", pattern=r"^[-._a-zA-Z0-9]{1,253}$")
    """The key of the client certificate (cert-manager's: ``tls.crt``)."""

    key: str = Field(default="key.pem", pattern=r"^[-._a-zA-Z0-9]{1,253}$")
    """The key of the client's private key (cert-manager's: ``tls.key``)."""


RESERVED_ENV = ("HOME", "BINDERHUB_SERVICE_", "BUILDKIT_", "BUILDX_", "DOCKER_", "GIT_",
                "SSH_", "SSL_CERT_", "CONTAINER_ENGINE_", "REQUESTS_CA_BUNDLE")  # fmt: skip
"""Names (and prefixes) of the build pod's environment that the pod spec sets itself:
``kubernetes.env`` may not change them."""


ROOTLESS_BUILDKIT_IMAGE = "docker.io/moby/buildkit:v0.34.2-rootless"


class RootlessBuildKitSettings(Section):
    image: str = ROOTLESS_BUILDKIT_IMAGE
    """The rootless daemon's image: upstream's ``moby/buildkit`` rootless variant
    (``rootlesskit buildkitd`` as its entrypoint, user 1000, ``newuidmap``/``newgidmap``
    with file capabilities, ``buildctl`` on PATH)."""

    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """``imagePullPolicy`` of the daemon's container."""

    config_map: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
    """A ConfigMap of the builds' namespace whose ``buildkitd.toml`` the daemon reads
    (registries, mirrors; the Helm chart makes it from ``builder.rootless``). Unset: the
    image's defaults."""

    resources: dict[str, dict[str, str]] = {}
    """``resources`` of the daemon's container, where the build's steps run."""


class KubernetesSettings(Section):
    namespace: str | None = None
    """Namespace of the build Jobs. Default: the namespace the service runs in (read
    from its service account), else ``default``."""

    kubeconfig: Path | None = None
    """kubeconfig file to use outside a cluster. Default: in-cluster configuration when
    running in a pod, else ``$KUBECONFIG`` or ``~/.kube/config``."""

    instance: str = Field(
        default="binderhub-service", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
    )
    """Value of the ``app.kubernetes.io/instance`` label on this service's Jobs. Services
    that share a namespace need different values; replicas of one service share it
    (they share the queue)."""

    builder_image: str = Field(default_factory=released_builder_image)
    """Image the build pods run; it must contain ``repo2docker.version``. Default: the
    builder image released with this service (``images/repo2docker/Dockerfile``, which
    ``make release`` builds and pushes next to the service's image and names in it; the
    Helm chart sets the same); empty when the service was not released, and then the
    ``kubernetes`` executor refuses to start until it is set."""

    builder_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """``imagePullPolicy`` of the builder container."""

    builder_command: list[str] = ["jupyter-repo2docker"]
    """Command that starts repo2docker in the builder image; its arguments follow."""

    builder: Literal["docker-socket", "buildkit", "buildkit-rootless"] = "docker-socket"
    """How builds reach a container engine. ``docker-socket``: a Docker daemon's socket
    on the node (the host's or a docker-in-docker DaemonSet's), by ``hostPath``.
    ``buildkit``: the BuildKit daemon at ``buildkit_host``, over mTLS with the
    certificates of ``buildkit_tls_secret``; build pods mount no ``hostPath``, are not
    privileged, and need a builder image with repo2docker 2025.8+, the docker CLI,
    buildx and the ``buildkit`` engine (``images/repo2docker/Dockerfile``).
    ``buildkit-rootless``: each build pod runs a rootless BuildKit daemon of its own
    (``rootless_buildkit``) beside the builder, reached over a Unix socket; no pod is
    privileged and every one passes Pod Security ``baseline`` (docs/kubernetes.md,
    "Which builder"), on nodes that let pods make user namespaces."""

    rootless_buildkit: RootlessBuildKitSettings = RootlessBuildKitSettings()
    """With ``builder: buildkit-rootless``: the daemon each build pod runs."""

    buildkit_host: str | None = Field(default=None, pattern=r"^tcp://[^\s/]+:[0-9]+$")
    """With ``builder: buildkit``: the daemon's address as build pods reach it,
    ``tcp://host:port`` (the Helm chart's: its ``-buildkit`` Service)."""

    buildkit_tls_secret: str | None = Field(
        default=None, pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
    )
    """With ``builder: buildkit``: a Secret in the builds' namespace with the client's
    ``ca.pem``, ``cert.pem`` and ``key.pem``, mounted into build pods (the chart makes
    it). Unset: plain TCP, which a daemon listening with TLS refuses."""

    buildkit_tls_servername: str | None = None
    """The name the daemon's certificate must carry, when not the host of
    ``buildkit_host``."""

    buildkit_tls_keys: BuildKitTlsKeys = BuildKitTlsKeys()
    """The keys of ``buildkit_tls_secret`` that hold the CA, the certificate and the key
    (the chart's: ``ca.pem``, ``cert.pem``, ``key.pem``; cert-manager's: ``ca.crt``,
    ``tls.crt``, ``tls.key``)."""

    env: dict[str, str] = {}
    """More environment variables of build pods, e.g. an egress proxy's ``HTTPS_PROXY``
    and ``NO_PROXY`` (the Helm chart sets the proxy's from its ``proxy`` values). Not for
    secrets: they are part of the Job. The names the pod sets itself (``HOME``,
    ``GIT_*``, ``BUILDKIT_*``, ``DOCKER_*``, ``SSL_CERT_*``, ...) are refused."""

    ca_bundle: ConfigMapKeyRef | None = None
    """A ConfigMap key with PEM certificate authorities that build pods trust besides
    their image's own: their clones and the token requests of their pushes (the Helm
    chart's ``caBundle``). The pod adds them to its image's bundle when it starts."""

    docker_socket: str = "/var/run/docker.sock"
    """Path of the Docker daemon's socket on the nodes."""

    service_account: str | None = None
    """Service account of the build pods (its API token is never mounted). Default: the
    namespace's ``default``."""

    docker_config_secret: SecretKeyRef | None = None
    """A Secret key holding a docker ``config.json`` with push credentials: mounted into
    build pods by ``subPath`` as ``config.json`` in a writable ``$DOCKER_CONFIG``
    (buildx writes there). Needed when ``registry`` has credentials; the Helm chart
    makes it from ``registry.username`` and ``secrets.registryPassword``. Each build pod
    reads the Secret as it is when it starts."""

    registry_credentials_secret: SecretKeyRef | None = None
    """A Secret key holding ``{"registry", "username", "password"}`` JSON, passed to
    repo2docker as ``CONTAINER_ENGINE_REGISTRY_CREDENTIALS``; an alternative to
    ``docker_config_secret``."""

    resources: dict[str, dict[str, str]] = {}
    """``resources`` of the builder container (``requests`` and ``limits``): repo2docker's
    own process, the client. They do not limit the build itself: with a Docker socket
    (the node's or docker-in-docker's) its steps run in the Docker daemon, and with a
    BuildKit daemon in that daemon's pod; limit those instead. A memory limit here still
    ends a build whose client is killed (reported as running out of memory)."""

    node_selector: dict[str, str] = {}
    """``nodeSelector`` of build pods (put them where the Docker daemon is)."""

    tolerations: list[dict[str, Any]] = []
    """``tolerations`` of build pods."""

    affinity: dict[str, Any] = {}
    """``affinity`` of build pods."""

    priority_class_name: str | None = None
    """``priorityClassName`` of build pods."""

    run_as_user: int = Field(default=0, ge=0)
    """UID the builder runs as. Access to a Docker socket means root on the node anyway;
    a non-root UID needs ``run_as_groups`` to name the socket's group."""

    run_as_groups: list[int] = []
    """Supplementary groups of the builder (e.g. the GID owning the Docker socket)."""

    ttl_seconds_after_finished: int = Field(default=3600, ge=0)
    """Seconds a finished Job (and its pod and log) stays before Kubernetes deletes it.
    Logs are in the service's store already."""

    unschedulable_timeout: float = Field(default=45.0, gt=0)
    """Seconds a build pod may stay unschedulable before the build fails (not
    remembered as the commit's failure). Raise it where a cluster autoscaler adds
    nodes for builds: that takes minutes."""

    start_timeout: float = Field(default=45.0, gt=0)
    """Seconds a build's Job may take, once let run, to start its builder container
    before the build fails with the cause the cluster gives: the newest Warning event
    of the Job or its pod (a missing Docker socket or Secret: ``FailedMount``; a Pod
    Security Admission refusal: ``FailedCreate``). Such a failure is not the commit's
    and is not remembered. A pod with no Warning (a builder image still being pulled)
    goes on waiting. The build's Job is checked every few seconds, so a build that
    cannot start fails within about this long plus five seconds."""

    lease_seconds: float = Field(default=15.0, gt=0)
    """Duration of the lease that makes one replica the queue keeper (the one that
    lets suspended Jobs run); another replica takes over this long after it stops."""

    @property
    def uses_buildkit(self) -> bool:
        """Whether build pods build with builder/'s ``buildkit`` engine (a daemon at
        ``buildkit_host``, or one in the pod)."""
        return self.builder in ("buildkit", "buildkit-rootless")

    @model_validator(mode="before")
    @classmethod
    def _removed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "git_credentials_secret" in data:
            raise ValueError(
                "git_credentials_secret was removed (issue 20): a build pod gets the one "
                "credential of forges.credentials or forges.hosts that covers its "
                "repository, as a file of its own (docs/kubernetes.md, Credentials)"
            )
        return data

    @field_validator("env")
    @classmethod
    def _check_env(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"{name!r} is not an environment variable's name")
            if name.upper().startswith(RESERVED_ENV):
                raise ValueError(f"{name} is set by the build pod itself")
        return value

    @model_validator(mode="after")
    def _check_buildkit(self) -> KubernetesSettings:
        if self.builder == "buildkit" and self.buildkit_host is None:
            raise ValueError(
                "kubernetes.buildkit_host is needed with builder: buildkit "
                "(the BuildKit daemon's tcp://host:port, as build pods reach it)"
            )
        return self
