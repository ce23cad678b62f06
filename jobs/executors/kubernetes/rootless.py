"""The rootless BuildKit daemon of a build pod (``builder: buildkit-rootless``, issue 24):
a sidecar that serves that one build, so that no pod anywhere is privileged and every one
passes Pod Security ``baseline``. Pure functions: no API calls.

What it needs, measured on the test nodes (docs/kubernetes.md, "Which builder"):

- no seccomp profile of its own: with the runtime's default, rootlesskit cannot make its
  user namespace (``fork/exec /proc/self/exe: operation not permitted``); ``baseline``
  allows an unset profile (``Unconfined`` it refuses), and the node's default applies. So
  the pod's ``securityContext`` sets no profile and the builder container sets
  ``RuntimeDefault`` for itself;
- privilege escalation and ``CAP_SETUID``/``CAP_SETGID`` in its bounding set, for
  ``newuidmap``/``newgidmap`` (file capabilities) to write the namespace's id maps; every
  other capability is dropped (inside its user namespace it has them all again);
- ``--oci-worker-no-process-sandbox``: a process sandbox needs a new ``/proc`` mount,
  which a pod's masked ``/proc`` forbids (``procMount: Unmasked`` is not ``baseline``).

It is a native sidecar (an init container with ``restartPolicy: Always``, Kubernetes 1.29+),
so the pod ends with the builder. It has no startup probe: the kubelet starts the builder as
soon as the daemon's container runs, and the builder waits for the daemon's socket itself
(builder/'s engine asks it every 0.1 s, up to 120 s, and names a daemon that never answers),
while it fetches the repository. A probe made the builder wait until the kubelet noticed the
probe's success: about 0.5 s of every build pod's start (bench/README.md). Its state, socket
and temporary files are emptyDirs of the pod; its ``buildkitd.toml`` comes from
``rootless_buildkit.config_map``. Layers start empty: the registry cache (``buildx_args``)
brings the repository's previous ones.
"""

from __future__ import annotations

import json
from typing import Any

from ...repo2docker.command import buildx_args
from ...settings import Settings

CONTAINER = "buildkitd"
SOCKET_DIR = "/run/buildkit"
SOCKET = f"unix://{SOCKET_DIR}/buildkitd.sock"
HOME = "/home/user"
"""The rootless image's user's home (upstream's layout: user 1000, ``~/.local/share/
buildkit`` its state, ``~/.config/buildkit/buildkitd.toml`` its configuration)."""
UID = 1000
BUILDX_ARGS_ENV = "BINDERHUB_SERVICE_BUILDX_ARGS"


def daemon_volumes(settings: Settings) -> list[dict[str, Any]]:
    """The daemon's emptyDirs (socket, state, temporary files) and its configuration."""
    volumes: list[dict[str, Any]] = [
        {"name": "buildkit-socket", "emptyDir": {}},
        {"name": "buildkit-state", "emptyDir": {}},
        {"name": "buildkit-tmp", "emptyDir": {}},
    ]
    config_map = settings.kubernetes.rootless_buildkit.config_map
    if config_map is not None:
        volumes.append(
            {
                "name": "buildkit-config",
                "configMap": {
                    "name": config_map,
                    "items": [{"key": "buildkitd.toml", "path": "buildkitd.toml"}],
                },
            }
        )
    return volumes


def daemon_container(
    settings: Settings,
    extra_mounts: list[dict[str, Any]] | None = None,
    extra_env: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The sidecar: ``rootlesskit buildkitd`` (the image's entrypoint) listening on the
    pod's socket, without a startup probe (the builder waits for the socket: module
    docstring); with ``extra_mounts`` and ``extra_env`` (the CA bundle and the proxy,
    ``trust.daemon_trust``)."""
    rootless = settings.kubernetes.rootless_buildkit
    mounts: list[dict[str, Any]] = [
        {"name": "buildkit-socket", "mountPath": SOCKET_DIR},
        {"name": "buildkit-state", "mountPath": f"{HOME}/.local/share/buildkit"},
        {"name": "buildkit-tmp", "mountPath": f"{HOME}/.local/tmp"},
    ]
    if rootless.config_map is not None:
        mounts.append(
            {"name": "buildkit-config", "mountPath": f"{HOME}/.config/buildkit", "readOnly": True}
        )
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": rootless.image,
        "imagePullPolicy": rootless.image_pull_policy,
        "restartPolicy": "Always",
        "args": ["--oci-worker-no-process-sandbox", "--addr", SOCKET],
        "securityContext": {
            "runAsUser": UID,
            "runAsGroup": UID,
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": True,
            "privileged": False,
            "capabilities": {"drop": ["ALL"], "add": ["SETUID", "SETGID"]},
        },
        "volumeMounts": mounts + list(extra_mounts or []),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if extra_env:
        container["env"] = list(extra_env)
    if rootless.resources:
        container["resources"] = {key: dict(value) for key, value in rootless.resources.items()}
    return container


def builder_mounts(
    settings: Settings, image: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """What the builder container gets: the daemon's socket (``BUILDKIT_HOST``) and the
    build's registry cache arguments; and the daemon's volumes for the pod."""
    # the service's cache settings (cache, cache_image_manifest, ...) with the pod's daemon
    cache = settings.buildkit.model_copy(update={"host": SOCKET})
    env = [
        {"name": "BUILDKIT_HOST", "value": SOCKET},
        {"name": BUILDX_ARGS_ENV, "value": json.dumps(buildx_args(cache, image))},
    ]
    mounts = [{"name": "buildkit-socket", "mountPath": SOCKET_DIR}]
    return daemon_volumes(settings), mounts, env
