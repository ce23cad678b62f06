"""The sections of the settings file: one model per top-level key (and its parts).

``jobs.settings`` puts them together into ``Settings`` and loads them; the field
docstrings here become docs/configuration.md (``jobs.settings_docs``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)


class ConfigError(Exception):
    """The configuration is invalid; the message names every offending key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class RegistrySettings(_Section):
    url: str | None = None
    """Base URL of the registry's HTTP API (``https://registry.example.org``). Default:
    derived from the host of ``image_prefix``, over plain HTTP for loopback hosts and
    HTTPS otherwise."""

    username: str | None = None
    """User name for the registry: with ``password``, the one credential setting for
    pushes (every executor) and the "does this image exist" check. The local executor
    gives each build a ``config.json`` made from it; the Kubernetes executor's build pods
    read ``kubernetes.docker_config_secret`` (the Helm chart makes that Secret from
    these values)."""

    password: SecretStr | None = None
    """Password or token for ``username``."""

    docker_config: Path | None = None
    """A docker ``config.json`` whose ``auths`` entry for the registry host holds the
    credentials; an alternative to ``username``/``password`` for the check and the
    pushes. Read again whenever the file changes (rotated tokens need no restart);
    each local build pushes with the file as it is when it starts."""

    timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for the registry before the check counts as failed (a failed
    check is an error, never taken for "image missing")."""

    cache_seconds: float = Field(default=3600.0, ge=0)
    """How long a positive "image exists" answer is remembered in memory."""

    @model_validator(mode="after")
    def _check_pair(self) -> RegistrySettings:
        if self.password is not None and not self.username:
            raise ValueError("registry.password is set but registry.username is not")
        return self


class Repo2DockerSettings(_Section):
    command: list[str] | None = None
    """Command that runs repo2docker for the local executor. Default: the repo2docker
    installed with this service (``python -m repo2docker``)."""

    version: str = Field(default="2026.4.0", pattern=r"^\d+\.\d+(\.\d+)?$")
    """repo2docker version builds use; the service refuses to start when the local
    executor's repo2docker (the one installed with it, or ``command --version``) is
    another. 2025.8 and later build with ``docker buildx`` through the ``buildkit``
    engine of ``builder/`` (see ``buildkit``); 2024.7.0, the newest that builds through
    the Docker API, stays selectable: ``scripts/ensure-repo2docker.sh 2024.7.0`` makes a
    virtualenv with it, to name in ``command``."""

    extra_args: list[str] = []
    """Extra command-line arguments, placed before the repository URL."""

    target_repo_dir: str | None = None
    """Where the repository's content goes in the image (``--target-repo-dir``);
    default: the user's home directory, repo2docker's own default."""

    user_id: int = Field(default=1000, ge=1)
    """UID of the image's default user (``--user-id``)."""

    user_name: str = Field(default="jovyan", pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    """Name of the image's default user (``--user-name``)."""


class BuildKitSettings(_Section):
    host: str | None = None
    """BuildKit daemon that builds of repo2docker 2025.8+ use, through buildx's
    ``remote`` driver: ``unix:///path`` or ``tcp://host:port`` (given to the ``buildkit``
    engine as ``BUILDKIT_HOST``). ``make run`` starts one
    (``scripts/ensure-buildkitd.sh``) and sets this. Default: buildx's current builder,
    i.e. the Docker daemon's own BuildKit (buildx's ``docker`` driver), which cannot
    export a cache."""

    tls_dir: Path | None = None
    """Directory with ``ca.pem``, ``cert.pem`` and ``key.pem`` for mTLS to a ``tcp://``
    ``host`` (``BUILDKIT_TLS_DIR``)."""

    tls_servername: str | None = None
    """Name the daemon's certificate must carry, when not the host of ``host``."""

    cache: bool = True
    """With ``host``: import and export BuildKit's layer cache through the registry,
    one cache per repository next to its images (``<image repository>:buildcache``),
    so that a commit changing only content reuses the environment's layers on any
    builder. A failed export leaves a warning in the log and the build succeeds; a
    missing cache is no error."""

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str | None) -> str | None:
        if value is not None and not (
            value.startswith(("unix:///", "tcp://")) and value not in ("tcp://",)
        ):
            raise ValueError("must be unix:///path or tcp://host:port")
        return value


class PhaseTimeouts(_Section):
    fetch: float | None = Field(default=600.0, gt=0)
    """Seconds repo2docker may take to clone the repository and check out the commit
    (a git server that never answers fails here)."""

    build: float | None = Field(default=None, gt=0)
    """Seconds building the image may take, from the end of the fetch until the image
    is exported. Default: only ``build_timeout``."""

    push: float | None = Field(default=1800.0, gt=0)
    """Seconds pushing the image may take, from the start of its export until the
    registry has its manifest."""

    cache_export: float | None = Field(default=600.0, gt=0)
    """Seconds the export of BuildKit's layer cache to the registry may take after the
    image was pushed (or after it started, if that was later). When it runs out the
    export is cut, noted in the log, and the build is ``built`` as the registry has the
    image; the next build of the repository finds less cache."""

    def of(self, phase: str) -> float | None:
        """The limit of ``phase`` (a field's name; ``jobs.phases.Phase``)."""
        value = getattr(self, phase)
        return None if value is None else float(value)


class LimitSettings(_Section):
    max_concurrent_builds: int = Field(default=2, ge=1)
    """Builds that may run at once; more wait in the queue."""

    max_concurrent_builds_per_repo: int = Field(default=1, ge=1)
    """Builds of one repository that may run at once."""

    build_timeout: float = Field(default=3600.0, gt=0)
    """Seconds a build may run, all phases together, before it is stopped and marked
    failed (not remembered). The registry is asked first: an image that is there makes
    the build ``built``."""

    phase_timeouts: PhaseTimeouts = PhaseTimeouts()
    """Deadlines of the phases of a build, each counted from the start of its phase
    (``null``: none of its own). A phase that runs out stops the build, which fails
    (not remembered) unless the registry has the image; ``build_timeout`` caps them
    all."""

    failure_memory: float = Field(default=86400.0, ge=0)
    """Seconds a failure of the commit's own (a failing Dockerfile step, an environment
    file repo2docker refuses) is remembered: until then, requests for that commit
    answer `failed-before` unless forced. 0 remembers no failure."""


class BuildLogSettings(_Section):
    max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    """Bytes of log text stored for one build (all its attempts together). At the cap
    one line says that the log was cut, and nothing more of it is stored; the build
    goes on and its outcome is recorded. (Each line is also cut to its first 64 KiB,
    with a marker.)"""

    retention_days: float = Field(default=30.0, ge=0)
    """Days the log lines of a finished build are kept; the server then deletes them
    (the build's record stays). 0 keeps them forever."""


class QuotaLimits(_Section):
    builds_per_window: int = Field(default=0, ge=0)
    """Builds that may be started in any ``window`` seconds (0: no limit). A build
    counts from the moment it is accepted (queued), unless it is cancelled or
    superseded before it starts; cache hits and joins of a running build never count."""

    window: float = Field(default=3600.0, gt=0)
    """Seconds of the sliding window ``builds_per_window`` counts in."""

    max_queued: int = Field(default=0, ge=0)
    """Builds that may be queued or running at once (0: no limit)."""

    @property
    def enabled(self) -> bool:
        return bool(self.builds_per_window or self.max_queued)


class QuotaSettings(_Section):
    per_user: QuotaLimits = QuotaLimits()
    """For each requester: an API token's name, or a JupyterHub user or service."""

    per_repo: QuotaLimits = QuotaLimits()
    """For each repository, counting the builds people asked for (push webhooks and
    configured repositories are neither refused nor counted)."""


class RepoSettings(_Section):
    url: str
    """The repository's URL (canonicalised: case-insensitive hosts lower-cased, no
    ``.git``), as in ``https://github.com/my-org/my-repo``."""

    branches: list[str] | None = None
    """Branch name patterns (``fnmatch``) whose pushes build. Default: only the
    repository's default branch, as the push webhook names it."""

    tags: list[str] = ["*"]
    """Tag name patterns whose pushes build. Default: every tag; ``[]``: none."""

    @field_validator("url")
    @classmethod
    def _canonical(cls, value: str) -> str:
        from .errors import InvalidRequest
        from .specs import canonical_repo_url

        try:
            return canonical_repo_url(value, allow_file=True)
        except InvalidRequest as e:
            raise ValueError(str(e)) from None


class WebhookSettings(_Section):
    github_secret: SecretStr | None = None
    """Secret of the GitHub (or Gitea) webhooks: their ``X-Hub-Signature-256`` is
    checked against it. Without it, ``/hooks/github`` refuses every delivery."""

    gitlab_token: SecretStr | None = None
    """Secret token of the GitLab webhooks (``X-Gitlab-Token``). Without it,
    ``/hooks/gitlab`` refuses every delivery."""

    max_body_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    """Largest webhook body accepted (GitHub and GitLab cap theirs at 25 MB)."""

    deliveries_remembered: int = Field(default=10_000, ge=1)
    """How many delivery ids are remembered, so that a redelivery changes nothing."""

    reconcile_interval: float = Field(default=0.0, ge=0)
    """Seconds between checks of the configured ``repos`` for commits whose image is
    missing (pushes whose webhook never arrived). 0 turns the check off."""


class ApiTokenSettings(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    """Who holds the token; shown in logs instead of the token."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """Hex SHA-256 of the token (the token itself is never stored): e.g.
    ``printf %s "$TOKEN" | sha256sum``."""

    scopes: list[Literal["builds:read", "builds:write"]] = ["builds:read"]
    """What the token may do: ``builds:read`` (builds, logs, images) and
    ``builds:write`` (request and cancel builds)."""


class AuthSettings(_Section):
    tokens: list[ApiTokenSettings] = []
    """API tokens, sent as ``Authorization: Bearer <token>``."""

    open_read: bool = False
    """Let anyone read builds, logs and images without a token (for development)."""


class SecretKeyRef(_Section):
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
    """Name of a Secret in the builds' namespace."""

    key: str = Field(pattern=r"^[-._a-zA-Z0-9]{1,253}$")
    """Key within the Secret."""


class KubernetesSettings(_Section):
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

    builder_image: str = "quay.io/jupyterhub/repo2docker:2024.07.0"
    """Image the build pods run; it must contain ``repo2docker.version``."""

    builder_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """``imagePullPolicy`` of the builder container."""

    builder_command: list[str] = ["jupyter-repo2docker"]
    """Command that starts repo2docker in the builder image; its arguments follow."""

    builder: Literal["docker-socket", "buildkit"] = "docker-socket"
    """How builds reach a container engine. ``docker-socket``: a Docker daemon's socket
    on the node (the host's or a docker-in-docker DaemonSet's), by ``hostPath``.
    ``buildkit``: the BuildKit daemon at ``buildkit_host``, over mTLS with the
    certificates of ``buildkit_tls_secret``; build pods mount no ``hostPath``, are not
    privileged, and need a builder image with repo2docker 2025.8+, the docker CLI,
    buildx and the ``buildkit`` engine (``images/repo2docker/Dockerfile``)."""

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

    @model_validator(mode="after")
    def _check_buildkit(self) -> KubernetesSettings:
        if self.builder == "buildkit" and self.buildkit_host is None:
            raise ValueError(
                "kubernetes.buildkit_host is needed with builder: buildkit "
                "(the BuildKit daemon's tcp://host:port, as build pods reach it)"
            )
        return self


class ForgeHostSettings(_Section):
    kind: Literal["github", "gitlab"]
    """``github`` (github.com or GitHub Enterprise Server) or ``gitlab`` (gitlab.com or
    self-managed GitLab)."""

    url: str
    """Web address of the forge, e.g. ``https://github.com`` or
    ``https://gitlab.example.org`` (with a path if GitLab is served under one).
    Repositories on this host (any scheme, any port) belong to this forge."""

    api_url: str | None = None
    """Base URL of the REST API. Default: ``https://api.github.com`` for github.com,
    ``<url>/api/v3`` for GitHub Enterprise, ``<url>`` for GitLab (``/api/v4`` is added)."""

    token: SecretStr | None = None
    """API token (GitHub: a personal access or app installation token; GitLab: a
    personal, group or project access token). Without it nothing is asked of the API:
    refs are resolved with ``git ls-remote`` and no statuses are reported. It is also
    offered to git for private repositories of this host."""

    git_username: str | None = None
    """User name sent with ``token`` to git over HTTPS. Default: ``x-access-token``
    (GitHub), ``oauth2`` (GitLab)."""

    resolve_refs: bool = True
    """Resolve branches, tags and short SHAs through the API (with conditional
    requests) instead of ``git ls-remote``."""

    report_status: bool = True
    """Set a commit status on every built commit (pending, success, failure)."""

    timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for the API."""

    @field_validator("url", "api_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be an http(s) URL, e.g. https://github.example.org")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("must not carry credentials, a query or a fragment")
        return value.rstrip("/")


class GitCredentialSettings(_Section):
    url: str
    """Repositories these credentials are for: a URL prefix matched as git matches
    ``http.<url>.*`` settings (scheme, host with ``*`` for one name label, port, then
    whole path segments): ``https://github.com/my-org`` covers every repository of
    ``my-org``, ``https://git.example.org`` a whole host. The most specific wins."""

    username: str = "x-access-token"
    """User name for HTTP Basic authentication."""

    password: SecretStr
    """Password or access token. Never logged, never in a URL or on a command line."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        from .forges.credentials import UrlPattern

        UrlPattern.parse(value)  # raises ValueError naming the problem
        return value.rstrip("/")


class ForgeSettings(_Section):
    hosts: list[ForgeHostSettings] = []
    """GitHub and GitLab instances whose APIs resolve refs, receive commit statuses
    and get webhooks installed (``binderhub-service hooks install``)."""

    credentials: list[GitCredentialSettings] = []
    """Git credentials for private repositories, per host or per repository prefix;
    used to resolve refs and handed to local builds through git's configuration
    environment (``GIT_CONFIG_COUNT``)."""

    status_context: str = Field(default="binderhub-service", min_length=1, max_length=255)
    """The ``context`` (GitHub) or ``name`` (GitLab) of the commit statuses, so that
    several services can report on one commit."""


class JupyterHubSettings(_Section):
    enabled: bool = False
    """Run as a JupyterHub service: accept JupyterHub API tokens and log browsers in
    through the hub's OAuth. Every field below left empty is read from the environment
    JupyterHub gives the services it starts (``JUPYTERHUB_*``)."""

    api_url: str | None = None
    """The hub's REST API, e.g. ``http://hub:8081/hub/api``. Default:
    ``$JUPYTERHUB_API_URL``."""

    api_token: SecretStr | None = None
    """This service's API token, as registered in the hub's ``services``; it is also the
    OAuth client secret. Default: ``$JUPYTERHUB_API_TOKEN``."""

    service_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._~-]{1,255}$")
    """The service's name in the hub's ``services``. Default:
    ``$JUPYTERHUB_SERVICE_NAME``, else ``binder``."""

    client_id: str | None = None
    """OAuth client id. Default: ``$JUPYTERHUB_CLIENT_ID``, else
    ``service-<service_name>`` (the hub's default for services)."""

    oauth_callback_url: str | None = None
    """Where the hub sends browsers back after login; it must equal the service's
    ``oauth_redirect_uri`` in the hub. Default: ``$JUPYTERHUB_OAUTH_CALLBACK_URL``, else
    ``<base_path>oauth_callback``."""

    authorize_url: str | None = None
    """The hub's OAuth authorize page as browsers reach it. Default: derived from
    ``$JUPYTERHUB_PUBLIC_HUB_URL``, else ``/hub/api/oauth2/authorize`` (same host)."""

    access_scopes: list[str] = []
    """Hub scopes of which a token needs one to use this service at all. Default:
    ``access:services!service=<service_name>`` and ``access:services``."""

    allowed_users: list[str] = []
    """Hub users who may request builds. With this and ``allowed_groups`` both empty,
    every user with an access scope may; otherwise the others may only read."""

    allowed_groups: list[str] = []
    """Hub groups whose members may request builds (see ``allowed_users``)."""

    cache_seconds: float = Field(default=60.0, ge=0)
    """How long the hub's answer about a token is remembered (a revoked token keeps
    working at most this long)."""

    session_seconds: int = Field(default=8 * 3600, ge=60)
    """Lifetime of the browser session cookie set after the OAuth login (never longer
    than the hub's token)."""

    cookie_secret: SecretStr | None = None
    """Key that signs the session cookies. Default: derived from ``api_token``, so that
    every replica and restart shares it."""

    timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for the hub's API."""

    @model_validator(mode="after")
    def _check_enabled(self) -> JupyterHubSettings:
        # Checked here, with the environment, so that start-up names what is missing.
        if self.enabled:
            for name, env in (
                ("api_url", "JUPYTERHUB_API_URL"),
                ("api_token", "JUPYTERHUB_API_TOKEN"),
            ):
                if getattr(self, name) is None and not os.environ.get(env):
                    raise ValueError(f"enabled needs {name} (or ${env} in the environment)")
        return self


class HubProfileSettings(_Section):
    """What ``GET /api/v1/profiles`` answers: a ready KubeSpawner ``profile_list`` (one
    profile whose ``image`` option offers the newest image of each built branch and tag)."""

    display_name: str = "Prebuilt repository images"
    """The profile's name on the hub's spawn page."""

    description: str = "Images built by binderhub-service, newest first"
    """The profile's description on the spawn page."""

    slug: str = Field(default="binderhub-service", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    """The profile's key in the spawn form (``profile-option-<slug>--image``)."""

    ref_kinds: list[Literal["branch", "tag", "head", "commit"]] = ["branch", "tag", "head"]
    """Which built refs become choices: branches, tags, the default branch (``head``),
    bare commits."""

    any_image_choice: bool = False
    """Add a free-text choice that admits any image under ``image_prefix`` (with a tag
    or digest), e.g. one a user built with jupyterhub-fancy-profiles."""

    copy_repo_to_home: str | None = Field(default=None, pattern=r"^/")
    """A folder under the users' home (e.g. ``/home/jovyan``): each choice gets a start
    hook that copies ``repo2docker.target_repo_dir`` into ``<folder>/<repository
    name>`` without overwriting anything (docs/home-folder.md). Needs
    ``repo2docker.target_repo_dir``."""

    kubespawner_override: dict[str, Any] = {}
    """KubeSpawner settings of the profile (``cpu_limit``, ``mem_limit``, …)."""
