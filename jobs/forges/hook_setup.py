"""``binderhub-service hooks install``: point a repository's push webhook at us.

The hook's URL is ``<public_url>hooks/github`` or ``<public_url>hooks/gitlab``, its
secret the one the service checks deliveries with (``webhooks.github_secret``,
``webhooks.gitlab_token``). A hook that already points at that URL is updated, so
running the command again (after changing the secret, say) never adds a second one.
"""

from __future__ import annotations

from typing import Literal

from ..errors import InvalidRequest
from ..settings import ForgeHostSettings, Settings
from .base import HookChange
from .hosts import make_client

ForgeKind = Literal["github", "gitlab"]


def hook_url(public_url: str, kind: ForgeKind) -> str:
    return f"{public_url.rstrip('/')}/hooks/{kind}"


def check_project(kind: ForgeKind, project: str) -> str:
    segments = project.strip("/").split("/")
    if any(not s or s in (".", "..") or any(c.isspace() for c in s) for s in segments):
        raise InvalidRequest(f"{project!r} is not a repository path")
    if kind == "github" and len(segments) != 2:
        raise InvalidRequest("a GitHub repository is OWNER/REPO")
    if kind == "gitlab" and len(segments) < 2:
        raise InvalidRequest("a GitLab project is NAMESPACE/PROJECT")
    return "/".join(segments)


def pick_host(settings: Settings, kind: ForgeKind, forge_url: str | None) -> ForgeHostSettings:
    hosts = [h for h in settings.forges.hosts if h.kind == kind and h.token is not None]
    if forge_url is not None:
        hosts = [h for h in hosts if h.url == forge_url.rstrip("/")]
    if not hosts:
        where = f" at {forge_url}" if forge_url else ""
        raise InvalidRequest(f"no {kind} forge{where} with a token in forges.hosts")
    if len(hosts) > 1:
        urls = ", ".join(h.url for h in hosts)
        raise InvalidRequest(f"several {kind} forges are configured ({urls}); choose one")
    return hosts[0]


def install_hook(
    settings: Settings, kind: ForgeKind, project: str, *, forge_url: str | None = None
) -> HookChange:
    """Create or update the webhook. Raises InvalidRequest for what the configuration
    or the arguments lack, ForgeRateLimited and ForgeUnavailable for the forge."""
    project = check_project(kind, project)
    if not settings.public_url:
        raise InvalidRequest("public_url is not set: the forge needs the service's address")
    secret = settings.webhooks.github_secret if kind == "github" else settings.webhooks.gitlab_token
    if secret is None:
        setting = "webhooks.github_secret" if kind == "github" else "webhooks.gitlab_token"
        raise InvalidRequest(f"{setting} is not set: the service would refuse every delivery")
    client = make_client(pick_host(settings, kind, forge_url))
    assert client is not None  # pick_host only picks hosts with a token
    return client.install_hook(
        project, hook_url(settings.public_url, kind), secret.get_secret_value()
    )
