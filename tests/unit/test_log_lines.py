"""Output of any size becomes bounded log lines (issue #12, item 4)."""

from __future__ import annotations

import json

import pytest

from jobs.model import LogLine
from jobs.repo2docker.log_lines import LineSplitter, RawLine, cut_line, log_line_from_raw


@pytest.mark.parametrize(
    ("text", "limit", "size", "expected"),
    [
        ("short", 10, None, "short"),
        ("exactly10!", 10, None, "exactly10!"),
        ("0123456789abc", 10, None, "0123456789 … [cut: 3 of 13 bytes not shown]"),
        # never half a character: "é" is 2 bytes and would straddle the limit
        ("aaaaaaaaaé", 10, None, "aaaaaaaaa … [cut: 2 of 11 bytes not shown]"),
        # a prefix the reader kept of a longer line: the marker counts the whole line
        ("0123456789", 10, 5242880, "0123456789 … [cut: 5242870 of 5242880 bytes not shown]"),
        ("abc", 10, 5242880, "abc … [cut: 5242877 of 5242880 bytes not shown]"),
        # JSON may spell lone surrogates; SQLite cannot store them
        ("a\ud800b", 10, None, "a?b"),
    ],
)
def test_cut_line(text: str, limit: int, size: int | None, expected: str) -> None:
    assert cut_line(text, limit, size=size) == expected


def test_splitter_keeps_a_bounded_prefix_of_each_line() -> None:
    splitter = LineSplitter(keep=4)
    assert splitter.feed(b"ab\ncdefgh") == [RawLine(b"ab", 2)]
    assert splitter.feed(b"ijk") == []
    assert splitter.feed(b"l\n\nxy") == [RawLine(b"cdef", 10), RawLine(b"", 0)]
    assert splitter.end() == RawLine(b"xy", 2)
    assert splitter.end() is None


def test_splitter_gives_the_same_lines_whatever_the_chunks() -> None:
    stream = b"one\n" + b"x" * 100 + b"\nthree\n\nlast"
    expected = [RawLine(b"one", 3), RawLine(b"x" * 8, 100), RawLine(b"three", 5), RawLine(b"", 0)]
    for size in (1, 2, 3, 7, 64, len(stream)):
        splitter = LineSplitter(keep=8)
        lines = []
        for start in range(0, len(stream), size):
            lines += splitter.feed(stream[start : start + size])
        assert lines == expected
        assert splitter.end() == RawLine(b"last", 4)


def test_a_long_json_line_keeps_its_phase_and_a_cut_message() -> None:
    raw = json.dumps({"message": "HEAD is now at 0123abc " + "s" * 100, "phase": "fetching"})
    line = log_line_from_raw(RawLine(raw.encode(), len(raw)), limit=30)
    assert line == LogLine(
        "fetching", "HEAD is now at 0123abc sssssss … [cut: 93 of 123 bytes not shown]"
    )


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        # repo2docker's JSON line: the start of its message is kept
        (b'{"message": "HEAD is now at 0123abc ssss', "HEAD is now at 0123abc ssss"),
        # an escape sequence the cut split in two is dropped
        (b'{"message": "caf\\u00e9 tab\\t and \\u00', "caf\u00e9 tab\t and "),
        (b'{"message": "ends in a backslash \\', "ends in a backslash "),
        # anything else is kept as text
        (b"Traceback (most recent call last): xxxx", "Traceback (most recent call last): xxxx"),
        (b'{"phase": "building", "message": "x', '{"phase": "building", "message": "x'),
    ],
)
def test_a_line_cut_while_reading_keeps_its_start(prefix: bytes, expected: str) -> None:
    line = log_line_from_raw(RawLine(prefix, 5 * 1024 * 1024))
    size = len(expected.encode())
    assert line == LogLine(
        "", f"{expected} … [cut: {5 * 1024 * 1024 - size} of 5242880 bytes not shown]"
    )


def test_short_lines_are_parsed_as_before() -> None:
    raw = b'{"message": "Step 1/3 : FROM x\\n", "phase": "building"}'
    assert log_line_from_raw(RawLine(raw, len(raw))) == LogLine("building", "Step 1/3 : FROM x")
    progress = b'{"message": "Pushing", "progress": {}, "phase": "pushing"}'
    assert log_line_from_raw(RawLine(progress, len(progress))) is None
