"""Requests for records of content providers (issue 25): what the intake does before a
record's build is admitted like a commit's. ``docs/design-providers.md`` is the design.

In order, and nothing recorded when any step refuses:

1. ``allowed_repos`` is checked against the source as asked (``check_record_allowed``:
   a DOI against ``doi:`` patterns, a record against its keys), and a record of a
   provider whose records do not build end to end yet is refused (``HostNotHandled``),
   before any API is asked; the ``RecordResolver`` checks the record a DOI leads to the
   same way (``check_record``) before its host is asked. So the service asks only
   doi.org and the hosts of the providers that build; a host the user names (a
   Dataverse's: any host) is asked only once ``jobs.sources.record_hosts`` admits it
   (no IP address, no name resolving to an internal address, unless a pattern names
   it), which the resolver awaits before each record's host is asked;
2. the record is resolved to one immutable version through the ``RecordCache``
   (``RecordNotFound``, ``RecordTooLarge``, ``ProviderUnavailable``: 422, 422, 503);
3. the image is named after the version (``jobs.naming.image_name_for_record``).
"""

from __future__ import annotations

from typing import Final, NamedTuple

from ..errors import HostNotHandled, RepoNotAllowed
from ..naming import image_name_for_record
from ..settings import Settings
from ..sources.patterns import url_matches
from ..sources.record_cache import RecordCache
from ..sources.records import (
    BUILT_PROVIDERS,
    DoiSource,
    RecordSource,
    RecordVersion,
    describe,
    record_keys,
    record_page,
)
from ..sources.specs import ResolvedRef

RECORD_REF_KIND: Final = "record"
"""The ``ref_kind`` of a record's build: no ref of a git repository, never superseded
(a newer version is another image, and the older one's build goes on); the catalog
offers the newest version of each record (``jobs.catalog``)."""


class RecordTarget(NamedTuple):
    """A record's build as the intake admits it: the record's ``page`` (``Build.repo``),
    the version asked (``ref``: ``latest`` or the version), the version as a
    ``ResolvedRef`` (``sha``: the version) and the ``image``."""

    page: str
    ref: str
    resolved: ResolvedRef
    image: str
    version: RecordVersion


def check_record_allowed(patterns: list[str], source: RecordSource | DoiSource) -> None:
    """Raise ``RepoNotAllowed`` unless one of ``source``'s keys (``record_keys``)
    matches one of the ``allowed_repos`` ``patterns``. Pure."""
    keys = record_keys(source)
    if not any(url_matches(key, pattern) for key in keys for pattern in patterns):
        raise RepoNotAllowed(f"{describe(source)} is not in allowed_repos")


def check_record(patterns: list[str], source: RecordSource | DoiSource) -> None:
    """``check_record_allowed``, then ``HostNotHandled`` for a record of a provider that
    does not build (``BUILT_PROVIDERS``). (A host users name is checked after this, with
    its name looked up: ``jobs.sources.record_hosts.check_record_host``.) Pure."""
    check_record_allowed(patterns, source)
    if isinstance(source, RecordSource) and source.provider not in BUILT_PROVIDERS:
        raise HostNotHandled(
            f"{describe(source)}: {source.provider} records cannot be built by this "
            f"service yet (it builds {', '.join(sorted(BUILT_PROVIDERS))} records)"
        )


def asked_ref(source: RecordSource | DoiSource, version: RecordVersion) -> str:
    """What a request asked for, as its build records it (``Build.ref``): the version
    it named, else ``latest``. Pure."""
    if isinstance(source, RecordSource):
        if source.version is not None:
            return source.version
        if not version.moves:  # a Zenodo version's own record id
            return version.version
    return "latest"


def record_target(version: RecordVersion, ref: str, prefix: str) -> RecordTarget:
    """The build target of ``version``, asked for as ``ref``. Pure."""
    page = record_page(version.provider, version.host, version.record)
    resolved = ResolvedRef(version.version, RECORD_REF_KIND, version.version)
    return RecordTarget(page, ref, resolved, image_name_for_record(prefix, version), version)


async def resolve_record(
    settings: Settings, records: RecordCache | None, source: RecordSource | DoiSource
) -> RecordTarget:
    """Steps 1 to 3 of the module docstring for ``source``. Raises ``RepoNotAllowed``,
    ``HostNotHandled``, ``RecordNotFound``, ``RecordTooLarge``, ``InvalidRequest`` or
    ``ProviderUnavailable``."""
    if records is None:
        raise HostNotHandled(f"{describe(source)} cannot be built by this service yet")
    check_record(settings.allowed_repos, source)
    version = await records.resolve(source)
    if version.provider not in BUILT_PROVIDERS:  # a resolver without check_record
        raise HostNotHandled(f"{version.provider} records cannot be built by this service yet")
    return record_target(version, asked_ref(source, version), settings.image_prefix)
