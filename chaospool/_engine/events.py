"""The pool's own reactions during a run, kept for the journal's ``events`` list.

Worker crashes, replacements, kills of timed-out or unhealthy workers, recycles, retirements
and the circuit breaker's moves: what a reader of the timeline needs to see beside the faults
(docs/reports.md, "Pool events"). Per-call events (checkout, checkin, queue_full, ...) are not
kept: they are counted by the probe already. The list is bounded, so a run that crashes
workers in a loop for a day keeps a fixed amount of memory; ``dropped`` counts the rest.
"""

from __future__ import annotations

from typing import Any

__all__ = ("KEPT_KINDS", "MAX_EVENTS", "EventLog")

KEPT_KINDS = frozenset({"crash", "restart", "timeout", "health_fail", "recycle", "retire",
                        "circuit_open", "circuit_half_open"})
MAX_EVENTS = 1000
_DATA_KEYS = ("exitcode", "signal", "exit_signal", "reason", "replaces", "command", "failures")


class EventLog:
    """The first ``MAX_EVENTS`` kept pool events, times relative to the run's start."""

    def __init__(self, limit: int = MAX_EVENTS) -> None:
        self.limit = limit
        self.items: list[dict[str, Any]] = []
        self.dropped = 0

    def note(self, event: Any, t0: float) -> None:
        if event.kind not in KEPT_KINDS or not t0:
            return  # warm-up is before the run's clock: not part of any phase
        if len(self.items) >= self.limit:
            self.dropped += 1
            return
        item: dict[str, Any] = {"t": round(event.time - t0, 6), "kind": event.kind,
                                "index": event.index, "pid": event.pid}
        item.update({k: _plain(v) for k, v in event.data.items() if k in _DATA_KEYS})
        self.items.append(item)


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)
