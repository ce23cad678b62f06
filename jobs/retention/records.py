"""The record of what retention deleted, as ``GET /api/v1/retention/deletions`` pages it
(issue 26): a query from its text form, and the cursor of the next page. Pure."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass

from ..errors import InvalidRequest
from ..model import ImageDeletion

DEFAULT_PAGE = 100
MAX_PAGE = 500
MAX_CURSOR = 2048
"""Characters: a cursor holds one image name (at most a few hundred)."""
_LIMIT_RE = re.compile(r"\A[0-9]{1,3}\Z")
_CURSOR_RE = re.compile(r"\A[A-Za-z0-9_-]+={0,2}\Z")


@dataclass(frozen=True)
class DeletionQuery:
    """``limit`` deletions, after the one ``after`` names (``deleted_at``, ``image``:
    the last of the previous page), newest first."""

    limit: int = DEFAULT_PAGE
    after: tuple[float, str] | None = None


@dataclass(frozen=True)
class DeletionPage:
    """A page of ``deletions`` and the ``next_cursor`` that asks for the next one (None
    when this page is the last)."""

    deletions: list[ImageDeletion]
    next_cursor: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "deletions": [d.to_json() for d in self.deletions],
            "next_cursor": self.next_cursor,
        }


def cursor_of(deletion: ImageDeletion) -> str:
    """The cursor of the page after ``deletion``: base64url of ``[deleted_at, image]``."""
    text = json.dumps([deletion.deleted_at, deletion.image], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode()


def _after(cursor: str) -> tuple[float, str]:
    """``cursor_of``'s inverse. Raises ``InvalidRequest`` for anything it did not make."""
    bad = InvalidRequest("cursor is not a next_cursor of a previous page")
    if len(cursor) > MAX_CURSOR or not _CURSOR_RE.match(cursor):
        raise bad
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError) as e:
        raise bad from e
    if not (isinstance(value, list) and len(value) == 2):
        raise bad
    at, image = value
    if isinstance(at, bool) or not isinstance(at, int | float) or not isinstance(image, str):
        raise bad
    if not math.isfinite(at):
        raise bad
    return float(at), image


def deletion_query(limit: str | None = None, cursor: str | None = None) -> DeletionQuery:
    """A ``DeletionQuery`` from query parameters. Raises ``InvalidRequest`` naming the
    first bad one (``limit``: a whole number from 1 to ``MAX_PAGE``)."""
    text = str(DEFAULT_PAGE) if limit is None else limit
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses
    if not _LIMIT_RE.match(text) or not 1 <= int(text) <= MAX_PAGE:
        raise InvalidRequest(f"limit must be a whole number from 1 to {MAX_PAGE}")
    return DeletionQuery(int(text), None if cursor is None else _after(cursor))


def page_of(rows: list[ImageDeletion], limit: int) -> DeletionPage:
    """The page from ``rows`` read with ``limit + 1`` (one more tells whether another
    page follows)."""
    shown = rows[:limit]
    more = len(rows) > limit and bool(shown)
    return DeletionPage(shown, cursor_of(shown[-1]) if more else None)
