"""The one reader of JSON from outside (``jobs.json_input``), and the request body on it
(``webhook.body``): what is refused, with which words, and that every refusal is a
``ValueError`` and a 400 (issue 20: 2 KB of ``[`` was a 500)."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.errors import InvalidRequest
from jobs.json_input import MAX_DEPTH, InvalidJSON, read_json
from jobs.repo2docker import parse_log_line
from webhook.body import parse_json_object
from webhook.errors import BadRequest, answer_text, status_for

REFUSED: list[tuple[str, str, str]] = [
    ("1,000 deep, 2 KB", "[" * 1000 + "]" * 1000, "nested more than 64 deep"),
    ("100,000 deep", '{"a":' * 100_000 + "1" + "}" * 100_000, "nested more than 64 deep"),
    ("one past the limit", "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "more than 64 deep"),
    ("lone high surrogate", '{"repo": "\\ud800"}', "unpaired surrogate (\\ud800)"),
    ("lone low surrogate in a key", '{"\\udc00": 1}', "unpaired surrogate (\\udc00)"),
    ("reversed pair", '["\\ude00\\ud83d"]', "unpaired surrogate (\\ude00)"),
    ("NaN", '{"a": NaN}', "NaN is not a JSON value"),
    ("Infinity", "[-Infinity]", "-Infinity is not a JSON value"),
    ("a float too large", "[1e999]", "the number 1e999 is too large"),
    ("an integer of 5,000 digits", "9" * 5000, "a number has too many digits"),
    ("truncated", '{"ref": "refs/he', "Unterminated string"),
    ("empty", "", "Expecting value"),
]


@pytest.mark.parametrize(
    ("text", "message"), [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED]
)
def test_what_the_reader_refuses(text: str, message: str) -> None:
    with pytest.raises(InvalidJSON) as refused:
        read_json(text)
    assert message in str(refused.value)
    assert isinstance(refused.value, ValueError)
    assert isinstance(refused.value, InvalidRequest)
    assert status_for(refused.value) == 400


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("[" * MAX_DEPTH + "]" * MAX_DEPTH, nested(MAX_DEPTH)),
        ('"\\ud83d\\ude00"', "\U0001f600"),
        ('{"a": "\\u0000", "b": [1.5, -0, 1e308]}', {"a": "\x00", "b": [1.5, 0, 1e308]}),
        ('{"a": 1, "a": 2}', {"a": 2}),
    ],
)
def test_what_the_reader_reads(text: str, value: Any) -> None:
    assert read_json(text) == value


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 1000 + b"]" * 1000, "body is not valid JSON: arrays and objects are nested"),
        (b'{"repo": "\\ud800"}', "body is not valid JSON: a string holds an unpaired surrogate"),
        (b'{"repo": "\xc0\xaf"}', "body is not valid UTF-8"),  # an overlong "/"
        (b'{"repo": "\xed\xa0\x80"}', "body is not valid UTF-8"),  # a surrogate, encoded
        (b"\xef\xbb\xbf{}", "body is not valid JSON"),  # a byte order mark
        (b"[]", "body must be a JSON object"),
    ],
)
def test_bodies_are_read_with_it(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_json_object(body, "application/json")
    assert message in str(refused.value)
    assert refused.value.status_code == 400


def test_build_output_that_it_refuses_is_kept_as_text() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    assert parse_log_line(deep) is not None
    line = parse_log_line('{"message": "\\ud800 broken", "phase": "building"}')
    assert line is not None
    assert line.message.encode()  # storable: the line as it came, not a lone surrogate


def test_answers_never_carry_a_lone_surrogate() -> None:
    assert answer_text("unknown field(s): \ud800") == "unknown field(s): \ufffd\ufffd\ufffd"
    assert answer_text("plain") == "plain"
