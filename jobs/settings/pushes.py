"""``repos`` and ``webhooks``: which pushes build."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from ..errors import InvalidRequest
from ..sources.urls import canonical_repo_url
from .base import Section


class RepoSettings(Section):
    url: str
    """The repository's URL (canonicalised: case-insensitive hosts lower-cased, no
    ``.git``), as in ``https://github.com/my-org/my-repo``."""

    branches: list[str] | None = None
    """Branch name patterns (``fnmatch``) whose pushes build. Default: only the
    repository's default branch, as the push webhook names it."""

    tags: list[str] = ["*"]
    """Tag name patterns whose pushes build. Default: every tag; ``[]``: none."""

    @field_validator("url")
    @classmethod
    def _canonical(cls, value: str) -> str:
        try:
            return canonical_repo_url(value, allow_file=True)
        except InvalidRequest as e:
            raise ValueError(str(e)) from None


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
