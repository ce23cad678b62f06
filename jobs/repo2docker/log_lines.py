"""Build output of any size as log lines of bounded size. Pure: no I/O.

A build writes whatever its repository makes it write: one commit subject of 5 MB is
enough for repo2docker's "HEAD is now at <sha> <subject>" to exceed any reader's line
limit (issue #12). No output may fail a build, so lines are cut, never refused:
``LineSplitter`` keeps at most ``READ_LIMIT`` bytes of a line in memory (enough for
every JSON line repo2docker writes in practice to parse), and ``cut_line`` cuts the
message that is stored to ``MAX_LINE_BYTES``, marking the cut. ``rewrite_line`` words
what only looks like an error as what it is (issue 20).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any

from ..json_input import read_json
from ..model import LogLine

READ_LIMIT = 1024 * 1024
"""Bytes of one raw output line kept while reading; the rest is counted, not kept."""

MAX_LINE_BYTES = 64 * 1024
"""Bytes of one stored log message; a longer one keeps its first part and a marker."""


_BUILDKIT_TRANSFER = re.compile(r"^#\d+ sha256:[0-9a-f]+ [\d.]+[kMG]?B / [\d.]+[kMG]?B [\d.]+s$")
"""BuildKit's plain progress line for a transfer under way (its ``… done`` line differs)."""


def parse_log_line(raw: str) -> LogLine | None:
    """One line of ``--json-logs`` output as a LogLine; None for pure progress updates.

    repo2docker writes ``{"phase": …, "message": …}`` per line; docker's push progress
    comes as many lines with a ``progress`` key that say nothing a reader needs, and
    BuildKit's plain progress repeats a transfer's byte count while it runs
    (``#7 sha256:85c1… 49.28MB / 93.29MB 0.2s``): those go, its ``… done`` line stays.
    Lines that are not JSON (tracebacks) are kept as they are.
    """
    text = raw.rstrip("\r\n")
    if not text:
        return None
    try:
        data: Any = read_json(text)  # a build's output: no line may fail it
    except ValueError:
        return LogLine(phase="", message=text)
    if not isinstance(data, dict):
        return LogLine(phase="", message=text)
    if "progress" in data or "layers" in data:
        return None
    message = str(data.get("message", "")).rstrip("\n")
    if not message.strip():
        return None  # docker's build stream sends bare newlines between steps
    if _BUILDKIT_TRANSFER.match(message):
        return None
    return LogLine(phase=str(data.get("phase", "")), message=message)


def cut_marker(size: int, kept: int) -> str:
    """The text that ends a cut line: how many bytes of how many were left out."""
    return f" … [cut: {size - kept} of {size} bytes not shown]"


def cut_line(text: str, limit: int = MAX_LINE_BYTES, *, size: int | None = None) -> str:
    """``text`` if its UTF-8 form has at most ``limit`` bytes; otherwise its first
    ``limit`` bytes (never half a character) followed by ``cut_marker``.

    ``size``: the line's size in bytes when ``text`` is already a cut part of it (the
    reader kept only a prefix); it is what the marker reports. Lone surrogates (JSON
    can spell them, SQLite cannot store them) become ``?``.
    """
    data = text.encode("utf-8", errors="replace")
    total = len(data) if size is None else max(size, len(data))
    if total <= limit:
        return data.decode("utf-8")
    kept = data[:limit].decode("utf-8", errors="ignore")
    return kept + cut_marker(total, len(kept.encode("utf-8")))


@dataclass(frozen=True)
class RawLine:
    """One line of output: its first bytes (without the newline) and its whole size."""

    data: bytes
    size: int

    @property
    def cut(self) -> bool:
        return self.size > len(self.data)


class LineSplitter:
    """Splits a byte stream into lines, holding at most ``keep`` bytes of any line.

    ``feed`` takes chunks as they arrive and returns the lines they complete; ``end``
    returns what followed the last newline, if anything. Memory stays bounded
    whatever the stream holds.
    """

    def __init__(self, keep: int = READ_LIMIT) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1 byte")
        self._keep = keep
        self._part = bytearray()
        self._size = 0

    def feed(self, chunk: bytes) -> list[RawLine]:
        lines: list[RawLine] = []
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            end = len(chunk) if newline < 0 else newline
            room = self._keep - len(self._part)
            if room > 0:
                self._part += chunk[start : min(end, start + room)]
            self._size += end - start
            if newline < 0:
                return lines
            lines.append(RawLine(bytes(self._part), self._size))
            self._part.clear()
            self._size = 0
            start = newline + 1

    def end(self) -> RawLine | None:
        if not self._size:
            return None
        line = RawLine(bytes(self._part), self._size)
        self._part.clear()
        self._size = 0
        return line


_JSON_MESSAGE_START = '{"message": "'
"""How repo2docker's JSON log lines begin (python-json-logger writes the message first)."""


def _message_prefix(text: str) -> str | None:
    """The start of the message of a JSON log line whose end was not read, or None
    when ``text`` is not such a line. A trailing escape sequence the cut split is
    dropped."""
    if not text.startswith(_JSON_MESSAGE_START):
        return None
    rest = text[len(_JSON_MESSAGE_START) :]
    for trim in range(min(len(rest), 6) + 1):  # "\\uXXXX" is the longest escape
        with contextlib.suppress(ValueError):
            decoded = read_json(f'"{rest[: len(rest) - trim]}"')
            return decoded if isinstance(decoded, str) else None
    return None


NO_CACHE_YET = "no layer cache yet for this image's repository"
"""What a build's log says where BuildKit reported the registry cache as missing."""

_CACHE_NOT_FOUND = re.compile(
    r"^(#\d+ )ERROR: failed to configure registry cache importer: \S+: not found$"
)


def rewrite_line(line: LogLine) -> LogLine:
    """``line`` as users should read it. BuildKit reports a registry cache that does not
    exist yet, which is what the first build of every repository finds (``--cache-from
    type=registry,…``, ``jobs.repo2docker.command.buildx_args``), as an error of its step
    (``#5 ERROR: failed to configure registry cache importer: <ref>: not found``,
    buildkitd v0.34); the build goes on without it. That line becomes a plain note of
    the same step. Every other line, other ``ERROR`` lines included, is unchanged."""
    found = _CACHE_NOT_FOUND.match(line.message)
    if found is None:
        return line
    return LogLine(line.phase, found.group(1) + NO_CACHE_YET, line.extra)


def log_line_from_raw(raw: RawLine, limit: int = MAX_LINE_BYTES) -> LogLine | None:
    """The log line to store for one line of repo2docker's ``--json-logs`` output, with
    its message cut to ``limit`` bytes; None for lines a reader does not need (see
    ``parse_log_line``). Of a line cut while reading (no longer whole JSON), the start
    of its message is kept, or its text when it is not a JSON log line; the marker
    counts the whole line."""
    text = raw.data.decode(errors="replace")
    if raw.cut:
        message = _message_prefix(text)
        kept = text.rstrip("\r") if message is None else message
        return LogLine(phase="", message=cut_line(kept, limit, size=raw.size))
    line = parse_log_line(text)
    if line is None:
        return None
    line = rewrite_line(line)
    return LogLine(line.phase, cut_line(line.message, limit), line.extra)
