"""``/api/repoproviders``: the providers the stream (and the API's ``provider`` and
``spec``) serves, as BinderHub's UI reads them, with the form of each one's spec."""

from __future__ import annotations

from typing import Any

from jobs.sources.providers import spec_form


def repo_providers() -> list[dict[str, Any]]:
    """``/api/repoproviders``: one display configuration per provider this stream
    serves, in the shape BinderHub's UI reads (``urlEncode`` marks specs whose
    repository part is URL-escaped), plus ``spec``: the form of its spec and an example
    (``jobs.sources.providers.spec_form``), for the stream's path and the API's body."""
    return [{**shown, "spec": spec_form(shown["id"])} for shown in _displayed()]


def _displayed() -> list[dict[str, Any]]:
    """BinderHub's display configuration of each provider."""
    head = {"enabled": True, "default": "HEAD"}
    return [
        {
            "displayName": "GitHub",
            "id": "gh",
            "detect": {"regex": "^(https?://github.com/)?(?<repo>.*)"},
            "repo": {
                "label": "GitHub repository name or URL",
                "placeholder": "example: binder-examples/requirements",
            },
            "ref": dict(head),
        },
        {
            "displayName": "GitLab.com",
            "id": "gl",
            "detect": {"regex": "^(https?://gitlab.com/)?(?<repo>.*)"},
            "repo": {
                "label": "GitLab.com repository or URL",
                "placeholder": "example: group/project",
                "urlEncode": True,
            },
            "ref": dict(head),
        },
        {
            "displayName": "Git repository",
            "id": "git",
            "repo": {
                "label": "Git repository URL",
                "placeholder": "example: https://git.example.org/repo.git",
                "urlEncode": True,
            },
            "ref": dict(head),
        },
        {
            "displayName": "GitHub Gist",
            "id": "gist",
            "detect": {"regex": "^(https?://gist.github.com/)?(?<repo>.*[^/])/?"},
            "repo": {
                "label": "Gist (user/id) or URL",
                "placeholder": "example: user/0123456789abcdef0123",
            },
            "ref": dict(head),
        },
        record_provider("Zenodo", "zenodo", "10.5281", "10.5281/zenodo.3242074"),
        record_provider("Figshare", "figshare", "10.6084", "10.6084/m9.figshare.9782777.v1"),
        dataverse_provider(),
        *OTHER_RECORD_PROVIDERS,
    ]


OTHER_RECORD_PROVIDERS: tuple[dict[str, Any], ...] = (
    {
        "displayName": "HydroShare resource",
        "id": "hydroshare",
        "detect": {
            "regex": "^(https?://(www\\.)?hydroshare\\.org/resource/)?(?<repo>[0-9a-f]{32})/?$"
        },
        "repo": {
            "label": "HydroShare resource id or URL",
            "placeholder": "example: b8f6eae9d89241cf8b5904033460af61",
        },
        "ref": {"enabled": False},
    },
    {
        "displayName": "CKAN dataset",
        "id": "ckan",
        "repo": {
            "label": "CKAN dataset URL",
            "placeholder": "example: https://demo.ckan.org/dataset/sample-dataset-1",
            "urlEncode": True,
        },
        "ref": {"enabled": False},
    },
    {
        "displayName": "Software Heritage",
        "id": "swh",
        "detect": {"regex": "^(?<repo>swh:1:(dir|rev):[0-9a-f]{40}(;.*)?)$"},
        "repo": {
            "label": "SWHID of a directory or a revision",
            "placeholder": "example: swh:1:dir:" + "0" * 40,
        },
        "ref": {"enabled": False},
    },
)
"""The providers of records whose spec is no DOI: a HydroShare resource (its id or
page), a CKAN dataset (its page's URL, escaped), a SWHID (ours)."""


def record_provider(name: str, provider: str, registrant: str, example: str) -> dict[str, Any]:
    """The display configuration of a provider of records, whose spec is a DOI (of
    ``registrant``) or a record's URL and names its version itself: no ref."""
    escaped = registrant.replace(".", "\\.")
    return {
        "displayName": f"{name} DOI",
        "id": provider,
        "detect": {"regex": f"^((https?://)?(dx\\.)?doi\\.org/)?(?<repo>{escaped}/.*)"},
        "repo": {"label": f"{name} DOI or record URL", "placeholder": f"example: {example}"},
        "ref": {"enabled": False},
    }


def dataverse_provider() -> dict[str, Any]:
    """Dataverse's display configuration: a DOI of any registrant or a dataset's URL on
    any host, so no ``detect``; escaped (a dataset URL has a query); no ref."""
    return {
        "displayName": "Dataverse DOI",
        "id": "dataverse",
        "repo": {
            "label": "Dataverse DOI or dataset URL",
            "placeholder": "example: 10.7910/DVN/TJCLKP",
            "urlEncode": True,
        },
        "ref": {"enabled": False},
    }
