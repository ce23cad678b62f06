"""Text from outside, unit by unit (issue 20: 2 KB of ``[`` was a 500): the one reader
of JSON (``jobs.json_input``) and the request body on it (``webhook.body``), numbers in
text, tokens and the hub's cookies. What is refused, with which words, and that every
refusal is a 4xx. ``tests/integration/test_fuzz.py`` sends all of it, and more, to a
real server."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from jobs.coordinator.build_requests import build_query
from jobs.errors import InvalidRequest
from jobs.json_input import MAX_DEPTH, InvalidJSON, read_json
from jobs.repo2docker.log_lines import parse_log_line
from webhook.auth import Unauthorized, bearer_token
from webhook.body import parse_json_object, read_body
from webhook.errors import BadRequest, answer_text, status_for
from webhook.hub_auth import sign, unsign

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


def request(headers: dict[str, str], body: bytes = b"") -> Request:
    """A request with ``headers`` as sent (Latin-1, as Starlette reads them)."""
    raw = [(name.encode(), value.encode("latin-1")) for name, value in headers.items()]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request({"type": "http", "method": "POST", "headers": raw}, receive)


@pytest.mark.parametrize("limit", ["\xb2", "\u0661", "+1", " 1", "1 ", "0x10", "1_0", "201", "0"])
def test_numbers_in_text_are_ascii_digits(limit: str) -> None:
    with pytest.raises(InvalidRequest, match="limit must be a whole number from 1 to 200"):
        build_query(limit=limit)


@pytest.mark.anyio
@pytest.mark.parametrize("length", ["\xb2", "-1", "1e3", ""])
async def test_content_length_is_ascii_digits(length: str) -> None:
    with pytest.raises(BadRequest, match="Content-Length is not a number"):
        await read_body(request({"content-length": length}))


@pytest.mark.parametrize(
    "header", ["Bearer \xe9t\xe9", "token a\x7fb", "Bearer a\tb", "Bearer " + "a" * 1025]
)
def test_tokens_are_printable_ascii(header: str) -> None:
    with pytest.raises(Unauthorized, match="a token is at most 1024 printable ASCII characters"):
        bearer_token(request({"authorization": header}))


def test_a_cookie_with_any_characters_is_only_not_ours() -> None:
    key = b"k" * 32
    good = sign(key, {"token": "t", "exp": 10.0})
    assert unsign(key, good, now=0.0) == {"token": "t", "exp": 10.0}
    payload = good.rpartition(".")[0]
    for forged in (f"{payload}.\xe9", payload + "." + "\u0100" * 64, "\xe9.\xe9", "."):
        assert unsign(key, forged, now=0.0) is None
