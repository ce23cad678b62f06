"""Git credentials for private repositories, matched the way git matches URLs.

A credential covers a URL prefix (``https://github.com/my-org``): same scheme, same
host (``*`` stands for one name label), same port, and whole path segments. Python
(for API calls) and git (for ``ls-remote`` and clones) must pick the same credential
for a repository, so git is handed the credentials as URL-scoped
``http.<prefix>.extraHeader`` settings through its configuration environment
(``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_<n>``/``GIT_CONFIG_VALUE_<n>``), never on a
command line or in a URL, where they would show up in process lists and logs.

Git applies a URL-scoped setting only when its prefix matches at least as well as
every one applied before (host length, then path length), and an empty
``extraHeader`` clears the list. Each credential is therefore written as a clearing
entry and its header, from the least to the most specific: whatever matches best is
the one header left, as ``CredentialSet.best`` also finds.

That environment is for the service's own git (``git ls-remote``). A build gets only
the one credential that covers its repository (``CredentialSet.best``), as a git
configuration file of its own (``Credential.git_config``, issue 20): it can never hand
another repository's token to a host the repository names (a submodule, a redirect).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..settings import ForgeSettings
from ..sources.patterns import UrlPattern

DEFAULT_GIT_USERNAMES = {"github": "x-access-token", "gitlab": "oauth2"}
"""The user names the forges document for access tokens sent over HTTPS."""


@dataclass(frozen=True)
class Credential:
    pattern: UrlPattern
    username: str
    password: str = field(repr=False)

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value git sends (HTTP Basic)."""
        pair = f"{self.username}:{self.password}".encode()
        return f"Basic {base64.b64encode(pair).decode()}"

    def git_config(self) -> str:
        """A git configuration file (``GIT_CONFIG_GLOBAL``) that makes git send this
        credential's header to the repositories it covers and nowhere else: one
        ``[http "<prefix>"]`` section with ``extraHeader`` (git's syntax: the subsection
        in double quotes, ``"`` and ``\\`` escaped). Pure."""
        url = self.pattern.git_url.replace("\\", "\\\\").replace('"', '\\"')
        return f'[http "{url}"]\n\textraHeader = Authorization: {self.authorization}\n'


class CredentialSet:
    """Credentials in git's order of preference; ``best`` and git agree on the winner."""

    def __init__(self, credentials: Iterable[Credential] = ()) -> None:
        # stable sort: of two equally specific prefixes the later one wins, as in git
        self._items = sorted(credentials, key=lambda c: c.pattern.specificity)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[Credential]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"CredentialSet({[c.pattern.git_url for c in self._items]})"

    def best(self, url: str) -> Credential | None:
        """The credential git would use for ``url``, if any covers it."""
        found = None
        for credential in self._items:
            if credential.pattern.matches(url):
                found = credential
        return found

    def git_environment(self) -> dict[str, str]:
        """``GIT_CONFIG_*`` variables that make git send each credential's header to the
        repositories it covers. Empty when there are no credentials."""
        entries: list[tuple[str, str]] = []
        for credential in self._items:
            key = f"http.{credential.pattern.git_url}.extraHeader"
            entries += [(key, ""), (key, f"Authorization: {credential.authorization}")]
        env = {"GIT_CONFIG_COUNT": str(len(entries))} if entries else {}
        for index, (key, value) in enumerate(entries):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        return env


def credential_set(settings: ForgeSettings) -> CredentialSet:
    """The configured credentials, and each forge's API token for its own host."""
    credentials = [
        Credential(
            UrlPattern.parse(host.url),
            host.git_username or DEFAULT_GIT_USERNAMES[host.kind],
            host.token.get_secret_value(),
        )
        for host in settings.hosts
        if host.token is not None
    ]
    credentials += [
        Credential(UrlPattern.parse(c.url), c.username, c.password.get_secret_value())
        for c in settings.credentials
    ]
    return CredentialSet(credentials)
