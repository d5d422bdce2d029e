"""The steady-state probe: drives the pool with the experiment's load and records outcomes.

Two shapes of load:

* **closed loop** (``clients``): that many client tasks, each calling, then thinking ``think``
  seconds, then calling again. A slow pool slows the clients down -- the classic closed loop.
* **open loop** (``rate``): operations launched on a fixed schedule whether or not earlier ones
  completed. A late scheduler catches up (it never skips a slot), and the latency of an open-loop
  operation is measured from its *scheduled* time, so a stalled system shows up as latency
  instead of hiding behind fewer samples (coordinated omission). In-flight operations are capped
  (``max_in_flight``) only to bound memory; a launch refused by the cap is counted in ``shed``,
  so an open loop never silently turns into a closed one.

One *operation* is one client call including its retries: the probe retries a
``WorkerCrashed``/``RequestTimeout`` itself (``load.retries`` times) so it knows how many
attempts an operation needed, and records exactly one outcome for it.

Stopping: at ``stop_at`` no new operation starts; operations in flight run to their end, retries
included, each attempt bounded by the pool's own timeouts. Recording them as errors would
distort the result, and dropping them would lose outcomes. Only an outside cancellation (an
aborted run) cuts them off; those are counted in ``recorder.cancelled`` and have no outcome.
"""

from __future__ import annotations

import itertools
import math
import random
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import anyio
import anyio.abc
import anyio.lowlevel

from chaospool._probe.aggregate import Aggregator
from chaospool._probe.consistency import (
    HALF_SHARE,
    INCR,
    READ,
    SHARE,
    Checker,
    counter_sessions,
)
from chaospool._probe.history import HistoryWriter
from chaospool._probe.recorder import (
    INFO,
    OK,
    OUTCOME_KINDS,
    WRONG_REPLY,
    Recorder,
    code_of,
    outcome_of,
)
from chaospool.errors import ChaospoolError, RequestTimeout, WorkerCrashed

__all__ = ("DEFAULT_MAX_IN_FLIGHT", "LoadLike", "MixLike", "PoolLike", "Probe")

DEFAULT_MAX_IN_FLIGHT = 10_000
_RETRYABLE = (WorkerCrashed, RequestTimeout)


class MixLike(Protocol):
    """One entry of the command mix (``chaospool._dsl.model.MixEntry``)."""

    @property
    def command(self) -> str: ...
    @property
    def weight(self) -> float: ...
    @property
    def args(self) -> Any: ...


class LoadLike(Protocol):
    """The ``load:`` section (``chaospool._dsl.model.LoadSpec``)."""

    @property
    def clients(self) -> int: ...
    @property
    def rate(self) -> float | None: ...
    @property
    def think(self) -> float: ...
    @property
    def sessions(self) -> int | None: ...
    @property
    def retries(self) -> int: ...
    @property
    def mix(self) -> Sequence[MixLike]: ...


class PoolLike(Protocol):
    """What the probe needs of ``chaospool.Pool``."""

    async def execute(
        self,
        command: str,
        args: Any = None,
        *,
        session: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  reason: mirrors Pool.execute's signature
        retries: int = 0,
    ) -> Any: ...


def _carries(reply: Any, token: str) -> bool:
    """An ``echo`` reply is right only if it hands back this call's own token."""
    return isinstance(reply, Mapping) and reply.get("token") == token


class Probe:
    """Generates the load on ``pool`` and records one outcome per operation in ``recorder``.

    ``rng`` draws commands and sessions (seeded: the same seed gives the same mix);
    ``clock()`` returns seconds since the run's start and stamps every operation.
    ``recorder``: an ``Aggregator`` (a run: flat memory) or, by default, a ``Recorder`` that
    keeps rows (tests). ``checker``: the consistency checker (``load.consistency``; made here
    when the load asks for it). ``history``: where to stream the history (``--history``).
    """

    def __init__(
        self,
        pool: PoolLike,
        load: LoadLike,
        rng: random.Random,
        clock: Callable[[], float],
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        recorder: Recorder | Aggregator | None = None,
        history: HistoryWriter | None = None,
    ) -> None:
        if not load.mix:
            raise ValueError("load.mix is empty: the probe has nothing to call")
        weights = [float(e.weight) for e in load.mix]
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError("load.mix weights must be >= 0 and not all 0")
        self.recorder = recorder if recorder is not None else Recorder()
        self.history = history
        self.checker: Checker | None = None
        if getattr(load, "consistency", False):
            self.checker = Checker(counter_sessions(load.sessions, load.clients),
                                   prefix=f"chaospool-c{int(rng.random() * 1e6):06d}-")
        self._execute = pool.execute
        self._load = load
        self._random = rng.random
        self._clock = clock
        self._entries = [(e.command, e.args, e.command == "echo") for e in load.mix]
        # one command without echo token or session: nothing to draw per operation
        self._fixed: tuple[str, Any, None, None] | None = None
        if len(self._entries) == 1 and not self._entries[0][2] and not load.sessions:
            self._fixed = (self._entries[0][0], self._entries[0][1], None, None)
        self._cumulative = list(itertools.accumulate(weights))
        self._total_weight = self._cumulative[-1]
        self._sessions = tuple(f"s{i}" for i in range(load.sessions or 0))
        self._retries = max(0, int(load.retries))
        self._cap = max_in_flight
        self._stop_at = math.inf
        self._stopped = False
        self._tokens = 0
        self._launched = 0  # the open loop's launches
        self._in_op = 0  # closed-loop clients between an operation's start and its end
        self.shed = 0
        self.max_in_flight = 0
        self._ended = 0  # open-loop operations that ended (in_flight without a count)
        self._next_process = 0

    @property
    def open_loop(self) -> bool:
        return self._load.rate is not None

    @property
    def launched(self) -> int:
        """Operations started. The open loop counts its launches; a closed loop counts
        nothing per operation: its operations are those recorded plus one per client in
        the middle of one (a cut-off one included)."""
        if self.open_loop:
            return self._launched
        return len(self.recorder) + self._in_op

    @property
    def in_flight(self) -> int:
        return self.launched - len(self.recorder)

    def stop(self) -> None:
        """Start no new operation from now on (in-flight ones still finish)."""
        self._stopped = True
        self._stop_at = -math.inf

    async def run(self, stop_at: float) -> None:
        """Generate load until ``clock() >= stop_at``, then wait for in-flight operations."""
        if not self._stopped:
            self._stop_at = stop_at
        try:
            async with anyio.create_task_group() as tg:
                if self._load.rate is not None:
                    await self._schedule(tg, float(self._load.rate))
                else:
                    clients = max(1, int(self._load.clients))
                    self.max_in_flight = clients  # a closed loop holds one call per client
                    for _ in range(clients):
                        tg.start_soon(self._operations, None)
        finally:
            # Only an outside cancellation leaves launched operations without a row.
            self.recorder.cancelled = self.launched - len(self.recorder)

    def info(self) -> dict[str, Any]:
        """How the load was generated, for the journal (JSON-able)."""
        return {
            "mode": "open" if self.open_loop else "closed",
            "clients": None if self.open_loop else self._load.clients,
            "rate": self._load.rate,
            "launched": self.launched,
            "completed": len(self.recorder),
            "cancelled": self.recorder.cancelled,
            "shed": self.shed,
            "max_in_flight": self.max_in_flight,
            "in_flight_cap": self._cap if self.open_loop else None,
            "consistency": self.checker is not None,
        }

    # -- load shapes -----------------------------------------------------------------------

    async def _schedule(self, tg: anyio.abc.TaskGroup, rate: float) -> None:
        """Launch operation ``n`` at ``first + n / rate`` until ``stop_at``."""
        if rate <= 0:
            return
        clock, interval = self._clock, 1.0 / rate
        first, n = clock(), 0
        while (due := first + n * interval) < self._stop_at:
            now = clock()
            if due > now:
                await anyio.sleep(due - now)
                continue
            # Launch every slot already due: a late scheduler catches up, it never skips.
            while due <= now and due < self._stop_at:
                self._launch(tg, due)
                n += 1
                due = first + n * interval

    def _launch(self, tg: anyio.abc.TaskGroup, due: float) -> None:
        in_flight = self._launched - self._ended
        if in_flight >= self._cap:
            self.shed += 1
            return
        self._launched += 1
        self.max_in_flight = max(self.max_in_flight, in_flight + 1)
        tg.start_soon(self._operations, due)

    # -- one operation ---------------------------------------------------------------------

    def _draw(self) -> tuple[str, Any, str | None, str | None]:
        """The next command, args, echo token and session (weighted mix, seeded draws)."""
        entries, sessions = self._entries, self._sessions
        if len(entries) == 1:
            command, args, echo = entries[0]
        else:
            pick = bisect_right(self._cumulative, self._random() * self._total_weight)
            command, args, echo = entries[min(pick, len(entries) - 1)]
        session = sessions[int(self._random() * len(sessions))] if sessions else None
        if not echo or not (args is None or isinstance(args, Mapping)):
            return command, args, None, session
        self._tokens += 1
        token = f"op-{self._tokens}"
        return command, {**(args or {}), "token": token}, token, session

    def _process(self) -> int:
        """A fresh history process number (Knossos: a process with an info op never returns)."""
        self._next_process += 1
        return self._next_process - 1

    async def _operations(self, due: float | None) -> None:
        """One operation scheduled at ``due`` (open loop), or -- ``due`` None -- a closed-loop
        client's whole life: operation after operation until ``stop_at``.

        The probe's hot path (docs/design.md, "Performance"): one coroutine serves both loops
        so that the closed loop is a plain loop, without a coroutine per operation. The common
        operation -- ok at its first attempt, no history -- costs one clock read (without
        think time one operation's end is the next one's start: no await lies between them),
        one uniform draw with the checker on (it decides checked or not, increment or read,
        and the session), a positional call and ``add_ok``; no per-operation counter (a
        closed-loop client counts as in flight from its first start to its last end, see
        ``launched``). Everything rarer (draws, failures, retries, the history) sits behind
        one test each.
        """
        clock, execute, recorder = self._clock, self._execute, self.recorder
        add_ok = recorder.add_ok
        checker, history, random_, fixed = self.checker, self.history, self._random, self._fixed
        think, closed = self._load.think, due is None
        quiet = history is None  # an ok operation needs nothing but its latency recorded
        carry = closed and not think > 0  # one operation's end is the next one's start
        names, take, acked = ((checker.names, checker.take, checker.acked)
                              if checker is not None else ((), None, None))
        process = self._process() if history is not None else 0
        command: str
        session: str | None
        if due is None:
            self._in_op += 1
            start = clock()
        else:
            start = due
        # ``while True``, not ``while start < stop_at``: CPython 3.11 warms a function up for
        # specialisation at an unconditional jump back, never at a conditional one
        while True:
            if closed and start >= self._stop_at:
                break
            if take is not None and (u := random_()) < SHARE and (checked := take(u)) >= 0:
                command = INCR if u < HALF_SHARE else READ
                args = token = None
                session = names[checked]
            else:
                checked = -1
                command, args, token, session = fixed or self._draw()
            if history is not None:
                history.invoke(process, command, 1 if command == INCR else args, start,
                               session)
            try:
                reply = await (execute(command, args) if session is None else
                               execute(command, args, session=session))
            except ChaospoolError as exc:
                end, code, process = await self._failed(exc, command, args, session, token,
                                                        (checked, start, process))
            except BaseException:
                # cut off (an aborted run): no outcome, but the history and the checker
                # must know the call may have happened
                self._abandoned(checked, command, start, 1, process, session)
                raise
            else:
                end = clock()
                if checked >= 0:
                    assert acked is not None
                    ok = acked(checked, command, start, end, reply)
                else:
                    ok = token is None or _carries(reply, token)
                if ok and quiet:
                    # add_ok inlined: the latency goes to the lane's list unless the bucket
                    # or the phase (Aggregator.add_ok) need a look
                    if end < recorder.edge and start >= recorder.lo:
                        recorder.lane.append(end - start)
                    else:
                        add_ok(start, end)
                    if carry:
                        start = end
                        continue
                    code = OK
                else:
                    code = OK if ok else WRONG_REPLY
                    process = self._ended_once(command, code, reply, checked, start, end,
                                               process, session)
            if not closed:
                self._ended += 1
                return
            if not carry or code != OK:
                # a closed-loop client thinking, or yielding after a failure (calls that all
                # fail at once must not starve the event loop), is not in flight
                self._in_op -= 1
                await (anyio.sleep(think) if think > 0 else anyio.lowlevel.checkpoint())
                self._in_op += 1
                end = clock()
            start = end
        self._in_op -= 1

    def _ended_once(self, command: str, code: int, reply: Any, checked: int, start: float,
                    end: float, process: int, session: str | None) -> int:
        """Record an operation that ended at its first attempt: a wrong reply, or any one
        when the history is written. Returns the history process for the next operation."""
        if code == OK:
            self.recorder.add_ok(start, end)
        else:
            self.recorder.add(start, end, code, 1, INFO, False)
        if self.history is None:
            return process
        return self._history_complete(process, INFO if code else OK, command, code,
                                      reply if checked >= 0 else None, end, session, 1)

    async def _failed(self, exc: ChaospoolError, command: str, args: Any, session: str | None,
                      token: str | None, context: tuple[int, float, int],
                      ) -> tuple[float, int, int]:
        """The first attempt failed with ``exc``: retry it (``_retry``), then record the
        operation's outcome, tell the checker and the history. ``context``: the checked
        session (-1: none), the start and the history process. Returns the end, the code and
        the history process for the next operation."""
        checked, start, process = context
        code, outcome, attempts, dup, reply = await self._retry(exc, command, args, session,
                                                                token, context)
        end = self._clock()
        if checked >= 0:
            assert self.checker is not None
            if not self.checker.done(checked, command, start, end, outcome, attempts, reply):
                code, outcome = WRONG_REPLY, INFO
        self.recorder.add(start, end, code, attempts, outcome, dup)
        if self.history is not None:
            process = self._history_complete(process, outcome, command, code,
                                             reply if checked >= 0 else None, end, session,
                                             attempts)
        return end, code, process

    async def _retry(self, exc: ChaospoolError, command: str, args: Any, session: str | None,
                     token: str | None, abandon: tuple[int, float, int],
                     ) -> tuple[int, int, int, bool, Any]:
        """The first attempt failed with ``exc``: a crash or a timeout is retried up to
        ``load.retries`` times (``dup``: an indeterminate attempt was retried, so the
        operation may have applied twice). Returns code, outcome, attempts, dup, reply.
        ``abandon`` (checked session, start, history process) is for a cut-off operation."""
        attempts, dup = 1, False
        try:
            while isinstance(exc, _RETRYABLE) and attempts <= self._retries:
                dup = dup or outcome_of(exc) == INFO
                attempts += 1
                try:
                    reply = await self._execute(command, args, session=session, retries=0)
                except ChaospoolError as again:
                    exc = again
                else:
                    code = OK if token is None or _carries(reply, token) else WRONG_REPLY
                    return code, INFO if code else OK, attempts, dup, reply
            return code_of(exc), outcome_of(exc), attempts, dup, None
        except BaseException:
            checked, start, process = abandon
            self._abandoned(checked, command, start, attempts, process, session)
            raise

    def _history_complete(self, process: int, outcome: int, command: str, code: int,
                          reply: Any, end: float, session: str | None, attempts: int) -> int:
        """The completion line (``reply``: a checked operation's); returns the process
        number for the client's next operation."""
        assert self.history is not None
        parsed = Checker.reply(reply) if code == OK else None
        value: Any = None if parsed is None else (1 if command == INCR else parsed[0])
        self.history.complete(process, outcome, command, value, end,
                              None if parsed is None else parsed[1], session,
                              None if code == OK else OUTCOME_KINDS[code], attempts)
        return self._process() if outcome == INFO else process

    def _abandoned(self, checked: int, command: str, start: float, attempts: int,
                   process: int, session: str | None) -> None:
        end = self._clock()
        if checked >= 0 and self.checker is not None:
            self.checker.complete(checked, command, start, end, INFO, max(1, attempts), None)
        if self.history is not None:
            self.history.complete(process, INFO, command, None, end, None, session,
                                  "abandoned")
