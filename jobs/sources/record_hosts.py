"""Which hosts a user names may the service ask for a record (issue 25).

A Dataverse or a CKAN lives on any host, and a DOI leads wherever doi.org says: asking
such a host's API is a request from the service's own network position. So that the
service does not become a way into its own network, a record's host that comes from
the user (``USER_HOSTED``) is refused (``RepoNotAllowed``, 403, naming the host) when

- it is an IP address (any: ``10.0.0.5``, ``[::1]``), or ``localhost`` / ``*.localhost``;
- its name resolves, here, to any loopback, link-local, private, shared (CGNAT),
  multicast, reserved or unspecified address (an IPv4-mapped IPv6 address counts as
  its IPv4 address);

unless an ``allowed_repos`` pattern names the host literally (``dataverse:<host>/*``,
``https://<host>/*``, no wildcard in the host): an operator can open an internal
Dataverse on purpose.

A name that does not resolve here: without ``providers.proxy`` it cannot be asked
anyway (``ProviderUnavailable``, 503, never remembered: a resolver may be down); with
``providers.proxy`` it is allowed, since every request then goes through the proxy,
which resolves the name itself and is the deployment's egress control (the tests'
stand-ins are reached that way under real host names that resolve nowhere here). A name
that does resolve here to a private address is refused with or without a proxy.

Mercurial repositories (``hg``), like git repositories, are not under this rule. Both
are a repository's own server, which operators build from on purpose (an internal forge,
an internal hg server), and both are asked the same way: the service asks the server
which commit or changeset a ref names (``git ls-remote``, ``hg identify``), and the
build clones it from the build's network. ``allowed_repos`` (``hg:<host>/*``, the
repository's URL) is what decides which of them may be asked, and ``providers.proxy``,
which every ``hg identify`` goes through when it is set. Holding hg to the rule and not
git would refuse an internal hg server while an internal git server builds: no safer,
only inconsistent; holding git to it would refuse what operators build from today.

Known limit: the address is looked up here and again by the HTTP client, so a name
whose DNS answer changes between the two (DNS rebinding, TTL 0) is not caught; a
deployment that must rule that out sends providers through ``providers.proxy`` and
lets the proxy refuse private destinations.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Final
from urllib.parse import urlsplit

from ..errors import ProviderUnavailable, RepoNotAllowed
from .records import RecordProvider, RecordSource, describe

USER_HOSTED: Final[frozenset[RecordProvider]] = frozenset({"dataverse", "ckan"})
"""Providers whose host a user names (any Dataverse, any CKAN); the others' hosts are
fixed by the service (zenodo.org, figshare.com, www.hydroshare.org, ...), except
Mercurial's, which is a repository's own server and kept out as git's are (above)."""

Lookup = Callable[[str], Awaitable[list[str]]]
"""A host name → the addresses it resolves to (empty or ``OSError`` when it does not)."""

_WILDCARDS = frozenset("*?[")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598, not is_private before 3.13


def split_host(host: str) -> str:
    """``host`` without its port and IPv6 brackets, lower case: ``[::1]:8443`` →
    ``::1``, ``dv.example.org:8443`` → ``dv.example.org``. Pure."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, sep, port = host.rpartition(":")
    return name if sep and port.isdigit() and ":" not in name else host


def internal_address(address: str) -> bool:
    """Whether ``address`` (an IP address) is one the service must not be led to:
    loopback, link-local, private, shared, multicast, reserved or unspecified. Pure."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED)
    )


def is_ip_literal(host: str) -> bool:
    """Whether ``host`` (``split_host``'s) is an IP address rather than a name. Pure."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def named_hosts(patterns: Iterable[str], provider: str) -> frozenset[str]:
    """The hosts ``allowed_repos`` ``patterns`` name literally for ``provider``:
    ``<provider>:<host>/…`` and ``https://<host>/…`` (``http://`` too) with no wildcard
    in the host. Pure."""
    hosts = set()
    for pattern in patterns:
        if pattern.startswith(f"{provider}:"):
            host = pattern[len(provider) + 1 :].split("/", 1)[0]
        elif pattern.startswith(("https://", "http://")):
            try:
                host = urlsplit(pattern).netloc
            except ValueError:
                continue
        else:
            continue
        if host and not _WILDCARDS & set(host):
            hosts.add(split_host(host))
    return frozenset(hosts)


def refusal(source: RecordSource, why: str) -> RepoNotAllowed:
    return RepoNotAllowed(
        f"{describe(source)}: {why}. Record APIs on IP addresses or on names that "
        "resolve to loopback, link-local or private addresses are asked only when an "
        f"allowed_repos pattern names the host ({source.provider}:{source.host}/*)"
    )


async def system_lookup(host: str) -> list[str]:
    """The addresses the system's resolver gives ``host`` (``getaddrinfo``)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def check_record_host(
    source: RecordSource,
    patterns: Iterable[str],
    *,
    proxy: str | None,
    lookup: Lookup = system_lookup,
) -> None:
    """Refuse to ask ``source``'s host unless it may be asked (the module's docstring).
    Raises ``RepoNotAllowed`` naming the host, or ``ProviderUnavailable`` when the name
    does not resolve and there is no proxy. Asks nothing but ``lookup``."""
    if source.provider not in USER_HOSTED:
        return
    # a CKAN under a path prefix has ``<host>/<prefix>`` as its host: the name is before it
    host = split_host(source.host.split("/", 1)[0])
    if host in named_hosts(patterns, source.provider):
        return
    if is_ip_literal(host):
        raise refusal(source, f"{source.host} is an IP address")
    if host == "localhost" or host.endswith(".localhost"):
        raise refusal(source, f"{source.host} is this machine")
    try:
        addresses = await lookup(host)
    except (OSError, UnicodeError):
        addresses = []
    if any(internal_address(address) for address in addresses):
        raise refusal(source, f"{source.host} resolves to an internal address")
    if not addresses and proxy is None:
        raise ProviderUnavailable(f"{source.host} could not be resolved", retry_after=30)
