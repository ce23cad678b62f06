"""Hosts a user names for a record (jobs/sources/record_hosts.py): IP addresses and names
that resolve to internal addresses are refused before anything asks them, unless an
``allowed_repos`` pattern names the host; through the resolver, no request is sent and
the error names the host (403)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from jobs import errors
from jobs.sources.record_apis import RecordResolver
from jobs.sources.record_hosts import (
    check_record_host,
    internal_address,
    named_hosts,
    split_host,
)
from jobs.sources.records import DoiSource, RecordSource
from webhook.errors import status_for

from .test_record_apis import DATA

PID = "doi:10.1234/abc"


class Names:
    """A resolver of names (``Lookup``): ``names`` maps a name to its addresses; any
    other name does not resolve. Records each name asked."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        if host not in self.names:
            raise OSError(f"no such name {host}")
        return self.names[host]


def check(
    host: str, names: Names, patterns: list[str] | None = None, proxy: str | None = None
) -> None:
    source = RecordSource("dataverse", host, PID)
    asyncio.run(check_record_host(source, patterns or ["*"], proxy=proxy, lookup=names))


NAMES = Names(
    {
        "dataverse.example.org": ["8.8.4.4", "2606:4700:4700::1111"],
        "public.example.org": ["8.8.8.8"],
        "loop.example.org": ["127.0.0.1"],
        "inside.example.org": ["10.1.2.3"],
        "metadata.example.org": ["169.254.169.254"],
        "mixed.example.org": ["8.8.8.8", "192.168.1.5"],
        "cgnat.example.org": ["100.64.0.1"],
        "mapped.example.org": ["::ffff:127.0.0.1"],
        "v6.example.org": ["fd00::1"],
    }
)


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("10.0.0.5", "10.0.0.5 is an IP address"),
        ("8.8.8.8", "8.8.8.8 is an IP address"),  # any address, not a name
        ("[::1]", "[::1] is an IP address"),
        ("[::1]:8443", "[::1]:8443 is an IP address"),
        ("127.0.0.1:8080", "127.0.0.1:8080 is an IP address"),
        ("localhost", "localhost is this machine"),
        ("api.localhost", "api.localhost is this machine"),
        ("loop.example.org", "loop.example.org resolves to an internal address"),
        ("inside.example.org", "inside.example.org resolves to an internal address"),
        ("metadata.example.org", "metadata.example.org resolves to an internal address"),
        ("mixed.example.org", "mixed.example.org resolves to an internal address"),
        ("cgnat.example.org", "cgnat.example.org resolves to an internal address"),
        ("mapped.example.org", "mapped.example.org resolves to an internal address"),
        ("v6.example.org:8443", "v6.example.org:8443 resolves to an internal address"),
    ],
)
def test_internal_hosts_are_refused_naming_the_host(host: str, why: str) -> None:
    with pytest.raises(errors.RepoNotAllowed) as raised:
        check(host, NAMES)
    assert why in str(raised.value)
    assert f"dataverse:{host}/*" in str(raised.value)  # the pattern that would admit it
    assert status_for(raised.value) == 403


@pytest.mark.parametrize("proxy", [None, "http://proxy.test:3128"])
def test_public_names_are_allowed(proxy: str | None) -> None:
    check("dataverse.example.org", NAMES, proxy=proxy)
    check("public.example.org:8443", NAMES, proxy=proxy)


def test_a_name_that_does_not_resolve_here() -> None:
    """Through the proxy, which resolves it (the stand-ins' case); without one it could
    not be asked anyway: 503, not remembered."""
    check("elsewhere.example.org", NAMES, proxy="http://proxy.test:3128")
    with pytest.raises(errors.ProviderUnavailable, match=r"elsewhere\.example\.org could not"):
        check("elsewhere.example.org", NAMES)
    # a name that resolves here to an internal address is refused with a proxy too
    with pytest.raises(errors.RepoNotAllowed):
        check("inside.example.org", NAMES, proxy="http://proxy.test:3128")


@pytest.mark.parametrize(
    ("host", "pattern"),
    [
        ("inside.example.org", "dataverse:inside.example.org/*"),
        ("10.0.0.5", "dataverse:10.0.0.5/doi:10.1234/*"),
        ("localhost", "https://localhost/*"),
    ],
)
def test_a_pattern_that_names_the_host_admits_it(host: str, pattern: str) -> None:
    names = Names({})
    check(host, names, patterns=[pattern])
    assert names.asked == []


@pytest.mark.parametrize(
    "pattern",
    ["*", "dataverse:*", "dataverse:10.0.0.*/*", "https://10.0.0.?/*", "zenodo:10.0.0.5/*"],
)
def test_a_pattern_with_a_wildcard_in_the_host_or_of_another_provider_does_not(
    pattern: str,
) -> None:
    with pytest.raises(errors.RepoNotAllowed):
        check("10.0.0.5", Names({}), patterns=[pattern])


def test_hosts_the_service_fixes_are_not_looked_up() -> None:
    names = Names({})
    for source in (
        RecordSource("zenodo", "zenodo.org", "1"),
        RecordSource("figshare", "figshare.com", "1"),
        RecordSource("hydroshare", "www.hydroshare.org", "0" * 32),
    ):
        asyncio.run(check_record_host(source, ["*"], proxy=None, lookup=names))
    assert names.asked == []


def test_pure_parts() -> None:
    assert split_host("[::1]:8443") == "::1"
    assert split_host("DV.example.org:443") == "dv.example.org"
    assert split_host("::1") == "::1"
    assert internal_address("fe80::1%eth0")
    assert internal_address("0.0.0.0")  # noqa: S104 - an address looked at, not bound
    assert internal_address("192.0.2.1")  # documentation (reserved) ranges too
    assert not internal_address("8.8.4.4")
    assert named_hosts(["dataverse:DV.test:8443/*", "https://x.test/*", "*"], "dataverse") == {
        "dv.test",
        "x.test",
    }


def resolve_with(
    source: RecordSource | DoiSource, names: Names, routes: dict[str, httpx.Response]
) -> tuple[Any, list[str]]:
    """Resolve ``source`` with the host check the factory wires; the URLs asked."""
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return routes.get(str(request.url), httpx.Response(404, json={}))

    async def run() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            resolver = RecordResolver(
                client,
                check_host=lambda record: check_record_host(
                    record, ["*"], proxy=None, lookup=names
                ),
            )
            try:
                return await resolver.resolve(source)
            except errors.BuildServiceError as e:
                return e

    return asyncio.run(run()), asked


def test_the_resolver_sends_nothing_to_an_internal_host() -> None:
    result, asked = resolve_with(RecordSource("dataverse", "inside.example.org", PID), NAMES, {})
    assert isinstance(result, errors.RepoNotAllowed)
    assert asked == []
    result, asked = resolve_with(RecordSource("dataverse", "169.254.169.254", PID), NAMES, {})
    assert "169.254.169.254 is an IP address" in str(result)
    assert asked == []


def test_a_doi_that_leads_to_an_internal_host_asks_doi_org_only() -> None:
    handle = (DATA / "doi_handle.json").read_text()
    handle = handle.replace("dataverse.harvard.edu", "metadata.example.org")
    routes = {
        "https://doi.org/api/handles/10.7910/dvn/tjclkp": httpx.Response(200, text=handle),
    }
    result, asked = resolve_with(DoiSource("10.7910/dvn/tjclkp"), NAMES, routes)
    assert isinstance(result, errors.RepoNotAllowed)
    assert "metadata.example.org resolves to an internal address" in str(result)
    assert asked == ["https://doi.org/api/handles/10.7910/dvn/tjclkp"]


def test_a_public_host_is_asked() -> None:
    version = (DATA / "dataverse_version.json").read_text()
    url = (
        "https://dataverse.example.org/api/datasets/:persistentId/versions/1.0"
        "?persistentId=doi%3A10.7910%2FDVN%2FTJCLKP"
    )
    source = RecordSource("dataverse", "dataverse.example.org", "doi:10.7910/DVN/TJCLKP", "1.0")
    result, asked = resolve_with(source, NAMES, {url: httpx.Response(200, text=version)})
    assert result.version == "1.0", result
    assert asked == [url]


@pytest.mark.parametrize(
    "host",
    ["loop.example.org", "10.0.0.5", "localhost", "127.0.0.1/catalog", "localhost/x", "[::1]/x"],
)
def test_a_ckan_host_is_held_to_the_same_rule(host: str) -> None:
    """CKAN, like Dataverse, lives on any host a user names."""
    refused = RecordSource("ckan", host, "binder-example")
    with pytest.raises(errors.RepoNotAllowed, match=re.escape(f"(ckan:{host}/*)")):
        asyncio.run(check_record_host(refused, ["*"], proxy=None, lookup=NAMES))
    for public_host in ("public.example.org", "public.example.org/catalog"):
        public = RecordSource("ckan", public_host, "binder-example")
        asyncio.run(check_record_host(public, ["*"], proxy=None, lookup=NAMES))
    # a pattern naming the host admits a CKAN under a prefix on it
    named = RecordSource("ckan", "10.0.0.5/catalog", "binder-example")
    asyncio.run(check_record_host(named, ["ckan:10.0.0.5/*"], proxy=None, lookup=NAMES))


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8000", "localhost", "loop.example.org", "inside.example.org"]
)
def test_a_mercurial_host_is_not_under_the_rule_as_a_git_host_is_not(host: str) -> None:
    """Decided with git's (record_hosts' docstring): an internal hg server builds as an
    internal git server does; ``allowed_repos`` decides. Nothing is looked up."""
    names = Names({"loop.example.org": ["127.0.0.1"], "inside.example.org": ["10.1.2.3"]})
    source = RecordSource("hg", host, f"https://{host}/repo", "default")
    asyncio.run(check_record_host(source, ["*"], proxy=None, lookup=names))
    assert names.asked == []
