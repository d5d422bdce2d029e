"""The consistency checker: per-session counters, checked the way Jepsen checks a counter.

With ``load.consistency: true`` a share of the probe's operations are the built-in commands
``chaospool.incr`` and ``chaospool.read`` (served by every worker, see
``chaospool._worker.builtins``), on sessions of their own, whose state holds a counter. The pool
promises that a session's state survives its worker; this checks it (docs/reports.md,
"Consistency").

The probe never has two operations open on one checked session (a client takes a free
session: ``take``, O(1) from a list of the free ones), so each session's history is sequential
and the checker needs, per session, only:

* ``low``: acknowledged increments -- every later read must see at least this many;
* ``high``: increments that may have applied (acknowledged ones, indeterminate ones, and the
  attempts before a retry) -- no read can see more;
* ``seen``: the largest value an acknowledged operation observed -- a later read below it went
  backwards (a stale read).

Findings: ``lost_updates`` adds, per session, the largest number of acknowledged increments a
read (or an increment's own reply) found missing; ``stale_reads`` counts reads below an earlier
observation; ``overcounts`` counts values above ``high`` (an increment applied more often than
it was sent). The first few findings keep the operations involved. Memory: O(sessions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ("HALF_SHARE", "INCR", "READ", "SHARE", "Checker", "counter_sessions")

INCR = "chaospool.incr"
READ = "chaospool.read"
SHARE = 0.25  # the share of the probe's operations that are checked counter operations
# One uniform draw u decides a checked operation whole: u < SHARE checks, u < HALF_SHARE
# increments (else reads), and u's position inside its half picks the session (``take``).
HALF_SHARE = SHARE / 2
MAX_FINDINGS = 10
# (f, invoke, complete, pid, value) of one operation, for findings
OpRecord = tuple[str, float, float, int | None, int | None]


class Checker:
    """Counters of ``n`` sessions named ``{prefix}{i}``; O(n) memory whatever the run length."""

    def __init__(self, n: int, prefix: str = "chaospool-c") -> None:
        self.names = tuple(f"{prefix}{i}" for i in range(max(1, n)))
        size = len(self.names)
        self.low = [0] * size
        self.high = [0] * size
        self.seen = [0] * size
        self.deficit = [0] * size
        self.last_ack: list[OpRecord | None] = [None] * size
        self.last_seen: list[OpRecord | None] = [None] * size
        self.busy = bytearray(size)
        self.free = list(range(size))  # the sessions no operation holds, in no useful order
        self.increments_acknowledged = 0
        self.increments_indeterminate = 0
        self.reads = 0
        self.lost_updates = 0
        self.stale_reads = 0
        self.overcounts = 0
        self.findings: list[dict[str, Any]] = []

    def take(self, u: float) -> int:
        """A free session, drawn uniformly by ``u`` (a draw in [0, SHARE): its place inside
        its half of that range), marked busy; -1 if none is free. O(1): the last free one
        takes the drawn one's place in ``free``."""
        free = self.free
        if not free:
            return -1
        k = int(u % HALF_SHARE * (len(free) / HALF_SHARE))  # < n: HALF_SHARE is a power of 2
        i = free[k]
        free[k] = free[-1]
        free.pop()
        self.busy[i] = 1
        return i

    def release(self, i: int) -> None:
        """Session ``i`` is free again (nothing if it was not taken: a replayed history)."""
        if self.busy[i]:
            self.busy[i] = 0
            self.free.append(i)

    def acked(self, i: int, f: str, invoke: float, complete: float, reply: Any) -> bool:
        """The probe's hot path: session ``i``'s operation succeeded at its first attempt with
        ``reply``. The usual case -- a plain dict within the bounds -- is checked here in one
        go (this runs for a quarter of the probe's operations); anything else goes through
        ``done``. False when ``reply`` is no counter reply (see ``done``)."""
        if type(reply) is dict:  # the built-ins answer a plain dict
            counter = reply.get("value")
            pid = reply.get("pid")
            # within the bounds: not below an earlier observation nor the acknowledged
            # increments (one more for this one), not above what may have applied
            if type(counter) is int and (pid is None or type(pid) is int) and (
                    counter >= self.seen[i]):
                if f == INCR:
                    if not self.low[i] < counter <= self.high[i] + 1:
                        return self.done(i, f, invoke, complete, 0, 1, reply)
                    self.last_ack[i] = op = (f, invoke, complete, pid, counter)
                    self.low[i] += 1
                    self.high[i] += 1
                    self.increments_acknowledged += 1
                elif self.low[i] <= counter <= self.high[i]:
                    op = (f, invoke, complete, pid, counter)
                    self.reads += 1
                else:
                    return self.done(i, f, invoke, complete, 0, 1, reply)
                self.seen[i] = counter
                self.last_seen[i] = op
                self.busy[i] = 0  # (``release`` inline: this runs for a quarter of them)
                self.free.append(i)
                return True
        return self.done(i, f, invoke, complete, 0, 1, reply)

    def done(self, i: int, f: str, invoke: float, complete: float, outcome: int,
             attempts: int, reply: Any) -> bool:
        """Session ``i``'s operation ended, ``reply`` the raw reply of an ok one. False when
        that reply is no counter reply: the probe records a wrong reply, and the checker
        counts the operation as indeterminate (it may have applied)."""
        value = self.reply(reply) if outcome == 0 else None
        wrong = outcome == 0 and value is None
        self.complete(i, f, invoke, complete, 2 if wrong else outcome, attempts, value)
        return not wrong

    @staticmethod
    def reply(value: Any) -> tuple[int, int | None] | None:
        """``(counter, pid)`` from a built-in command's reply; None if it is not one."""
        if not isinstance(value, Mapping):
            return None
        counter, pid = value.get("value"), value.get("pid")
        if not isinstance(counter, int) or isinstance(counter, bool):
            return None
        return counter, pid if isinstance(pid, int) else None

    def complete(self, i: int, f: str, invoke: float, complete: float, outcome: int,
                 attempts: int, value: tuple[int, int | None] | None) -> None:
        """Session ``i``'s operation ended: ``outcome`` 0 ok / 1 fail / 2 info, ``value`` the
        parsed reply of an ok one. The session is free again."""
        self.release(i)
        if f == INCR:
            self._increment(i, invoke, complete, outcome, attempts, value)
        elif outcome == 0 and value is not None:
            self.reads += 1
            self._observe(i, (f, invoke, complete, value[1], value[0]), self.low[i])

    def _increment(self, i: int, invoke: float, complete: float, outcome: int, attempts: int,
                   value: tuple[int, int | None] | None) -> None:
        # every attempt but a failed last one may have applied (retries follow info attempts)
        self.high[i] += attempts - (1 if outcome == 1 else 0)
        if outcome != 0:
            self.increments_indeterminate += outcome == 2
            return
        self.increments_acknowledged += 1
        counter, pid = value if value is not None else (None, None)
        op: OpRecord = (INCR, invoke, complete, pid, counter)
        if value is not None:  # the new value: an observation too (a history has none)
            self._observe(i, op, self.low[i] + 1)
        self.low[i] += 1
        self.last_ack[i] = op

    def _observe(self, i: int, op: OpRecord, floor: int) -> None:
        """An acknowledged value: at least ``floor`` (acknowledged increments), never below an
        earlier observation, never above what may have applied."""
        observed = op[4]
        assert observed is not None
        if observed < floor:
            missing = floor - observed
            if missing > self.deficit[i]:
                self.lost_updates += missing - self.deficit[i]
                self.deficit[i] = missing
            self._finding("lost_update", i, floor, op, self.last_ack[i])
        if observed < self.seen[i]:  # both, when a value is below the acks and an earlier read
            self.stale_reads += 1
            self._finding("stale_read", i, self.seen[i], op, self.last_seen[i])
        if observed > self.high[i]:
            self.overcounts += 1
            self._finding("overcount", i, self.high[i], op, self.last_ack[i])
        if observed >= self.seen[i]:
            self.seen[i] = observed
            self.last_seen[i] = op

    def _finding(self, kind: str, i: int, expected: int, op: OpRecord,
                 earlier: OpRecord | None) -> None:
        if len(self.findings) >= MAX_FINDINGS:
            return
        bound = "at most" if kind == "overcount" else "at least"
        ops = [_op_dict(o) for o in (earlier, op) if o is not None]
        self.findings.append({"kind": kind, "session": self.names[i],
                              "expected": f"{bound} {expected}", "observed": op[4],
                              "operations": ops})

    def to_dict(self) -> dict[str, Any]:
        """The journal's ``consistency`` section."""
        return {
            "sessions": len(self.names),
            "increments_acknowledged": self.increments_acknowledged,
            "lost_updates": self.lost_updates,
            "stale_reads": self.stale_reads,
            "increments_indeterminate": self.increments_indeterminate,
            "reads": self.reads,
            "overcounts": self.overcounts,
            "findings": [dict(f) for f in self.findings],
        }


def _op_dict(op: OpRecord) -> dict[str, Any]:
    f, invoke, complete, pid, value = op
    return {"f": f, "invoke": round(invoke, 6), "complete": round(complete, 6), "pid": pid,
            "value": value}


def counter_sessions(sessions: int | None, clients: int) -> int:
    """How many checked sessions: the load's ``sessions``, else one per client (at most 64)."""
    return sessions if sessions else max(1, min(64, clients))


