"""What the pool tells the outside: ``PoolEvent`` (pushed) and ``PoolStats`` (pulled)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_log = logging.getLogger("chaospool.pool")

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
    subscriber_errors: int = 0  # exceptions raised by event subscribers (each logged once)


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
    """Synchronous subscribers; emitting costs nothing when nobody listens.

    A subscriber that raises must not break the request path, nor grow the pool's memory: its
    first error is logged (``chaospool.pool``, with the traceback), every error is counted
    (``errors``, per subscriber in ``errors_by``), and nothing else is kept.
    """

    __slots__ = ("errors", "errors_by", "subscribers")

    def __init__(self) -> None:
        self.subscribers: list[Callable[[PoolEvent], None]] = []
        self.errors = 0
        # id(subscriber) -> its error count, while it is subscribed (unsubscribe drops it)
        self.errors_by: dict[int, int] = {}

    def subscribe(self, callback: Callable[[PoolEvent], None]) -> Callable[[], None]:
        self.subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self.subscribers:
                self.subscribers.remove(callback)
                if callback not in self.subscribers:
                    self.errors_by.pop(id(callback), None)

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
                self._failed(callback, event, exc)

    def _failed(self, callback: Callable[[PoolEvent], None], event: PoolEvent,
                exc: Exception) -> None:
        self.errors += 1
        count = self.errors_by[id(callback)] = self.errors_by.get(id(callback), 0) + 1
        if count == 1:
            _log.error("pool event subscriber %r raised on a %r event; its further errors are "
                       "counted (PoolStats.subscriber_errors), not logged", callback,
                       event.kind, exc_info=exc)
