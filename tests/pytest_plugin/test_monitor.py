"""chaospool.testing.monitor: counts a pool's events during a block, and only during it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from chaospool.testing import monitor

pytestmark = [pytest.mark.unit, pytest.mark.anyio, pytest.mark.timeout(10)]


@dataclass(frozen=True)
class Stats:
    queue_depth: int = 0
    max_queue_depth: int = 0
    errors: int = 0


@dataclass(frozen=True)
class Event:
    kind: str
    index: int | None = 0
    pid: int | None = 100
    data: dict[str, Any] = field(default_factory=dict)
    time: float = 0.0


class FakePool:
    """The two seams monitor uses: ``subscribe`` and ``stats``."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[Any], None]] = []
        self.current = Stats()

    def subscribe(self, callback: Callable[[Any], None], kinds: Any = None) -> Callable[[], None]:
        self.listeners.append(callback)
        return lambda: self.listeners.remove(callback)

    def stats(self) -> Stats:
        return self.current

    def emit(self, kind: str, **stats: int) -> None:
        self.current = dataclasses.replace(self.current, **stats)
        for listener in list(self.listeners):
            listener(Event(kind))


async def test_counts_events_inside_the_block_only() -> None:
    pool = FakePool()
    pool.emit("checkout", errors=4, max_queue_depth=9)  # earlier traffic: not counted
    async with monitor(pool) as seen:  # type: ignore[arg-type]
        pool.emit("checkout", queue_depth=3)
        pool.emit("checkin", queue_depth=2)
        pool.emit("crash", errors=5)
        pool.emit("restart", queue_depth=0)
        pool.emit("timeout", errors=6)
        assert seen.checkouts == 1  # live during the block
    pool.emit("checkout")
    assert pool.listeners == []
    assert (seen.checkouts, seen.checkins, seen.restarts, seen.crashes, seen.timeouts) == (
        1,
        1,
        1,
        1,
        1,
    )
    assert seen.errors == 2  # stats().errors grew from 4 to 6
    assert seen.error_events == 2
    assert seen.max_queue_depth == 3  # the earlier high-water mark of 9 is not ours
    assert seen.kinds["checkout"] == 1


async def test_pool_high_water_mark_counts_when_it_rose_in_the_block() -> None:
    pool = FakePool()
    pool.emit("checkout", max_queue_depth=2)
    async with monitor(pool) as seen:  # type: ignore[arg-type]
        pool.emit("queue_full", queue_depth=1, max_queue_depth=7)  # a peak between events
    assert seen.max_queue_depth == 7
    assert seen.error_events == 1


async def test_unsubscribes_when_the_block_raises() -> None:
    pool = FakePool()
    with pytest.raises(RuntimeError, match="boom"):
        async with monitor(pool):  # type: ignore[arg-type]
            raise RuntimeError("boom")
    assert pool.listeners == []
