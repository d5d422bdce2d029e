"""The outcome recorder: one row per operation, in compact arrays.

Recording sits on the probe's hot path, so a row is four ``array`` appends (start, end, outcome
code, attempts) and nothing else: no objects per operation, no histogram updates. Everything
derived -- histograms, phases, the timeline -- is built once, at summary time.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass

from chaospool.errors import ChaospoolError, WorkerCrashed

__all__ = (
    "ERROR_KINDS",
    "OK",
    "OUTCOME_KINDS",
    "WRONG_REPLY",
    "Outcome",
    "Recorder",
    "code_of",
)

# Index = outcome code. "ok" covers plain and recovered successes (attempts tells them apart).
OUTCOME_KINDS: tuple[str, ...] = (
    "ok",
    "checkout_timeout",
    "queue_full",
    "request_timeout",
    "worker_crashed",
    "circuit_open",
    "command_error",
    "pool_closed",
    "wrong_reply",
)
ERROR_KINDS: tuple[str, ...] = OUTCOME_KINDS[1:]
OK = 0
WRONG_REPLY = OUTCOME_KINDS.index("wrong_reply")
_CODE = {kind: code for code, kind in enumerate(OUTCOME_KINDS)}


def code_of(exc: ChaospoolError) -> int:
    """The outcome code of a failed attempt.

    ``WorkerStartError`` and ``ProtocolError`` subclass ``WorkerCrashed`` and count as it: to a
    client they are the same event (the worker holding the call is gone). An error of a kind
    outside the contract's list is a bug in the pool, so it is raised rather than disguised.
    """
    if isinstance(exc, WorkerCrashed):
        return _CODE["worker_crashed"]
    code = _CODE.get(exc.kind)
    if code is None or code == OK:
        raise exc
    return code


@dataclass(frozen=True)
class Outcome:
    """One recorded operation, for inspection (the recorder itself stores arrays)."""

    start: float
    end: float
    kind: str
    attempts: int

    @property
    def latency(self) -> float:
        return self.end - self.start

    @property
    def recovered(self) -> bool:
        return self.kind == "ok" and self.attempts > 1


class Recorder:
    """Per-operation rows: ``starts``/``ends`` (run clock, seconds), ``codes``, ``attempts``.

    ``cancelled`` counts operations cut off by an outside cancellation (an aborted run); they
    have no outcome and are not rows.
    """

    __slots__ = ("attempts", "cancelled", "codes", "ends", "starts")

    def __init__(self) -> None:
        self.starts = array("d")
        self.ends = array("d")
        self.codes = array("B")
        self.attempts = array("I")
        self.cancelled = 0

    def __len__(self) -> int:
        return len(self.codes)

    def add(self, start: float, end: float, code: int, attempts: int) -> None:
        self.starts.append(start)
        self.ends.append(end)
        self.codes.append(code)
        self.attempts.append(attempts)

    def record(self, start: float, end: float, kind: str, attempts: int = 1) -> None:
        """Add a row by outcome name (``"ok"`` or an error kind); for tests and replays."""
        self.add(start, end, _CODE[kind], attempts)

    def __iter__(self) -> Iterator[Outcome]:
        for start, end, code, attempts in zip(
            self.starts, self.ends, self.codes, self.attempts, strict=True
        ):
            yield Outcome(start, end, OUTCOME_KINDS[code], attempts)
