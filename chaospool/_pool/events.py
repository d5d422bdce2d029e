"""What the pool tells the outside: ``PoolEvent`` (pushed) and ``PoolStats`` (pulled)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
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


def _known_kinds(kinds: Iterable[str]) -> frozenset[str]:
    wanted = frozenset([kinds] if isinstance(kinds, str) else kinds)
    unknown = sorted(wanted - frozenset(EVENT_KINDS))
    if unknown:
        raise ValueError(f"unknown pool event kind(s) {unknown}; known: {', '.join(EVENT_KINDS)}")
    return wanted


class EventBus:
    """Synchronous subscribers; emitting costs nothing when nobody listens.

    A subscriber that raises must not break the request path, nor grow the pool's memory: its
    first error is logged (``chaospool.pool``, with the traceback), every error is counted
    (``errors``, per subscriber in ``errors_by``), and nothing else is kept.
    """

    __slots__ = ("_routes", "_wants", "errors", "errors_by", "subscribers")

    def __init__(self) -> None:
        self.subscribers: list[Callable[[PoolEvent], None]] = []
        # the kinds each subscriber asked for (None: every kind), and per kind the callbacks
        # that want it, built on first emit: an event of a kind nobody wants (a checkout while
        # only restarts are watched) costs one dict lookup and builds nothing
        self._wants: list[tuple[Callable[[PoolEvent], None], frozenset[str] | None]] = []
        self._routes: dict[str, tuple[Callable[[PoolEvent], None], ...]] = {}
        self.errors = 0
        # id(subscriber) -> its error count, while it is subscribed (unsubscribe drops it)
        self.errors_by: dict[int, int] = {}

    def subscribe(self, callback: Callable[[PoolEvent], None],
                  kinds: Iterable[str] | None = None) -> Callable[[], None]:
        # each subscription is its own entry: the same callback subscribed twice (with other
        # kinds) is unsubscribed entry by entry, never the other one's
        entry = (callback, None if kinds is None else _known_kinds(kinds))
        self._wants.append(entry)
        self._changed()

        def unsubscribe() -> None:
            for i, other in enumerate(self._wants):
                if other is entry:
                    del self._wants[i]
                    self._changed()
                    if callback not in self.subscribers:
                        self.errors_by.pop(id(callback), None)
                    return

        return unsubscribe

    def _changed(self) -> None:
        self.subscribers = [callback for callback, _ in self._wants]
        self._routes.clear()

    def _route(self, kind: str) -> tuple[Callable[[PoolEvent], None], ...]:
        route = self._routes[kind] = tuple(
            cb for cb, wants in self._wants if wants is None or kind in wants)
        return route

    def emit(
        self, kind: str, index: int | None = None, pid: int | None = None, **data: Any
    ) -> None:
        route = self._routes.get(kind)
        if route is None:
            route = self._route(kind)
        if not route:
            return
        event = PoolEvent(kind, time.monotonic(), index, pid, data)
        for callback in route:
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
