from __future__ import annotations

import pytest

from jobs.errors import InvalidRequest
from jobs.registry.admin import next_link, references
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


def test_next_link_reads_the_registry_s_paging_header() -> None:
    assert next_link('</v2/r/tags/list?last=b&n=2>; rel="next"') == "/v2/r/tags/list?last=b&n=2"
    assert next_link('<https://x/a>; rel="prev", <https://x/b>; rel="next"') == "https://x/b"
    assert next_link('<https://x/a>; rel="prev"') is None
    assert next_link("") is None


def test_references_of_an_image_manifest_and_of_an_index() -> None:
    image = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"digest": "sha256:c", "size": 7},
        "layers": [{"digest": "sha256:l1", "size": 100}, {"digest": "sha256:l2", "size": 5}],
    }
    assert references(image) == ({"sha256:c": 7, "sha256:l1": 100, "sha256:l2": 5}, {})
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"digest": "sha256:m1", "size": 400}, {"digest": "sha256:m2"}],
    }
    assert references(index) == ({}, {"sha256:m1": 400})
    assert references({}) == ({}, {})
