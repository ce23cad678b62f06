"""The configured forges: which one a repository lives on, its API client, and the
ref resolution that tries the API before git (``Forges.resolve``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import RefNotFound
from ..settings import ForgeHostSettings, ForgeSettings
from ..sources.specs import ResolvedRef
from .base import ETagCache, ForgeClient, RefMissing
from .credentials import CredentialSet, credential_set
from .errors import ForgeUnavailable

log = logging.getLogger(__name__)


def make_client(
    host: ForgeHostSettings, cache: ETagCache | None = None, verify: bool | str = True
) -> ForgeClient | None:
    """The API client of ``host``; None without a token (nothing is asked of it).
    ``verify``: requests' (True, or a CA file: ``jobs.trust``)."""
    if host.token is None:
        return None
    token = host.token.get_secret_value()
    if host.kind == "github":
        from .github import GitHubClient, default_api_url

        api_url = host.api_url or default_api_url(host.url)
        return GitHubClient(api_url, token, timeout=host.timeout, cache=cache, verify=verify)
    from .gitlab import GitLabClient

    url = host.api_url or host.url
    return GitLabClient(url, token, timeout=host.timeout, cache=cache, verify=verify)


@dataclass(frozen=True)
class Match:
    """A repository on a configured forge."""

    host: ForgeHostSettings
    client: ForgeClient | None
    project: str
    """``owner/repo`` (GitHub) or ``group/subgroup/project`` (GitLab)."""


class Forges:
    """The configured forges. A repository belongs to one when the URL it is fetched
    from (``fetch``: the ``mirrors`` setting's, ``Settings.fetch_url``) has the forge's
    host name (whatever the scheme and port: ``ssh://git@host/…`` too) and a path under
    the forge's path: a repository of github.com mirrored elsewhere is asked of the
    mirror's forge, if any, never of GitHub's API."""

    def __init__(
        self,
        hosts: list[tuple[ForgeHostSettings, ForgeClient | None]],
        credentials: CredentialSet | None = None,
        fetch: Callable[[str], str] | None = None,
    ) -> None:
        self._hosts = hosts
        self._fetch = fetch or (lambda url: url)
        # what ``match`` compares, worked out once: host name and path prefix of each
        self._where = [
            (
                host,
                client,
                (urlsplit(host.url).hostname or "").lower(),
                urlsplit(host.url).path.strip("/"),
            )
            for host, client in hosts
        ]
        self.credentials = credentials or CredentialSet()

    @classmethod
    def from_settings(
        cls,
        settings: ForgeSettings,
        *,
        fetch: Callable[[str], str] | None = None,
        verify: bool | str = True,
    ) -> Forges:
        cache = ETagCache()  # one cache for every client: keys hold the whole API path
        return cls(
            [(host, make_client(host, cache, verify)) for host in settings.hosts],
            credential_set(settings),
            fetch,
        )

    def match(self, url: str) -> Match | None:
        """The forge of the repository ``url`` (canonical, as asked for), by where it is
        fetched from; None when none is configured."""
        parts = urlsplit(self._fetch(url))
        if parts.scheme == "file":
            return None
        hostname = (parts.hostname or "").lower()
        whole_path = parts.path.strip("/")
        for host, client, host_name, prefix in self._where:
            path = whole_path
            if hostname != host_name:
                continue
            if prefix:
                if not path.startswith(f"{prefix}/"):
                    continue
                path = path[len(prefix) + 1 :]
            segments = path.split("/")
            if any(not s for s in segments) or len(segments) < 2:
                continue
            if host.kind == "github" and len(segments) != 2:
                continue
            return Match(host, client, path)
        return None

    @property
    def reports_status(self) -> bool:
        return any(client is not None and host.report_status for host, client in self._hosts)

    async def resolve(self, url: str, ref: str) -> ResolvedRef | None:
        """The ``RefResolver``'s forge source: the commit, or None to ask git instead.

        Raises RefNotFound (the API says the repository has no such ref) and
        ForgeRateLimited; any other API failure is logged and git is asked.
        """
        found = self.match(url)
        if found is None or found.client is None or not found.host.resolve_refs:
            return None
        try:
            return await asyncio.to_thread(found.client.resolve, found.project, ref)
        except RefMissing:
            raise RefNotFound(f"{url} has no branch, tag or commit named {ref!r}") from None
        except ForgeUnavailable as e:
            log.warning("cannot resolve %s of %s through the API (%s); asking git", ref, url, e)
            return None

    def git_environment(self) -> dict[str, str]:
        return self.credentials.git_environment()
