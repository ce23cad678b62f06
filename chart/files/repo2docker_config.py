# Written by binderhub-service. Only the Git content provider: the others probe
# hosts on the internet (Dataverse fetches a host list) before looking at the URL.
# It removes the checkout's symlinks that lead out of it before repo2docker reads the
# checkout; what follows is binderhub-service's jobs/repo2docker/checkout_links.py
# as it is.

"""Symlinks of a checkout that lead out of it are removed before repo2docker reads it.

repo2docker reads the repository's files on the machine that runs it (``runtime.txt``,
``apt.txt``, ``environment.yml``, ``Dockerfile``, ``binder/``, ...) and follows symlinks
wherever they point: ``runtime.txt -> /proc/self/environ`` put the builder's environment
into the build's error (issue 20), a link to any file put its content there, and a link to
the build's own credential files would do the same. Git only ever checks out files,
directories and symlinks, so once every symlink that resolves outside the checkout is
gone, everything repo2docker can read is the repository's own.

The links are removed, not refused: the attacker gets nothing either way, while a
legitimate repository whose links only make sense inside the running image (into the
user's home, a data volume) still builds; the build's log names every link removed.

This module is the configuration file's content provider, in every executor: its source
is written into repo2docker's configuration file (``jobs/repo2docker/command.py``), so
that a repo2docker without this package (another virtualenv, a stock image) runs it
too. It must therefore stay self-contained: only the standard library, no relative
imports, Python 3.9 syntax; the configuration file hands it repo2docker's ``Git``
provider (``checked``).
"""

import os
from collections.abc import Iterator
from typing import Any

MAX_SHOWN = 200
"""Characters of a link's path or target shown in the log, at most."""


def _shown(text: str) -> str:
    """``text`` (a path or link target from the repository) fit for one log line:
    control characters escaped, at most ``MAX_SHOWN`` characters."""
    escaped = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    if len(escaped) > MAX_SHOWN:
        escaped = escaped[:MAX_SHOWN] + "..."
    return escaped


def _inside(path: str, root: str) -> bool:
    """Whether ``path`` resolves (every link in it followed) to ``root`` (a real path)
    or below it. A link that cannot be resolved (a loop) counts as outside."""
    try:
        target = os.path.realpath(path)
    except (OSError, ValueError):
        return False
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def links_outside(root: str) -> list[tuple[str, str]]:
    """Every symlink under ``root`` that resolves outside it, directly or through other
    links: ``(path relative to root, the link's target as written)``, sorted. Directory
    links are not descended into; ``.git`` directories are skipped (git makes them; a
    repository cannot put links there). Pure apart from reading the tree."""
    real_root = os.path.realpath(root)
    found = []
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [name for name in dirnames if name != ".git"]
        for name in dirnames + filenames:
            path = os.path.join(directory, name)
            if os.path.islink(path) and not _inside(path, real_root):
                found.append((os.path.relpath(path, root), os.readlink(path)))
    return sorted(found)


def remove_links_outside(root: str) -> list[str]:
    """Remove ``links_outside(root)`` (all found first, then removed, so that a chain is
    judged whole) and return one log line for each."""
    lines = []
    for path, target in links_outside(root):
        os.unlink(os.path.join(root, path))
        lines.append(
            f"removed the symlink {_shown(path)} -> {_shown(target)}: "
            "it points outside the repository\n"
        )
    return lines


def checked(provider: type[Any]) -> type[Any]:
    """A content provider class, ``CheckedGit``: ``provider`` (repo2docker's
    ``contentproviders.Git``) whose ``fetch`` then runs ``remove_links_outside`` over the
    whole checkout (submodules included) and logs its lines, before anything else reads
    the checkout. (A function, so that this module needs no repo2docker to be imported.)"""

    class CheckedGit(provider):  # type: ignore[misc]
        def fetch(
            self, spec: dict[str, Any], output_dir: str, yield_output: bool = False
        ) -> Iterator[str]:
            yield from super().fetch(spec, output_dir, yield_output=yield_output)
            yield from remove_links_outside(output_dir)

    return CheckedGit

import repo2docker.contentproviders

c.Repo2Docker.content_providers = [checked(repo2docker.contentproviders.Git)]

# A record's build (issue 25) names its provider in $BINDERHUB_SERVICE_CONTENT_PROVIDER:
# its one content provider replaces Git. A name not listed here fails the build, never
# falls back to another provider. Only the named provider's module is imported, so a
# git build runs in any repo2docker image (one without binderhub-service-builder too).
import importlib as _importlib
import os as _os
_record_providers = {
    'ckan': 'binderhub_service_builder.contentproviders.unversioned.CKAN',
    'dataverse': 'binderhub_service_builder.contentproviders.dataverse.Dataverse',
    'figshare': 'repo2docker.contentproviders.Figshare',
    'hg': 'repo2docker.contentproviders.Mercurial',
    'hydroshare': 'binderhub_service_builder.contentproviders.unversioned.HydroShare',
    'swh': 'repo2docker.contentproviders.Swhid',
    'zenodo': 'repo2docker.contentproviders.Zenodo',
}
_record_provider = _os.environ.get("BINDERHUB_SERVICE_CONTENT_PROVIDER")
if _record_provider:
    _module, _, _name = _record_providers[_record_provider].rpartition(".")
    c.Repo2Docker.content_providers = [getattr(_importlib.import_module(_module), _name)]
