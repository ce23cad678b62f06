"""``repos`` and ``webhooks``: which pushes build."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator

from ..errors import InvalidRequest
from ..sources.forms import parse_source
from ..sources.providers import RECORD_STREAM_PROVIDERS, stream_request
from ..sources.records import BUILT_PROVIDERS, GitSource, RecordSource
from ..sources.urls import canonical_repo_url
from .base import Section


class RepoSettings(Section):
    url: str = ""
    """The repository's URL (canonicalised: case-insensitive hosts lower-cased, no
    ``.git``), as in ``https://github.com/my-org/my-repo``; or a record of a content
    provider in any form users give (a DOI such as ``10.5281/zenodo.3242074``, a record's
    page; docs/design-providers.md), whose newest version is built: a record has no
    webhook, and the reconciler checks it every ``providers.check_interval`` seconds."""

    provider: str | None = None
    """Instead of ``url``, with ``spec``: a provider of records as BinderHub names it
    (``zenodo``, ``figshare``), as in the API's body."""

    spec: str | None = None
    """The record of ``provider`` as BinderHub spells it (``10.5281/zenodo.3242074``)."""

    branches: list[str] | None = None
    """Branch name patterns (``fnmatch``) whose pushes build. Default: only the
    repository's default branch, as the push webhook names it. Not for a record."""

    tags: list[str] = ["*"]
    """Tag name patterns whose pushes build. Default: every tag; ``[]``: none. Not for
    a record."""

    @model_validator(mode="before")
    @classmethod
    def _provider_spec(cls, data: Any) -> Any:
        if not isinstance(data, dict) or ("provider" not in data and "spec" not in data):
            return data
        provider, spec = data.get("provider"), data.get("spec")
        if data.get("url"):
            raise ValueError("give url, or provider and spec, not both")
        if not isinstance(provider, str) or not isinstance(spec, str):
            raise ValueError("provider and spec go together, as strings")
        if provider not in RECORD_STREAM_PROVIDERS:
            raise ValueError(
                f"provider {provider!r}: a repos entry's provider is one of "
                f"{', '.join(RECORD_STREAM_PROVIDERS)}; give a git repository as url "
                "(with branches and tags)"
            )
        try:
            url, _ = stream_request(provider, spec)
        except InvalidRequest as e:
            raise ValueError(str(e)) from None
        return {**data, "url": url}

    @field_validator("url")
    @classmethod
    def _canonical(cls, value: str) -> str:
        try:
            source = parse_source(value, allow_file=True)
            if isinstance(source, GitSource):
                return canonical_repo_url(value, allow_file=True)
        except InvalidRequest as e:  # named, unless the message quotes it
            raise ValueError(str(e) if value.strip() in str(e) else f"{value!r}: {e}") from None
        if isinstance(source, RecordSource) and source.provider not in BUILT_PROVIDERS:
            raise ValueError(
                f"{value!r}: {source.provider} records cannot be built by this service yet "
                f"(it builds {', '.join(sorted(BUILT_PROVIDERS))} records)"
            )
        return value.strip()

    @model_validator(mode="after")
    def _record_has_no_refs(self) -> RepoSettings:
        if not self.url:
            raise ValueError("give url (a repository or a record), or provider and spec")
        if self.is_record and self.model_fields_set & {"branches", "tags"}:
            raise ValueError(f"{self.url!r} is a record: it has versions, not branches or tags")
        return self

    @property
    def is_record(self) -> bool:
        """Whether ``url`` names a record of a content provider (or a DOI), not a git
        repository: checked by the reconciler at ``providers.check_interval``."""
        return not isinstance(parse_source(self.url, allow_file=True), GitSource)


class WebhookSettings(Section):
    github_secret: SecretStr | None = None
    """Secret of the GitHub (or Gitea) webhooks: their ``X-Hub-Signature-256`` is
    checked against it. Without it, ``/hooks/github`` refuses every delivery."""

    gitlab_token: SecretStr | None = None
    """Secret token of the GitLab webhooks (``X-Gitlab-Token``). Without it,
    ``/hooks/gitlab`` refuses every delivery."""

    max_body_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    """Largest webhook body accepted (GitHub and GitLab cap theirs at 25 MB)."""

    deliveries_remembered: int = Field(default=10_000, ge=1)
    """How many delivery ids are remembered, so that a redelivery changes nothing."""

    reconcile_interval: float = Field(default=0.0, ge=0)
    """Seconds between checks of the configured ``repos`` for commits whose image is
    missing (pushes whose webhook never arrived). 0 turns the check off."""
