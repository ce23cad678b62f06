"""``providers``: how records of content providers (Zenodo, Figshare, ...) are resolved
and fetched (issue 25, docs/design-providers.md)."""

from __future__ import annotations

from pydantic import Field, field_validator

from .base import Section


class ProviderSettings(Section):
    max_record_bytes: int = Field(default=10 * 1024**3, ge=1)
    """Largest total size, in bytes, of a record's files that is built (as the
    provider's API gives it). A larger record is refused (422) before anything is
    recorded or built."""

    timeout: float = Field(default=10.0, gt=0)
    """Seconds one request to a provider's API (or doi.org) may take while a record is
    resolved. A provider that does not answer in time is answered 503 with
    ``Retry-After``, and nothing is remembered."""

    cache_seconds: float = Field(default=300.0, ge=0)
    """How long a record resolved without a version (a Zenodo concept, a DOI) is
    trusted before it is resolved again, so that a new version is built at most this
    long after it is published. A record's version, once resolved, is kept for good."""

    check_interval: float = Field(default=3600.0, ge=0)
    """Seconds between checks of the records in ``repos`` for a new version (records
    have no webhooks): each is resolved as a request would be (``allowed_repos``, the
    resolution cache of ``cache_seconds``) and a version whose image is missing is
    built. A provider that is down is tried again at the next check. 0 turns the
    checks off."""

    proxy: str | None = None
    """A forward proxy (``http://`` or ``https://`` URL) for requests to providers: the
    service's own (resolving records, Mercurial's ``hg identify`` included) and those of
    builds of records (``HTTPS_PROXY`` and ``HTTP_PROXY`` in their environment), and git's
    to gists (the service's ``git ls-remote`` and the build's clone of
    ``https://gist.github.com/...``, as git's ``http.<url>.proxy``; other git hosts keep
    the environment's proxies). The authorities of ``ca_bundle`` are trusted by all of
    them. Default: the service's environment's proxies, if any. Mercurial speaks only
    plain HTTP to a proxy, so with an ``https://`` proxy Mercurial repositories are
    refused (422). With the ``kubernetes`` executor it holds no user name or password:
    build pods get it as a value in their Job, which is no secret."""

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("providers.proxy is an http:// or https:// URL")
        return value
