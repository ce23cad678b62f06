"""``forges``: GitHub and GitLab APIs and git credentials."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from ..errors import InvalidRequest
from ..sources.mirrors import Mirror, check_mirror_url
from ..sources.patterns import UrlPattern
from ..sources.urls import canonical_repo_url
from .base import Section


class ForgeHostSettings(Section):
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


class GitCredentialSettings(Section):
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
        UrlPattern.parse(value)  # raises ValueError naming the problem
        return value.rstrip("/")


class ForgeSettings(Section):
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


MIRROR_URL_PATTERN = (
    r"^\s*([hH][tT][tT][pP][sS]?|[gG][iI][tT]|[sS][sS][hH]|[fF][iI][lL][eE])://"
    r"([^/\s?#:@]+@)?[^/\s?#@]*(/[^\s?#]*)?\s*$"
)
"""A URL of a scheme git fetches from, without a password, query or fragment: what the
chart's schema can check before anything is installed (the service's validators,
``jobs/sources/mirrors.check_mirror_url``, check the rest at start and name the problem)."""


class MirrorSettings(Section):
    prefix: str = Field(pattern=MIRROR_URL_PATTERN)
    """Repositories asked for under this URL prefix (canonical: ``https://github.com/``,
    ``https://github.com/my-org``; whole path segments) ..."""

    url: str = Field(pattern=MIRROR_URL_PATTERN)
    """... are fetched from this URL with the rest of their path appended, e.g.
    ``https://ghe.example.org/mirrors/github`` or ``git://git-cache.internal``. Every
    fetch goes there: ``git ls-remote``, the build's clone, the git credential (the one
    for this URL) and the forge API (the forge of this URL's host, if one is
    configured). The image's name, the build records and ``allowed_repos`` keep the
    URL asked for."""

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        checked = check_mirror_url(value, what="prefix")
        # spelled as the repositories it covers are (case, default ports, escapes): a
        # prefix of a whole host is checked with a path that it then drops
        bare = not urlsplit(checked).path.strip("/")
        try:
            canonical = canonical_repo_url(checked + ("/x" if bare else ""), allow_file=True)
        except InvalidRequest as e:
            raise ValueError(str(e).replace("repo URL", "prefix")) from None
        return canonical[: -len("/x")] if bare else canonical

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return check_mirror_url(value, what="url")

    def mirror(self) -> Mirror:
        return Mirror(self.prefix, self.url)
