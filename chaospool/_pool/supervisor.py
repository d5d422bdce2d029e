"""Supervision: worker incarnations, deaths, restarts, restart intensity, heartbeats.

Each incarnation is one task in the pool's task group: handshake, serve (until EOF), reap,
then the supervisor decides -- or, when the link tells its worker's exit and exit status
before the reap (``backend.Exits``), decides at that moment and the reap only closes the
account (docs/design.md, "Replacing at death").

Crashes, protocol errors, request timeouts, failed health checks and failed starts count
toward restart intensity (``max_restarts`` within ``within`` seconds, as in OTP); recycling
and overflow retirement do not. Beyond the intensity the circuit opens: ``execute`` raises
``CircuitOpen`` at once. After ``within`` seconds it half-opens: the empty
slots are refilled; the first handshake closes it, any failure before that reopens it.
"""

from __future__ import annotations

import contextlib
import functools
import signal as _signal
from collections import deque
from typing import Any, cast

import anyio

from chaospool._pool.backend import (
    Exits,
    ExitStatus,
    LinkClosed,
    MalformedFrame,
    Spares,
    capable,
)
from chaospool._pool.kinds import (
    BUSY,
    DEAD,
    FAILURES,
    READY,
    STARTING,
    STOPPING,
    RecycleReason,
    StopReason,
)
from chaospool._pool.seams import Dispatch
from chaospool._pool.state import PoolState
from chaospool._pool.worker import Worker
from chaospool._wire import protocol as p
from chaospool.errors import (
    ChaospoolError,
    CircuitOpen,
    PoolClosed,
    ProtocolError,
    WorkerCrashed,
    WorkerStartError,
)

_CAUSES = {  # how a worker stopped on purpose is named in the error of a call it ran
    StopReason.HEALTH: "failed its health check",
    StopReason.TIMEOUT: "was killed after a timeout",
    StopReason.RECYCLE: "was recycled",
    StopReason.CLOSE: "was closed",
}


def _clip(line: str, limit: int = 200) -> str:
    return line if len(line) <= limit else f"{line[:limit]}... ({len(line)} chars)"


class Supervisor:
    """Given the shared state; handed the request path (``attach``) as a ``Dispatch``."""

    def __init__(self, state: PoolState) -> None:
        self._state = state
        self.config = state.config
        self._slots = state.slots
        self._idle = state.idle
        self._sessions = state.sessions
        self._counters = state.counters
        self._bus = state.bus
        # restart intensity: failure times within ``restart_within``, the circuit's timing
        self._failures: deque[float] = deque()
        self.circuit_open = False  # beyond the intensity: no restarts, calls fail at once
        self._circuit_opened_at = 0.0
        self._half_open = False
        self._starting = 0  # incarnations in their handshake: ``grow`` counts them as coming
        # dead (its exit status known) and replaced, not yet reaped: ``reaping`` for close
        self._unreaped: set[Worker] = set()
        # the backend's optional stock of ready workers, checked once (a Protocol isinstance
        # costs microseconds, on the path from a death to its replacement)
        self._spares: Spares | None = state.backend if isinstance(state.backend, Spares) else None

    def attach(self, dispatch: Dispatch) -> None:
        """Where replies, freed workers and deaths go (the request path). Bound methods: a
        reply is handed on with one lookup."""
        self._replies = dispatch.replies
        self._make_available = dispatch.make_available
        self._fail_waiters = dispatch.fail_waiters
        self._time_out = dispatch.time_out
        self._memory_ok = dispatch.memory_ok
        self._send = dispatch.send
        self._queued = dispatch.queued
        self._set_circuit = dispatch.set_circuit

    def launch(self, index: int) -> Worker:
        """Start an incarnation in slot ``index`` (its handshake runs in the pool's tasks)."""
        w = Worker(index, overflow=index >= self.config.size)
        self._state.set_slot(index, w)
        self._starting += 1
        assert self._state.tg is not None
        self._state.tg.start_soon(self._incarnation, w)
        return w

    def _replace(self, index: int) -> None:
        """``launch`` for a replacement; when the backend has a worker ready now (the spare,
        its Hello already received: ``backend.Spares``), it serves within this very step --
        no turn of the loop between the death and the ``start`` (docs/design.md, "Replacing
        at death")."""
        taken = self._spares.take_ready(index) if self._spares is not None else None
        if taken is None:
            self.launch(index)
            return
        w = Worker(index, overflow=index >= self.config.size)
        self._state.set_slot(index, w)
        w.attach(taken[0])
        try:
            self._check_hello(w, taken[1])
        except WorkerStartError as exc:
            w.start_error = exc
        w.started.set()
        self._started(w)
        assert self._state.tg is not None
        self._state.tg.start_soon(self._incarnation, w, True)

    async def _incarnation(self, w: Worker, handshaken: bool = False) -> None:
        reason = StopReason.START
        if not handshaken:
            await self._start(w)
        if w.start_error is None:
            reason = await self._serve(w)
        with anyio.CancelScope(shield=True):
            status = await self._reap(w, reason)
            if w.link is not None:
                w.link.close()  # a link that never reached _serve still holds its sockets
            if w.state != DEAD:
                self._on_dead(w, status, reason)
            self._on_reaped(w, status)

    async def _start(self, w: Worker) -> None:
        try:
            with w.scope:
                await self._handshake(w)
            if w.scope.cancelled_caught:
                w.start_error = PoolClosed("the pool closed while the worker started")
        except Exception as exc:
            w.start_error = exc
        finally:
            self._starting -= 1
            w.started.set()
        self._started(w)

    def _started(self, w: Worker) -> None:
        if w.start_error is not None:
            self.signal(w, _signal.SIGKILL)  # whatever got started must not linger
        else:
            self._on_ready(w)

    async def _handshake(self, w: Worker) -> None:
        try:
            await self._hello(w)
        except TimeoutError as exc:
            raise self._start_error(
                w, f"no handshake within start_timeout={self.config.start_timeout}s", None
            ) from exc

    async def _hello(self, w: Worker) -> None:
        with anyio.fail_after(self.config.start_timeout):
            link = await self._state.backend.spawn(w.index)
            w.attach(link)
            try:
                msgs = await link.receive()
            except (LinkClosed, MalformedFrame) as exc:
                status = await link.wait()
                raise self._start_error(w, f"{status.describe()} during start-up", status) \
                    from exc
        self._check_hello(w, msgs)

    def _check_hello(self, w: Worker, msgs: list[p.Message]) -> None:
        hello = msgs[0]
        if not isinstance(hello, p.Hello) or hello.version != p.PROTOCOL_VERSION:
            got = f"protocol version {hello.version}" if isinstance(hello, p.Hello) else hello
            raise self._start_error(w, f"bad handshake: {got} (this pool speaks "
                                    f"version {p.PROTOCOL_VERSION})", None)
        if len(msgs) > 1:
            raise self._start_error(w, "unexpected messages before the first request", None)

    def _start_error(self, w: Worker, what: str, status: ExitStatus | None) -> WorkerStartError:
        tail = "\n".join(w.log_tail())
        return WorkerStartError(
            f"{w.describe()} failed to start: {what}" + (f"\n--- worker log ---\n{tail}"
                                                          if tail else ""),
            pid=w.pid, exitcode=status.exitcode if status else None,
            signal=status.signal if status else None,
        )

    def _on_ready(self, w: Worker) -> None:
        state = self._state
        w.state = READY
        if state.closed or w.stop_reason is not None:
            self.stop(w, StopReason.CLOSE)  # it made it through the handshake as the pool closed
            return
        w.last_ping = state.clock()
        self._half_open = False  # a replacement got through: the circuit is closed again
        self._bus.emit("start", w.index, w.pid)
        watchers, state.slot_watchers = state.slot_watchers, []
        for event in watchers:
            event.set()
        self._make_available(w)

    async def _serve(self, w: Worker) -> StopReason:
        link = w.link
        assert link is not None

        try:
            # (a partial: called per read, it costs no Python frame of its own)
            await link.serve(functools.partial(self._replies, w))
            return w.stop_reason or StopReason.CRASH
        except MalformedFrame as exc:
            w.protocol_error = str(exc)
            self.kill(w, StopReason.PROTOCOL)
            return StopReason.PROTOCOL
        finally:
            link.close()
            self._link_down(w)

    def _link_down(self, w: Worker) -> None:
        """The channel is gone: no new call may reach this worker, nor its sessions' calls,
        even before its exit status is known."""
        if w.state in (READY, BUSY):
            w.state = STOPPING
        if w in self._idle:
            self._idle.remove(w)
        self._sessions.drop_worker(w)

    async def _reap(self, w: Worker, reason: StopReason) -> ExitStatus:
        link = w.link
        if link is None:
            return ExitStatus(None, None)
        with anyio.move_on_after(self.config.stop_grace + 0.5):
            if reason != StopReason.START and capable(link, Exits):
                # returns only once the worker exited (a worker that closed its channel, is
                # stopped or cut off is not dead): decide now, while the zygote reaps it
                self._unreaped.add(w)
                self._on_dead(w, await cast(Exits, link).exited(), reason)
            return await link.wait()
        self.signal(w, _signal.SIGKILL)
        with anyio.move_on_after(10.0):
            return await link.wait()
        return ExitStatus(None, None)

    def _on_reaped(self, w: Worker, status: ExitStatus) -> None:
        """The account is closed: the process was reaped (or given up on), ``done`` tells."""
        w.exit = status
        self._unreaped.discard(w)
        w.done.set()

    def reaping(self) -> list[Worker]:
        """Workers dead and replaced but not yet reaped (the pool's close waits for them)."""
        return list(self._unreaped)

    def _on_dead(self, w: Worker, status: ExitStatus, reason: StopReason) -> None:
        """``w`` exited with ``status``: free its slot, fail its calls, say crash, decide its
        replacement (restart). Runs once per incarnation, at its death or its reap."""
        w.state = DEAD
        w.exit = status
        if w in self._idle:
            self._idle.remove(w)
        if self._slots[w.index] is w:
            self._state.set_slot(w.index, None)
            if not w.overflow:
                self._state.last[w.index] = w
        self._state.handles.pop(id(w), None)
        self._sessions.drop_worker(w)
        self._fail_pending(w, status, reason)
        if reason in (StopReason.CRASH, StopReason.PROTOCOL):
            self._counters.crashes += 1
            self._bus.emit("crash", w.index, w.pid, exitcode=status.exitcode,
                           signal=status.signal, reason=reason)
        if not self._state.closed and reason != StopReason.RETIRE:
            self._after_death(w, reason)

    def _fail_pending(self, w: Worker, status: ExitStatus, reason: StopReason) -> None:
        pending, w.pending = w.pending, {}
        for call in pending.values():
            if call.event.is_set():
                continue
            call.error = self._death_error(w, status, reason, call.command)
            call.event.set()

    def _death_error(
        self, w: Worker, status: ExitStatus, reason: StopReason, command: str | None
    ) -> ChaospoolError:
        if self._state.closed:
            return PoolClosed("the pool closed while the request ran")
        what = f"{command!r}" if command is not None else "a control op"
        kw: dict[str, Any] = {"pid": w.pid, "exitcode": status.exitcode, "signal": status.signal}
        # a worker may print one huge line: keep the message readable
        tail = "; ".join(_clip(line) for line in w.log_tail(3))
        log = f" (last log lines: {tail})" if tail else ""
        if reason == StopReason.PROTOCOL:
            return ProtocolError(f"{w.describe()} sent a malformed frame while running {what}: "
                                 f"{w.protocol_error}; it was killed and will be replaced", **kw)
        cause = _CAUSES.get(reason)
        return WorkerCrashed(f"{w.describe()} {cause or status.describe()} while running "
                             f"{what}{log}", **kw)

    def _after_death(self, w: Worker, reason: StopReason) -> None:
        failure = reason in FAILURES
        if failure and self._count_failure():
            return
        if w.overflow:
            self.grow()  # an overflow slot is refilled only on demand
            return
        if self.circuit_open:
            return
        self._counters.restarts += 1
        self._bus.emit("restart", w.index, None, replaces=w.pid, reason=reason)
        if reason == StopReason.START:
            # a worker that cannot start is retried after a pause, not in a tight loop
            assert self._state.tg is not None
            self._state.tg.start_soon(self._relaunch_later, w.index, 0.05)
        else:
            self._replace(w.index)

    async def _relaunch_later(self, index: int, delay: float) -> None:
        await anyio.sleep(delay)
        state = self._state
        if not state.closed and not self.circuit_open and self._slots[index] is None:
            self.launch(index)

    def _count_failure(self) -> bool:
        """Record one failure; open the circuit (and say so) when intensity is exceeded."""
        now = self._state.clock()
        failures = self._failures
        failures.append(now)
        while failures and now - failures[0] > self.config.restart_within:
            failures.popleft()
        if len(failures) <= self.config.max_restarts and not self._half_open:
            return False
        if not self.circuit_open:
            self.circuit_open = True
            self._set_circuit(True)
            self._circuit_opened_at = now
            self._bus.emit("circuit_open", failures=len(failures),
                           within=self.config.restart_within)
            self._fail_waiters(CircuitOpen(self.circuit_message()))
        return True

    def circuit_message(self) -> str:
        cfg = self.config
        left = max(0.0, self._circuit_opened_at + cfg.restart_within - self._state.clock())
        return (f"circuit open: more than max_restarts={cfg.max_restarts} worker failures "
                f"within {cfg.restart_within}s; the pool stopped restarting workers and "
                f"retries one (half-open) in {left:.1f}s")

    def _half_open_circuit(self) -> None:
        self.circuit_open = False
        self._set_circuit(False)
        self._half_open = True  # the next failure reopens at once; the next start closes it
        self._failures.clear()
        self._bus.emit("circuit_half_open")
        for index in range(self.config.size):
            if self._slots[index] is None:
                self._counters.restarts += 1
                self._bus.emit("restart", index, None, reason=StopReason.HALF_OPEN)
                self.launch(index)

    def grow(self) -> None:
        """Start workers for waiters no starting worker will serve (lazy and overflow slots)."""
        state = self._state
        need = self._queued() - self._starting
        for index, w in enumerate(self._slots):
            if need <= 0 or state.closed or self.circuit_open:
                return
            if w is None:
                self.launch(index)
                need -= 1

    def recycle(self, w: Worker, reason: RecycleReason, rss: int | None) -> None:
        self._counters.recycles += 1
        self._bus.emit("recycle", w.index, w.pid, reason=reason, rss=rss)
        self.stop(w, StopReason.RECYCLE)

    def stop(self, w: Worker, reason: StopReason) -> None:
        """SIGTERM now, SIGKILL after the grace period if it is still there."""
        if w.state in (STOPPING, DEAD):
            return
        if w.stop_reason is None:
            w.stop_reason = reason
        if w.state == STARTING:
            w.scope.cancel()  # the handshake gives up; the incarnation reaps what it started
            return
        w.state = STOPPING
        if w in self._idle:
            self._idle.remove(w)
        if w.link is not None:
            self.signal(w, _signal.SIGTERM)
            self.signal(w, _signal.SIGCONT)  # a stopped worker must see its SIGTERM
        assert self._state.tg is not None
        self._state.tg.start_soon(self._kill_after, w, self.config.stop_grace)

    async def _kill_after(self, w: Worker, grace: float) -> None:
        with anyio.move_on_after(grace):
            await w.done.wait()
        if not w.done.is_set():
            self.signal(w, _signal.SIGKILL)

    def kill(self, w: Worker, reason: StopReason) -> None:
        if w.state == DEAD:
            return
        if w.stop_reason is None:
            w.stop_reason = reason
        w.state = STOPPING
        if w in self._idle:
            self._idle.remove(w)
        self.signal(w, _signal.SIGKILL)

    def signal(self, w: Worker, sig: int) -> None:
        """Signal ``w`` if it has a link; a worker already gone is no error here."""
        if w.link is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                w.link.signal(sig)

    async def run(self) -> None:
        """One periodic tick: heartbeats, overflow retirement, abandoned calls, half-open."""
        cfg, state = self.config, self._state
        periods = [x for x in (cfg.health_interval, cfg.health_timeout) if x > 0]
        if cfg.max_overflow:
            periods.append(cfg.overflow_idle or 0.05)
        tick = min(max(min(periods, default=1.0) / 4, 0.005), 0.25)
        while not state.closed:
            await anyio.sleep(tick)
            now = state.clock()
            if self.circuit_open and now - self._circuit_opened_at >= cfg.restart_within:
                self._half_open_circuit()
            for w in list(self._slots):
                if w is not None and w.alive:
                    await self._check(w, now)

    async def _check(self, w: Worker, now: float) -> None:
        cfg = self.config
        if w.overflow and w.state == READY and now - w.idle_since >= cfg.overflow_idle:
            self._bus.emit("retire", w.index, w.pid, idle=now - w.idle_since)
            self.stop(w, StopReason.RETIRE)
            return
        for call in list(w.pending.values()):
            # past its deadline with no answer: its caller gave up, or (off asyncio, where no
            # loop timer watches a call) it was queued when its caller began to wait, and that
            # wait is for its checkout deadline
            if call.command is not None and not call.is_set() and now > call.deadline:
                self._time_out(call)
                return
        if cfg.health_interval <= 0:
            return
        if w.ping_id is not None:
            if now - w.ping_sent > cfg.health_timeout:
                self._bus.emit("health_fail", w.index, w.pid, timeout=cfg.health_timeout)
                self.kill(w, StopReason.HEALTH)
        elif now - w.last_ping >= cfg.health_interval:
            # an idle worker above max_memory (a leak between requests) is recycled too
            if w.state == READY and cfg.max_memory is not None and not self._memory_ok(w):
                return
            w.ping_id = next(self._state.ids)
            w.ping_sent = w.last_ping = now
            await self._send(w, p.Ping(w.ping_id))
