"""KubeSpawner ``profile_list`` choices from this service's image catalog (issues 7, 14).

``GET /api/v1/profiles`` answers a ready ``profile_list``: the hub's configuration only
fetches it (``docs/hub-extra-config.py``, a short ``extraConfig`` snippet), so nothing
of this service is installed on the hub. The list is one profile whose ``image``
option offers, newest first, the last image built for each repository's branch or tag,
so that users pick a prebuilt image and start at once. Everything that turns the
catalog into profiles is a pure function (``profiles_from_catalog``), tested by running
KubeSpawner's own profile handling on its output.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from jobs.catalog import newest_per_ref
from jobs.model import catalog_json
from jobs.settings import Settings

from .auth import READ, require
from .context import query_params, service_of, settings_of

OPTION = "image"
"""The profile option that carries the image (``profile-option-<slug>--image``)."""

_REGEX_SPECIAL = set(r"\.^$*+?{}[]|()")


def _regex_literal(text: str) -> str:
    """``text`` as a regex matching itself, in syntax that Python and JavaScript (with or
    without the ``u`` flag) read alike: only metacharacters are escaped, never ``-``."""
    return "".join(f"\\{c}" if c in _REGEX_SPECIAL else c for c in text)


def image_validation_regex(image_prefix: str) -> str:
    """A ``validation_regex`` for a free-text image choice: only images under
    ``image_prefix`` (this service's setting), with a tag or a sha256 digest, and no
    ``..`` or ``//`` to step outside it."""
    return (
        r"^(?!.*(?:\.\.|//))"
        + _regex_literal(image_prefix)
        + r"[a-z0-9](?:[a-z0-9._/-]*[a-z0-9])?"
        + r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$"
    )


def ref_label(ref: str, kind: str, sha: str) -> str:
    """What people call a ref: ``main``, ``v1.0``, ``default branch``, a short SHA, a
    record's ``version 3242081``."""
    if kind == "head":
        return "default branch"
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    if kind == "commit":
        return sha[:10]
    if kind == "record":
        return f"version {sha}"
    return ref


def repo_label(url: str) -> str:
    """``owner/name`` of a repository URL (the path, without ``.git``)."""
    path = re.sub(r"^[a-z+]+://[^/]*/", "", url).removesuffix(".git").strip("/")
    return path or url


def choice_slug(repo: str, ref: str, label: str) -> str:
    """A form-safe key for one choice: readable (``label``), unique through a hash."""
    readable = re.sub(r"[^a-z0-9]+", "-", f"{repo_label(repo)}-{label}".lower()).strip("-")
    digest = hashlib.sha256(f"{repo}\n{ref}".encode()).hexdigest()[:8]
    return f"{readable[:40].strip('-')}-{digest}"


def home_copy_command(source: str = "/srv/repo", dest: str = "/home/jovyan/repo") -> list[str]:
    """A command that copies ``source`` into ``dest`` and never overwrites a file there.

    Files already in ``dest`` (the user's edits) stay as they are; files the repository
    gained since the last copy appear; nothing is deleted. It always exits 0, since it
    runs as a start hook and a failed copy must not stop the user's server (its reason
    goes to the container's stderr). POSIX ``sh``, ``find`` and ``cp`` only, so that it
    works in any image repo2docker builds.
    """
    script = (
        'src="$1"; dst="$2"; '
        '[ -d "$src" ] || { echo "no $src to copy" >&2; exit 0; }; '
        'mkdir -p "$dst" && cd "$src" && '
        'find . -type d -exec sh -c \'for d; do mkdir -p "$0/$d"; done\' "$dst" {} + && '
        "find . ! -type d -exec sh -c "
        '\'for f; do [ -e "$0/$f" ] || [ -L "$0/$f" ] || cp -P "$f" "$0/$f"; done\' "$dst" {} +; '
        "exit 0"
    )
    return ["sh", "-c", script, "copy-repo", source, dest]


def copy_hook(source: str, dest: str) -> dict[str, Any]:
    """KubeSpawner ``lifecycle_hooks`` that run ``home_copy_command`` after start."""
    return {"postStart": {"exec": {"command": home_copy_command(source, dest)}}}


def profiles_from_catalog(catalog: Mapping[str, Any], settings: Settings) -> list[dict[str, Any]]:
    """The ``profile_list`` that ``settings.hub_profiles`` describes: one KubeSpawner
    profile whose ``image`` option has a choice per repository and ref
    (``image_choices``), plus, with ``any_image_choice``, a free-text choice that admits
    only images under ``image_prefix`` (``image_validation_regex``). ``catalog`` has the
    shape of ``GET /api/v1/images``'s answer. Returns ``[]`` when there is nothing to
    offer."""
    wanted = settings.hub_profiles
    option: dict[str, Any] = {"display_name": "Image", "choices": image_choices(catalog, settings)}
    if wanted.any_image_choice:
        option["unlisted_choice"] = {
            "enabled": True,
            "display_name": f"Another image built by this service ({settings.image_prefix}…)",
            "validation_regex": image_validation_regex(settings.image_prefix),
            "kubespawner_override": {"image": "{value}"},
        }
    if not option["choices"] and not wanted.any_image_choice:
        return []
    profile: dict[str, Any] = {
        "display_name": wanted.display_name,
        "description": wanted.description,
        "slug": wanted.slug,
        "profile_options": {OPTION: option},
    }
    if wanted.kubespawner_override:
        profile["kubespawner_override"] = dict(wanted.kubespawner_override)
    return [profile]


def image_choices(catalog: Mapping[str, Any], settings: Settings) -> dict[str, dict[str, Any]]:
    """The newest image of each repository's branch or tag (of ``hub_profiles.ref_kinds``),
    and of each record its newest version (``jobs.catalog.newest_per_ref``), newest
    first, as choices keyed by ``choice_slug``. With ``hub_profiles.copy_repo_to_home``
    (a folder under the home, e.g. ``/home/jovyan``) each gets a start hook that copies
    ``repo2docker.target_repo_dir`` into ``<copy_repo_to_home>/<repository name>``
    without overwriting anything (``copy_hook``)."""
    kinds = settings.hub_profiles.ref_kinds
    home = settings.hub_profiles.copy_repo_to_home
    repo_dir = settings.repo2docker.target_repo_dir or "/srv/repo"
    choices: dict[str, dict[str, Any]] = {}
    for entry in catalog.get("repos", []):
        repo = entry["repo"]
        repo_name = repo_label(repo)
        dest = f"{(home or '').rstrip('/')}/{repo_name.rsplit('/', 1)[-1] or 'repo'}"
        offered = newest_per_ref(
            entry["images"], kinds, _kind_of_image, _ref_of_image, _sha_of_image
        )
        for image in offered:
            override: dict[str, Any] = {"image": image["image"]}
            if home is not None:
                override["lifecycle_hooks"] = copy_hook(repo_dir, dest)
            label = ref_label(image["ref"], image["ref_kind"], image["sha"])
            # a record's page (zenodo.org/records/<id>) says more than its path
            name = repo.split("://", 1)[-1] if image["ref_kind"] == "record" else repo_name
            choices[choice_slug(repo, image["ref"], label)] = {
                "display_name": f"{name} ({label})",
                "description": image["image"],
                "kubespawner_override": override,
            }
    return choices


def _kind_of_image(image: Mapping[str, Any]) -> str:
    return str(image["ref_kind"])


def _ref_of_image(image: Mapping[str, Any]) -> str:
    return str(image["ref"])


def _sha_of_image(image: Mapping[str, Any]) -> str:
    return str(image["sha"])


async def get_profiles(request: Request) -> JSONResponse:
    """The hub's ``profile_list`` (a JSON list, ``[]`` before the first image)."""
    await require(request, READ)
    query_params(request, set())
    catalog = catalog_json(service_of(request).catalog())
    return JSONResponse(profiles_from_catalog(catalog, settings_of(request)))


routes: list[BaseRoute] = [Route("/api/v1/profiles", get_profiles, methods=["GET"])]
