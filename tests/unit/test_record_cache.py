"""Record resolutions kept (jobs/sources/record_cache.py): fixed versions for good,
moving ones for the TTL, errors never; concurrent requests share one resolution."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from jobs import errors
from jobs.sources.record_cache import RecordCache
from jobs.sources.records import DoiSource, RecordSource, RecordVersion

CONCEPT = RecordSource("zenodo", "zenodo.org", "3242074")
VERSION = RecordSource("zenodo", "zenodo.org", "3242075")
DOI = DoiSource("10.7910/dvn/tjclkp")
LATEST = RecordVersion("zenodo", "zenodo.org", "3242074", "3242081", "c", 1, moves=True)
FIXED = RecordVersion("zenodo", "zenodo.org", "3242074", "3242075", "c", 1, moves=False)


class Provider:
    """Answers from ``answers`` (one per call, the last repeated), counting calls; a
    call waits for ``gate`` when one is set."""

    def __init__(self, *answers: RecordVersion | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def resolve(self, source: RecordSource | DoiSource) -> RecordVersion:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        answer = self.answers[min(self.calls, len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_moving_resolution_is_kept_for_the_ttl() -> None:
    newer = replace(LATEST, version="3242090")
    provider, clock = Provider(LATEST, newer), Clock()
    cache = RecordCache(provider, ttl=60, clock=clock)
    assert asyncio.run(cache.resolve(CONCEPT)) == LATEST
    clock.now += 59.9
    assert asyncio.run(cache.resolve(CONCEPT)) == LATEST
    assert provider.calls == 1
    clock.now += 0.1
    assert asyncio.run(cache.resolve(CONCEPT)) == newer
    assert provider.calls == 2


def test_a_fixed_version_is_kept_for_good_and_a_doi_for_the_ttl() -> None:
    provider, clock = Provider(FIXED), Clock()
    cache = RecordCache(provider, ttl=60, clock=clock)
    asyncio.run(cache.resolve(VERSION))
    asyncio.run(cache.resolve(DOI))  # leads to a fixed version, but where it leads may change
    clock.now += 10**6
    assert cache.cached(VERSION) == FIXED
    assert cache.cached(DOI) is None
    assert provider.calls == 2


@pytest.mark.parametrize(
    "error",
    [errors.ProviderUnavailable("zenodo.org answered 503"), errors.RecordNotFound("no 3242074")],
)
def test_errors_are_never_kept(error: Exception) -> None:
    provider = Provider(error, LATEST)
    cache = RecordCache(provider, ttl=60, clock=Clock())
    with pytest.raises(type(error)):
        asyncio.run(cache.resolve(CONCEPT))
    assert cache.cached(CONCEPT) is None
    assert asyncio.run(cache.resolve(CONCEPT)) == LATEST
    assert provider.calls == 2


def test_concurrent_requests_share_one_resolution() -> None:
    provider = Provider(LATEST)
    cache = RecordCache(provider, ttl=60, clock=Clock())

    async def many() -> list[RecordVersion]:
        provider.gate = asyncio.Event()
        waiting = [asyncio.ensure_future(cache.resolve(CONCEPT)) for _ in range(5)]
        await asyncio.sleep(0)
        provider.gate.set()
        return list(await asyncio.gather(*waiting))

    assert asyncio.run(many()) == [LATEST] * 5
    assert provider.calls == 1


def test_the_least_recently_used_goes_first_when_full() -> None:
    provider = Provider(FIXED)
    cache = RecordCache(provider, ttl=60, clock=Clock(), max_entries=2)
    first, second, third = (RecordSource("zenodo", "zenodo.org", str(n)) for n in (1, 2, 3))
    for source in (first, second):
        asyncio.run(cache.resolve(source))
    assert cache.cached(first) is not None  # first is now the most recently used
    asyncio.run(cache.resolve(third))
    assert cache.cached(second) is None
    assert cache.cached(first) is not None
    assert cache.cached(third) is not None
