"""The record of retention's deletions over HTTP (issue 26): ``GET
/api/v1/retention/deletions`` pages it newest first with a bounded limit and refuses bad
parameters with a 400 naming them; ``/metrics`` counts images deleted and bytes freed
from the same record. The app in this process, over a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from jobs.model import DeletionTotals, ImageDeletion
from jobs.retention.records import MAX_PAGE, cursor_of, deletion_query, page_of
from jobs.service import BuildService
from jobs.settings import load_settings
from jobs.sources.refs import RefResolver
from jobs.store import SqliteStore
from tests.fakes import FakeExecutor, FakeRegistry
from webhook.app import create_app
from webhook.metrics import retention_metrics

pytestmark = pytest.mark.anyio
DIGEST = "sha256:" + "7" * 64


def deletion(tag: str, at: float, freed: int | None = 100) -> ImageDeletion:
    return ImageDeletion(f"r.example/binder-a:{tag}", "binder-a", DIGEST, at, "run-1", freed)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, SqliteStore]]:
    settings = load_settings(None, state_path=tmp_path / "state.sqlite", auth={"open_read": True})
    store = SqliteStore(tmp_path / "state.sqlite")
    registry = FakeRegistry()
    service = BuildService(
        settings,
        store=store,
        registry=registry,
        resolver=RefResolver(timeout=5, ttl=3600),
        executor=FakeExecutor(registry),
    )
    app = create_app(settings, service)
    app.state.service = service  # what the lifespan sets; nothing here builds
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c, store
    store.close()


async def test_deletions_are_paged_newest_first(
    client: tuple[httpx.AsyncClient, SqliteStore],
) -> None:
    http, store = client
    empty = await http.get("/api/v1/retention/deletions")
    assert empty.status_code == 200
    assert empty.json() == {"deletions": [], "next_cursor": None}
    store.record_deletions([deletion(f"{n:040x}", 1000.0 + n) for n in range(5)])
    seen: list[str] = []
    url = "/api/v1/retention/deletions?limit=2"
    pages = 0
    for _ in range(5):  # bounded: a cursor that does not advance would loop
        answer = (await http.get(url)).json()
        pages += 1
        seen += [d["image"] for d in answer["deletions"]]
        if answer["next_cursor"] is None:
            break
        url = f"/api/v1/retention/deletions?limit=2&cursor={answer['next_cursor']}"
    assert pages == 3
    assert seen == [f"r.example/binder-a:{n:040x}" for n in (4, 3, 2, 1, 0)]
    first = (await http.get("/api/v1/retention/deletions?limit=1")).json()["deletions"][0]
    assert first == {
        "image": f"r.example/binder-a:{4:040x}",
        "repository": "binder-a",
        "digest": DIGEST,
        "deleted_at": 1004.0,
        "run_id": "run-1",
        "freed_bytes": 100,
    }


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("limit=0", "limit must be a whole number from 1 to 500"),
        (f"limit={MAX_PAGE + 1}", "limit must be"),
        ("limit=ten", "limit must be"),
        ("limit=%C2%B2", "limit must be"),
        ("limit=-1", "limit must be"),
        ("cursor=nope!", "cursor is not a next_cursor"),
        ("cursor=bm9wZQ==", "cursor is not a next_cursor"),  # "nope"
        ("cursor=WzEsMl0=", "cursor is not a next_cursor"),  # [1,2]
        ("cursor=WyJOYU4iLCJ4Il0=", "cursor is not a next_cursor"),  # ["NaN","x"]
        ("cursor=" + "A" * 3000, "cursor is not a next_cursor"),
        ("since=1", "unknown query parameter(s): since"),
        ("limit=1&limit=2", "limit given more than once"),
    ],
)
async def test_bad_parameters_are_a_400_naming_them(
    client: tuple[httpx.AsyncClient, SqliteStore], query: str, named: str
) -> None:
    http, store = client
    store.record_deletions([deletion("a" * 40, 1.0)])
    answer = await http.get(f"/api/v1/retention/deletions?{query}")
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["error"]


async def test_metrics_count_images_manifests_and_bytes_from_the_record(
    client: tuple[httpx.AsyncClient, SqliteStore],
) -> None:
    http, store = client
    before = (await http.get("/metrics")).text
    assert "binderhub_service_retention_deleted_total 0.0" in before
    assert "binderhub_service_retention_freed_bytes_total 0.0" in before
    # one manifest with two tags (its bytes once), one the registry could not measure
    store.record_deletions([deletion("a" * 40, 1.0, 300), deletion("b" * 40, 1.0, 300)])
    other = ImageDeletion("r.example/binder-b:" + "c" * 40, "binder-b", "sha256:" + "8" * 64,
                          2.0, "run-1", None)  # fmt: skip
    store.record_deletions([other])
    text = (await http.get("/metrics")).text
    assert "binderhub_service_retention_deleted_total 3.0" in text
    assert "binderhub_service_retention_deleted_manifests_total 2.0" in text
    assert "binderhub_service_retention_freed_bytes_total 300.0" in text
    # the HTTP layer's own metrics are still there
    assert "binderhub_service_webhook_deliveries" in text


def test_a_cursor_names_the_last_deletion_of_its_page() -> None:
    rows = [deletion("a" * 40, 3.0), deletion("b" * 40, 2.0), deletion("c" * 40, 1.0)]
    page = page_of(rows, 2)
    assert page.deletions == rows[:2]
    assert page.next_cursor == cursor_of(rows[1])
    assert deletion_query("2", page.next_cursor).after == (2.0, rows[1].image)
    assert page_of(rows[:2], 2).next_cursor is None
    assert page_of([], 2).next_cursor is None
    assert deletion_query().limit == 100


def test_the_metrics_text_names_each_total() -> None:
    text = retention_metrics(DeletionTotals(images=4, manifests=3, freed_bytes=1005)).decode()
    assert "binderhub_service_retention_deleted_total 4.0" in text
    assert "binderhub_service_retention_deleted_manifests_total 3.0" in text
    assert "binderhub_service_retention_freed_bytes_total 1005.0" in text
