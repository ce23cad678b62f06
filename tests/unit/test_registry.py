from __future__ import annotations

import pytest

from jobs.errors import InvalidRequest
from jobs.registry.client import ImageRef, RegistryClient, parse_challenge, split_image


def test_split_image() -> None:
    assert split_image("127.0.0.1:5000/a/b:tag") == ImageRef("127.0.0.1:5000", "a/b", "tag")
    for bad in ("no-tag", "host:5000/name", "name:tag"):
        with pytest.raises(InvalidRequest):
            split_image(bad)


def test_parse_challenge() -> None:
    header = 'Bearer realm="https://auth.example/token",service="registry.example",scope="x"'
    assert parse_challenge(header) == (
        "bearer",
        {"realm": "https://auth.example/token", "service": "registry.example", "scope": "x"},
    )
    assert parse_challenge('Basic realm="test"') == ("basic", {"realm": "test"})


def test_positive_answers_are_remembered_for_a_while() -> None:
    now = [0.0]
    client = RegistryClient("http://r.example", cache_seconds=10, clock=lambda: now[0])
    client.remember("r.example/a:1")
    assert client.known("r.example/a:1")
    now[0] = 10.5
    assert not client.known("r.example/a:1")
