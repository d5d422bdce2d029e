"""A small fake of the pool's fault-facing seam (docs/internal-api.md §1) for unit tests.

It records what a fault asked for (signals, controls, partitions, calls) and plays the pool's
part just enough: a SIGKILLed worker dies, emits ``crash`` and is replaced (``start``) unless the
slot's circuit is open; ``wait_serving`` answers from the current handles.
"""

from __future__ import annotations

import itertools
import random
import signal
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from chaospool.errors import CircuitOpen, WorkerCrashed
from chaospool.fault import Fault, FaultContext

_pids = itertools.count(40_000)


@dataclass(frozen=True)
class FakeEvent:
    kind: str
    time: float
    index: int | None
    pid: int | None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FakeTarget:
    kind: str = "default"
    workers: tuple[int, ...] = ()
    count: int | None = None
    fraction: float | None = None
    session: str | None = None


@dataclass(frozen=True)
class FakeStats:
    ready_workers: int
    busy_workers: int
    queue_depth: int


@dataclass
class FakeConfig:
    size: int
    max_overflow: int


class FakePartition:
    def __init__(self, direction: str, mode: str) -> None:
        self.direction = direction
        self.mode = mode
        self.heals = 0
        self.fail_heal = False
        self.counts = {"dropped": 3, "held": 0, "delivered_late": 0, "late_discarded": 0}
        if mode == "hold":
            self.counts.update(dropped=0, held=2)

    async def heal(self) -> None:
        self.heals += 1
        if self.fail_heal:
            raise RuntimeError("heal failed")
        if self.mode == "hold":
            self.counts.update(delivered_late=2, late_discarded=1)


class FakeHandle:
    def __init__(self, pool: FakePool, index: int, pid: int | None = None) -> None:
        self.pool = pool
        self.index = index
        self.pid = next(_pids) if pid is None else pid
        self.state = "ready"
        self.overflow = index >= pool.config.size
        self.requests = 0
        self.stopped = False
        self.signals: list[int] = []
        self.controls: list[tuple[str, Any]] = []
        self.partitions: list[FakePartition] = []
        self.channel_closed = False
        self.rss_value = 50_000_000
        self.replies: dict[str, Any] = {}
        self.fail: set[str] = set()  # operations that raise
        self.vanished = False  # the process died; the pool has not noticed yet

    def _refuse_dead(self, op: str) -> None:
        if self.vanished:
            raise ProcessLookupError(f"worker {self.pid} has exited")
        if self.state == "dead":
            raise WorkerCrashed(f"worker {self.pid} is dead", pid=self.pid)
        if op in self.fail:
            raise RuntimeError(f"{op} failed")

    def signal(self, sig: int) -> None:
        self._refuse_dead(f"signal:{int(sig)}")
        self.signals.append(int(sig))
        if sig == signal.SIGSTOP:
            self.stopped = True
        elif sig == signal.SIGCONT:
            self.stopped = False
        elif sig in (signal.SIGKILL, signal.SIGTERM):
            self.pool.crash(self, exitcode=-int(sig), sig=int(sig))

    def close_channel(self) -> None:
        self._refuse_dead("close_channel")
        self.channel_closed = True
        self.pool.crash(self, exitcode=0, sig=None)

    async def control(
        self, op: str, args: Mapping[str, Any] | None = None, *, timeout: float = 5.0  # noqa: ASYNC109 - the seam's signature
    ) -> Any:
        self._refuse_dead(op)
        self.controls.append((op, dict(args or {})))
        if op == "leak":
            self.rss_value += int((args or {})["limit"])
        elif op == "unleak":
            self.rss_value = 50_000_000
        return self.replies.get(op)

    def partition(self, direction: str, mode: str) -> FakePartition:
        self._refuse_dead("partition")
        part = FakePartition(direction, mode)
        self.partitions.append(part)
        return part

    def rss(self) -> int | None:
        return None if self.state == "dead" else self.rss_value

    def status(self) -> str | None:
        if self.state == "dead" or self.vanished:
            return None
        return "stopped" if self.stopped else "sleeping"

    def ops(self) -> list[str]:
        return [op for op, _ in self.controls]


class FakePool:
    """The seam a fault may use: workers, subscribe, owns, wait_serving, execute, stats."""

    def __init__(self, size: int = 4, max_overflow: int = 0) -> None:
        self.config = FakeConfig(size, max_overflow)
        self.slots: dict[int, FakeHandle] = {i: FakeHandle(self, i) for i in range(size)}
        self.owned: set[int] = {h.pid for h in self.slots.values()}
        self.subscribers: list[Callable[[Any], None]] = []
        self.circuit_open: set[int] = set()
        self.sessions: dict[str, int] = {}
        self.retired: list[FakeHandle] = []
        self.busy = 0
        self.queue_depth = 0
        self.calls: list[tuple[str, Any, float | None]] = []
        self.on_execute: Callable[[str, Any], Awaitable[Any]] | None = None
        self.changed: anyio.Event | None = None  # created in the loop, on first wait

    @property
    def workers(self) -> list[FakeHandle]:
        return [self.slots[i] for i in sorted(self.slots)]

    def subscribe(self, callback: Callable[[Any], None],
                  kinds: Iterable[str] | None = None) -> Callable[[], None]:
        # as the real bus: a subscriber that named kinds sees only those
        wanted = None if kinds is None else frozenset(kinds)

        def deliver(event: Any) -> None:
            if wanted is None or event.kind in wanted:
                callback(event)

        self.subscribers.append(deliver)
        return lambda: self.subscribers.remove(deliver)

    def emit(self, kind: str, handle: FakeHandle | None = None, *, at: float | None = None,
             **data: Any) -> None:
        event = FakeEvent(kind, time.monotonic() if at is None else at,
                          None if handle is None else handle.index,
                          None if handle is None else handle.pid, data)
        for callback in list(self.subscribers):
            callback(event)

    def owns(self, pid: int) -> bool:
        return pid in self.owned

    def worker_for_session(self, session: str) -> FakeHandle | None:
        index = self.sessions.get(session)
        return None if index is None else self.slots[index]

    def crash(self, handle: FakeHandle, *, exitcode: int | None, sig: int | None) -> None:
        handle.state = "dead"
        self.retired.append(handle)
        self.emit("crash", handle, exitcode=exitcode, signal=sig)
        if handle.index in self.circuit_open:
            return
        fresh = FakeHandle(self, handle.index)
        self.owned.add(fresh.pid)
        self.slots[handle.index] = fresh
        self.emit("restart", fresh)
        self.emit("start", fresh)
        if self.changed is not None:
            self.changed.set()
            self.changed = None

    async def wait_serving(self, index: int, *, not_pid: int | None = None,
                           timeout: float = 10.0) -> FakeHandle:  # noqa: ASYNC109 - the seam's signature
        if index in self.circuit_open:
            raise CircuitOpen(f"slot {index}: restart intensity exceeded")
        with anyio.fail_after(timeout):
            while True:
                handle = self.slots[index]
                if handle.state in ("ready", "busy") and handle.pid != not_pid:
                    return handle
                if self.changed is None:
                    self.changed = anyio.Event()
                await self.changed.wait()

    async def execute(self, command: str, args: Any = None, *, session: str | None = None,
                      timeout: float | None = None, retries: int = 0) -> Any:  # noqa: ASYNC109 - the seam's
        self.calls.append((command, args, timeout))
        if self.on_execute is not None:
            return await self.on_execute(command, args)
        return "pong"

    def stats(self) -> FakeStats:
        return FakeStats(len(self.slots) - self.busy, self.busy, self.queue_depth)


def context(fault: type[Fault], pool: FakePool, targets: list[FakeHandle] | None = None,
            duration: float | None = None, **params: Any) -> FaultContext:
    return FaultContext(
        params=fault.Params(**params),
        targets=list(pool.workers[:1] if targets is None else targets),
        pool=pool,  # type: ignore[arg-type]
        rng=random.Random(7),
        duration=duration,
    )
