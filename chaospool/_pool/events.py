"""What the pool tells the outside: ``PoolEvent`` (pushed) and ``PoolStats`` (pulled)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

EVENT_KINDS = (
    "start",
    "checkout",
    "checkin",
    "crash",
    "restart",
    "recycle",
    "timeout",
    "health_fail",
    "retire",
    "queue_full",
    "checkout_timeout",
    "circuit_open",
    "circuit_half_open",
    "late_reply",
)


@dataclass(frozen=True)
class PoolEvent:
    """One thing that happened in the pool (see ``EVENT_KINDS``)."""

    kind: str
    time: float
    index: int | None = None
    pid: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of the pool's state and counters (counters only grow)."""

    ready_workers: int
    busy_workers: int
    overflow_workers: int
    queue_depth: int
    max_queue_depth: int
    restarts: int
    checkouts: int
    checkins: int
    errors: int
    crashes: int
    timeouts: int
    recycles: int
    circuit_open: bool


class Counters:
    __slots__ = (
        "checkins",
        "checkouts",
        "crashes",
        "errors",
        "max_queue_depth",
        "recycles",
        "restarts",
        "timeouts",
    )

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    checkins: int
    checkouts: int
    crashes: int
    errors: int
    max_queue_depth: int
    recycles: int
    restarts: int
    timeouts: int


class EventBus:
    """Synchronous subscribers; emitting costs nothing when nobody listens."""

    __slots__ = ("errors", "subscribers")

    def __init__(self) -> None:
        self.subscribers: list[Callable[[PoolEvent], None]] = []
        # the last errors of broken subscribers (bounded: one may raise on every event)
        self.errors: deque[BaseException] = deque(maxlen=100)

    def subscribe(self, callback: Callable[[PoolEvent], None]) -> Callable[[], None]:
        self.subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self.subscribers:
                self.subscribers.remove(callback)

        return unsubscribe

    def emit(
        self, kind: str, index: int | None = None, pid: int | None = None, **data: Any
    ) -> None:
        if not self.subscribers:
            return
        event = PoolEvent(kind, time.monotonic(), index, pid, data)
        for callback in list(self.subscribers):
            try:
                callback(event)
            except Exception as exc:  # a broken subscriber must not break the request path
                self.errors.append(exc)
