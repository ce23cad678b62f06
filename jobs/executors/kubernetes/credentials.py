"""A build pod's git credential: a Secret of its own, only for its repository (issue 20).

Build pods used to get one git credential for every repository in their environment
(``GIT_CREDENTIAL_ENV``), answered by a credential helper to whichever host asked: a
submodule on another host got it, and a symlink to ``/proc/self/environ`` could print it.
Now, when a credential of ``forges`` covers the build's repository
(``CredentialSet.best``, as for the service's own ``git ls-remote``), the service makes a
Secret for that build alone holding ``Credential.git_config`` (an ``http.<prefix>``
``extraHeader`` for that prefix only), owned by the build's Job, and the pod mounts it
read-only as ``GIT_CONFIG_GLOBAL``. The Job refers to the Secret by name: no secret value
is ever part of a Job. The Secret goes when the build ends (the service deletes it) and
in any case with its Job (Kubernetes' garbage collector follows the owner reference).

Pure functions; ``kubernetes.py`` creates and deletes the Secrets.
"""

from __future__ import annotations

from typing import Any

from ...forges.credentials import Credential, credential_set
from ...model import Build
from ...settings import Settings

GIT_CONFIG_DIR = "/etc/binderhub-service-git"
"""Where a build pod finds its git configuration file (``GIT_CONFIG_GLOBAL``)."""
GIT_CONFIG_FILE = "config"
DATA_KEY = "gitconfig"
VOLUME = "git-config"


def git_credential(build: Build, settings: Settings) -> Credential | None:
    """The credential of ``settings.forges`` that covers where ``build.repo`` is fetched
    from (``Settings.fetch_url``: a mirror's own), if any; none for a record's build
    (its page is no git repository, whatever host it is on)."""
    if build.provider != "git":
        return None
    return credential_set(settings.forges).best(settings.fetch_url(build.repo))


def git_secret_name(build: Build) -> str:
    """The name of ``build``'s git credential Secret: its Job's name and 8 hex digits of
    its build id (a new build of the same image never meets an older build's Secret
    that the garbage collector has not removed yet)."""
    return f"{build.name}-git-{build.id[:8]}"


def git_config_mounts(
    build: Build, settings: Settings
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The volumes, mounts and environment that give ``build``'s pod its repository's
    git credential (``GIT_CONFIG_GLOBAL``, the Secret mounted read-only); nothing when
    no credential covers the repository. Pure."""
    if git_credential(build, settings) is None:
        return [], [], []
    volume = {
        "name": VOLUME,
        "secret": {
            "secretName": git_secret_name(build),
            "items": [{"key": DATA_KEY, "path": GIT_CONFIG_FILE}],
        },
    }
    mount = {"name": VOLUME, "mountPath": GIT_CONFIG_DIR, "readOnly": True}
    env = {"name": "GIT_CONFIG_GLOBAL", "value": f"{GIT_CONFIG_DIR}/{GIT_CONFIG_FILE}"}
    return [volume], [mount], [env]


def make_git_secret(
    build: Build, credential: Credential, namespace: str, job_uid: str, labels: dict[str, str]
) -> dict[str, Any]:
    """The Secret holding ``credential``'s git configuration for ``build``, with
    ``labels`` (its Job's), owned by its Job (``job_uid``) and immutable. Pure."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": git_secret_name(build),
            "namespace": namespace,
            "labels": dict(labels),
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": build.name, "uid": job_uid}
            ],
        },
        "type": "Opaque",
        "immutable": True,
        "stringData": {DATA_KEY: credential.git_config()},
    }
