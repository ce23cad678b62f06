"""What a build pod trusts: ``kubernetes.ca_bundle`` joined to the image's public
authorities by an init container, and the environment and configuration that make
the builder's git, buildx (Go), Python and hg, and an in-pod BuildKit daemon, use it.
Pure functions: no API calls.
"""

from __future__ import annotations

from typing import Any

from ...settings import Settings

CA_DIR = "/etc/binderhub-service-ca"
"""Where the ``ca-bundle`` init container finds ``kubernetes.ca_bundle`` (``ca.crt``)."""
CA_FILE = "/tmp/binderhub-service-ca/ca-certificates.crt"  # noqa: S108 - the pod's emptyDir
"""The image's public authorities and ``kubernetes.ca_bundle``'s, which the ``ca-bundle``
init container writes into the pod's ``/tmp``: git, buildx and Python are told this file,
which replaces their defaults (hence the image's own in it)."""
HG_CONFIG_FILE = "/tmp/.hgrc"  # noqa: S108 - the pod's emptyDir
"""The builder's ``$HOME/.hgrc``, where the ``ca-bundle`` init container names ``CA_FILE``
(``web.cacerts``): ``hg`` reads no ``SSL_CERT_FILE``, and takes certifi's authorities
when certifi is installed, as beside repo2docker (``hg help config.web``)."""


def trusted_authorities(
    settings: Settings, security: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """With ``kubernetes.ca_bundle``: its ConfigMap as a volume, and the ``ca-bundle``
    init container that writes ``CA_FILE`` from the image's bundle and it, and
    ``HG_CONFIG_FILE`` naming it; the builder's environment names the file
    (``trust_env``). ``security``: the init container's security context
    (``pod.container_security``). Nothing without one. Pure."""
    ref = settings.kubernetes.ca_bundle
    if ref is None:
        return [], []
    volume = {
        "name": "ca-bundle",
        "configMap": {"name": ref.name, "items": [{"key": ref.key, "path": "ca.crt"}]},
    }
    folder = CA_FILE.rpartition("/")[0]
    image_bundle = "/etc/ssl/certs/ca-certificates.crt"  # Debian's, as in images/repo2docker
    script = (
        f"set -e; mkdir -p {folder}; {{ cat {image_bundle} 2>/dev/null || true; "
        f"echo; cat {CA_DIR}/ca.crt; }} > {CA_FILE}; "
        f"printf '[web]\\ncacerts = %s\\n' {CA_FILE} > {HG_CONFIG_FILE}"
    )
    init = {
        "name": "ca-bundle",
        "image": settings.kubernetes.builder_image,
        "imagePullPolicy": settings.kubernetes.builder_image_pull_policy,
        "command": ["sh", "-c", script],
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the pod's emptyDir
            {"name": "ca-bundle", "mountPath": CA_DIR, "readOnly": True},
        ],
        "securityContext": security,
    }
    return [volume], [init]


def trust_env(settings: Settings) -> list[dict[str, Any]]:
    """The builder's environment that makes git, buildx (Go) and Python trust
    ``CA_FILE`` (with ``kubernetes.ca_bundle``), and ``kubernetes.env`` (e.g. a proxy)."""
    env: list[dict[str, Any]] = []
    if settings.kubernetes.ca_bundle is not None:
        env += [
            {"name": name, "value": CA_FILE}
            for name in ("GIT_SSL_CAINFO", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
        ]
    env += [{"name": k, "value": v} for k, v in sorted(settings.kubernetes.env.items())]
    return env


def daemon_trust(settings: Settings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What a BuildKit daemon inside the build pod (``buildkit-rootless``) gets, as the
    chart's shared daemon does: its mount of ``kubernetes.ca_bundle``'s volume, named by
    ``SSL_CERT_DIR`` after the image's own directory (Go reads the image's bundle file and
    every file of those directories), and ``kubernetes.env`` (the proxy: the daemon pulls
    base images and pushes). Pure."""
    mounts: list[dict[str, Any]] = []
    env: list[dict[str, Any]] = []
    if settings.kubernetes.ca_bundle is not None:
        mounts.append({"name": "ca-bundle", "mountPath": CA_DIR, "readOnly": True})
        env.append({"name": "SSL_CERT_DIR", "value": f"/etc/ssl/certs:{CA_DIR}"})
    env += [{"name": k, "value": v} for k, v in sorted(settings.kubernetes.env.items())]
    return mounts, env
