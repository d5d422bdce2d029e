"""Outcome codes, and the buffered recorder (one row per operation) for tests and replays.

The live probe does not keep rows: it hands each operation to an
:class:`~chaospool._probe.aggregate.Aggregator`, whose memory does not grow with the run
(docs/design.md, "Long runs"). :class:`Recorder` keeps rows in compact arrays for what needs
the operations themselves -- tests, and summaries of a finished list of operations -- and
:func:`~chaospool._probe.summary.summarize` replays them through the same aggregator, so there
is one way to count.

Outcomes (docs/reports.md, "Outcomes"): every operation ends ``ok``, ``fail`` (it certainly had
no effect) or ``info`` (indeterminate: it may have had one).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from chaospool.errors import (
    ChaospoolError,
    ProtocolError,
    RequestTimeout,
    WorkerCrashed,
    WorkerStartError,
)

__all__ = (
    "ERROR_KINDS",
    "FAIL",
    "INFO",
    "OK",
    "OUTCOMES",
    "OUTCOME_KINDS",
    "WRONG_REPLY",
    "Outcome",
    "Recorder",
    "code_of",
    "outcome_of",
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

# Index = outcome (ok / fail / info); an operation's outcome is one of these three.
OUTCOMES: tuple[str, ...] = ("ok", "fail", "info")
FAIL, INFO = 1, 2
# The outcome an error kind has when nothing finer is known (see outcome_of). A wrong reply is
# info: the pool handed back some other call's answer, so whether this call ran is unknown.
_KIND_OUTCOME = {
    "ok": OK, "checkout_timeout": FAIL, "queue_full": FAIL, "circuit_open": FAIL,
    "pool_closed": FAIL, "command_error": FAIL,
    "request_timeout": INFO, "worker_crashed": INFO, "wrong_reply": INFO,
}
KIND_OUTCOMES: tuple[int, ...] = tuple(_KIND_OUTCOME[k] for k in OUTCOME_KINDS)


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


def outcome_of(exc: ChaospoolError) -> int:
    """``FAIL`` or ``INFO`` for a failed attempt, from what the error says about where the call
    was when it failed.

    The pool's errors do not carry a "reached a worker" flag, so the type decides: a request
    timeout or a crash (a broken link, a malformed frame) happened while a worker held the call:
    it may have run -- info. A worker that never finished starting never held it; every other
    refusal (queue full, checkout timeout, circuit open, pool closed) comes before a worker is
    chosen, and a command error means the handler raised -- fail.
    """
    if isinstance(exc, WorkerStartError):
        return FAIL
    if isinstance(exc, WorkerCrashed | RequestTimeout | ProtocolError):
        return INFO
    return FAIL


def kind_index(kind: str) -> int:
    """The code of an outcome kind (``"ok"`` or an error kind)."""
    return _CODE[kind]


@dataclass(frozen=True)
class Outcome:
    """One recorded operation, for inspection (the recorder itself stores arrays)."""

    start: float
    end: float
    kind: str
    attempts: int
    outcome: str = "ok"
    maybe_duplicated: bool = False

    @property
    def latency(self) -> float:
        return self.end - self.start

    @property
    def recovered(self) -> bool:
        return self.kind == "ok" and self.attempts > 1


class Recorder:
    """Per-operation rows: ``starts``/``ends`` (run clock, seconds), ``codes``, ``attempts``,
    ``outcomes`` (ok / fail / info) and ``dups`` (1: an earlier attempt was info, so the
    operation may have applied more than once).

    ``cancelled`` counts operations cut off by an outside cancellation (an aborted run); they
    have no outcome and are not rows. The memory grows with the operations: the live probe
    uses an ``Aggregator`` instead.
    """

    __slots__ = ("attempts", "cancelled", "codes", "dups", "ends", "outcomes", "starts")

    # The aggregator's fast path, inlined in the probe's loop (``end < edge and start >= lo``:
    # ``lane.append(latency)``), never applies to rows: every operation goes through ``add_ok``.
    edge = -math.inf
    lo = math.inf
    lane: ClassVar[list[float]] = []  # never appended to: no end is below -inf

    def __init__(self) -> None:
        self.starts = array("d")
        self.ends = array("d")
        self.codes = array("B")
        self.attempts = array("I")
        self.outcomes = array("B")
        self.dups = array("B")
        self.cancelled = 0

    def __len__(self) -> int:
        return len(self.codes)

    def add(self, start: float, end: float, code: int, attempts: int,
            outcome: int = -1, dup: bool = False) -> None:
        """One operation; ``outcome`` -1 means "the kind's usual outcome"."""
        self.starts.append(start)
        self.ends.append(end)
        self.codes.append(code)
        self.attempts.append(attempts)
        self.outcomes.append(KIND_OUTCOMES[code] if outcome < 0 else outcome)
        self.dups.append(1 if dup else 0)

    def add_ok(self, start: float, end: float) -> None:
        """One operation that succeeded at its first attempt (the aggregator's fast path)."""
        self.add(start, end, OK, 1, OK, False)

    def record(self, start: float, end: float, kind: str, attempts: int = 1, *,
               outcome: str | None = None, maybe_duplicated: bool = False) -> None:
        """Add a row by outcome name (``"ok"`` or an error kind); for tests and replays."""
        out = -1 if outcome is None else OUTCOMES.index(outcome)
        self.add(start, end, _CODE[kind], attempts, out, maybe_duplicated)

    def __iter__(self) -> Iterator[Outcome]:
        rows = zip(self.starts, self.ends, self.codes, self.attempts, self.outcomes, self.dups,
                   strict=True)
        for start, end, code, attempts, outcome, dup in rows:
            yield Outcome(start, end, OUTCOME_KINDS[code], attempts, OUTCOMES[outcome],
                          bool(dup))
