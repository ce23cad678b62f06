"""Following a build's log (``kube_watch.LogFollower``), against a stand-in stream."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobs.executors.kube_watch import LogFollower

# -- following a build's log --------------------------------------------------------------


class FakeLogResponse:
    """What ``read_namespaced_pod_log(..., _preload_content=False)`` returns: a stream."""

    def __init__(self, text: bytes, chunk: int) -> None:
        self._text, self._chunk = text, chunk

    def stream(self, amt: int, decode_content: bool) -> Any:
        for i in range(0, len(self._text), self._chunk):
            yield self._text[i : i + self._chunk]

    def release_conn(self) -> None:
        pass

    def close(self) -> None:
        pass


class FakeCore:
    def __init__(self, *logs: bytes) -> None:
        self._logs = list(logs)

    def read_namespaced_pod_log(self, *args: Any, **kwargs: Any) -> FakeLogResponse:
        return FakeLogResponse(self._logs.pop(0), chunk=7)  # lines split across chunks


LOG = b"".join(
    json.dumps({"phase": "building", "message": f"step {n}\n"}).encode() + b"\n"
    for n in range(1, 6)
)


async def follow(core: FakeCore, skip: int) -> tuple[list[str], LogFollower]:
    import asyncio

    lines: list[str] = []
    follower = LogFollower(
        core, "ns", "pod", skip, lambda line: lines.append(line.message), asyncio.get_running_loop()
    )
    await follower.done.wait()
    await asyncio.sleep(0)  # the lines handed over before "done"
    return lines, follower


@pytest.mark.anyio
async def test_a_log_read_again_skips_what_was_delivered() -> None:
    # the first stream broke off after three lines; the second is read from the start
    first, follower = await follow(FakeCore(LOG[: LOG.index(b"step 4") - 30]), skip=0)
    assert first == ["step 1", "step 2", "step 3"]
    assert follower.seen == 3
    again, _ = await follow(FakeCore(LOG), skip=follower.seen)
    assert again == ["step 4", "step 5"]
