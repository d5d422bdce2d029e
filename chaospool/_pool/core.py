"""The pool: checkout queue, request path, sessions, supervision.

Shape of the request path (kept lean: no psutil, no allocation beyond a ``Pending``, one
``send`` and one wait)::

    execute -> checkout (idle worker, by affinity then LIFO/FIFO; else a FIFO waiter)
            -> Request frame -> wait for the reply (request deadline) -> check in

Each worker incarnation is one task in the pool's task group: handshake, read loop, reap,
then hand the slot to the supervisor (replace it, unless restart intensity is exceeded).
A reply only ever completes the ``Pending`` registered under its request id *on that worker*,
so a late reply cannot reach another caller; it is discarded and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal as _signal
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from chaospool._pool.backend import Backend, ExitStatus, LinkClosed, MalformedFrame
from chaospool._pool.config import PoolConfig, build_config
from chaospool._pool.events import Counters, EventBus, PoolEvent, PoolStats
from chaospool._pool.flag import AnyioFlag, AsyncioFlag, Flag, flag_factory
from chaospool._pool.handle import WorkerHandle
from chaospool._pool.worker import Partition, Pending, Waiter, Worker
from chaospool._wire import protocol as p
from chaospool.errors import (
    ChaospoolError,
    CheckoutTimeout,
    CircuitOpen,
    CommandError,
    PoolClosed,
    ProtocolError,
    QueueFull,
    RequestTimeout,
    WorkerCrashed,
    WorkerStartError,
)

if TYPE_CHECKING:
    import psutil
    from anyio.abc import TaskGroup

_ENCODE_ERRORS = (TypeError, ValueError, OverflowError, msgspec.EncodeError)
_FAILURES = ("crash", "protocol", "health", "timeout", "start")  # count towards intensity


def _make_backend(spec: str | Backend, config: PoolConfig) -> Backend:
    if spec == "process":
        from chaospool._pool.process import ProcessBackend

        return ProcessBackend(config.worker, start_timeout=config.start_timeout)
    if spec == "memory":
        from chaospool._pool.memory import MemoryBackend

        return MemoryBackend(config.worker)
    if isinstance(spec, str):
        raise ValueError(f"backend must be 'process', 'memory' or a Backend, not {spec!r}")
    return spec


class Pool:
    """A supervised pool of worker processes. Use as ``async with Pool(worker=...) as pool``."""

    def __init__(
        self,
        worker: str,
        *,
        size: int = 4,
        max_overflow: int = 0,
        strategy: str = "lifo",
        checkout_timeout: float = 5.0,
        request_timeout: float = 30.0,
        max_queue: int = 1000,
        restart: Mapping[str, Any] | None = None,
        max_memory: int | str | None = None,
        max_requests: int | None = None,
        overflow_idle: float = 5.0,
        lazy: bool = False,
        health_check: Mapping[str, Any] | bool | None = None,
        start_timeout: float = 15.0,
        backend: str | Backend = "process",
    ) -> None:
        self.config = build_config(
            worker, size=size, max_overflow=max_overflow, strategy=strategy,
            checkout_timeout=checkout_timeout, request_timeout=request_timeout,
            max_queue=max_queue, restart=restart, max_memory=max_memory,
            max_requests=max_requests, overflow_idle=overflow_idle, lazy=lazy,
            health_check=health_check, start_timeout=start_timeout,
        )
        self._backend = _make_backend(backend, self.config)
        self._lifo = self.config.strategy == "lifo"
        self._slots: list[Worker | None] = [None] * self.config.slots
        self._handles: dict[int, WorkerHandle] = {}
        self._idle: deque[Worker] = deque()
        self._waiters: deque[Waiter] = deque()
        self._sessions: dict[str, msgspec.Raw] = {}
        self._affinity: dict[str, Worker] = {}
        self._ids = itertools.count(1)
        self._counters = Counters()
        self._bus = EventBus()
        self._failures: deque[float] = deque()
        self._circuit_open = False
        self._circuit_opened_at = 0.0
        self._half_open = False
        self._starting = 0
        self._slot_watchers: list[anyio.Event] = []
        self._stack: AsyncExitStack | None = None
        self._flag: Callable[[], Flag] = AnyioFlag
        # asyncio only: deadlines are lazy loop timers (one per queue / per worker, re-armed
        # when they fire) instead of a timer per wait -- see _arm_queue and _arm_worker
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue_timer: asyncio.TimerHandle | None = None
        self._tg: TaskGroup | None = None
        self._opened = False
        self._closed = False
        self.commands: list[str] = []
        self.late_replies = 0

    def __getattr__(self, name: str) -> Any:
        # config attributes read as pool attributes: pool.size, pool.request_timeout, ...
        if name != "config" and name in PoolConfig.__dataclass_fields__:
            return getattr(self.config, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Pool:
        if self._opened:
            raise RuntimeError("a Pool can be entered only once")
        self._opened = True
        self._stack = AsyncExitStack()
        self._tg = await self._stack.enter_async_context(anyio.create_task_group())
        self._flag = flag_factory()
        if self._flag is AsyncioFlag:
            self._loop = asyncio.get_running_loop()
        try:
            self.commands = await self._backend.start(self._tg)
            if not self.config.lazy:
                await self._start_eager()
            self._tg.start_soon(self._supervise)
        except BaseException:
            await self._teardown()
            raise
        return self

    async def _start_eager(self) -> None:
        workers = [self._launch(i) for i in range(self.config.size)]
        for w in workers:
            await w.started.wait()
        errors = [w.start_error for w in workers if w.start_error is not None]
        if errors:
            raise errors[0]

    async def __aexit__(self, *exc_info: object) -> None:
        await self._teardown()

    async def aclose(self) -> None:
        await self._teardown()

    async def _teardown(self) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            return
        with anyio.CancelScope(shield=True):
            self._closed = True
            self._fail_waiters(PoolClosed("the pool is closing"))
            workers = [w for w in self._slots if w is not None]
            for w in workers:
                self._stop(w, "close")
            for w in workers:
                await w.done.wait()
            await self._backend.aclose()
            assert self._tg is not None
            self._tg.cancel_scope.cancel()
        await stack.aclose()  # outside the shield: the task group's scope must be current

    # ------------------------------------------------------------------ public API
    async def execute(
        self,
        command: str,
        args: Any = None,
        *,
        session: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  reason: the seam's API takes a timeout
        retries: int = 0,
    ) -> Any:
        """Run ``command`` on a worker and return its result.

        Raises CheckoutTimeout, QueueFull, RequestTimeout, WorkerCrashed (ProtocolError),
        CircuitOpen, PoolClosed or CommandError. ``retries`` re-runs the call (after a short
        backoff) when the worker crashed or timed out.
        """
        if self._closed or not self._opened:
            raise PoolClosed("the pool is closed" if self._closed else "the pool is not open")
        try:
            raw = p.encode_value(args)
        except _ENCODE_ERRORS as exc:
            self._counters.errors += 1
            raise ProtocolError(f"the args of {command!r} cannot be serialised: {exc}") from exc
        deadline = self.config.request_timeout if timeout is None else timeout
        attempt = 0
        while True:
            try:
                return await self._execute_once(command, raw, session, deadline)
            except (WorkerCrashed, RequestTimeout) as exc:
                if attempt >= retries or isinstance(exc, WorkerStartError) or self._closed:
                    self._counters.errors += 1
                    raise
                attempt += 1
                await anyio.sleep(min(0.005 * 2**attempt, 0.1))
            except ChaospoolError:
                self._counters.errors += 1
                raise

    def stats(self) -> PoolStats:
        ready = busy = overflow = 0
        for w in self._slots:
            if w is None:
                continue
            ready += w.state == "ready"
            busy += w.state == "busy"
            overflow += w.overflow and w.state != "dead"
        c = self._counters
        return PoolStats(
            ready_workers=ready, busy_workers=busy, overflow_workers=overflow,
            queue_depth=len(self._waiters), max_queue_depth=c.max_queue_depth,
            restarts=c.restarts, checkouts=c.checkouts, checkins=c.checkins, errors=c.errors,
            crashes=c.crashes, timeouts=c.timeouts, recycles=c.recycles,
            circuit_open=self._circuit_open,
        )

    @property
    def workers(self) -> list[WorkerHandle]:
        """Handles of the current incarnations, by slot (overflow slots after)."""
        return [self._handle(w) for w in self._slots if w is not None]

    def subscribe(self, callback: Callable[[PoolEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every pool event; returns the unsubscribe function."""
        return self._bus.subscribe(callback)

    def worker_for_session(self, session: str) -> WorkerHandle | None:
        w = self._affinity.get(session)
        return self._handle(w) if w is not None and w.alive else None

    async def wait_serving(
        self, index: int, *, not_pid: int | None = None, timeout: float = 10.0  # noqa: ASYNC109  reason: the seam's API takes a timeout
    ) -> WorkerHandle:
        """Return once slot ``index`` serves with a process whose pid != ``not_pid``."""
        with anyio.fail_after(timeout):
            while True:
                w = self._slots[index] if 0 <= index < len(self._slots) else None
                if w is not None and w.alive and w.pid != not_pid:
                    return self._handle(w)
                if self._closed:
                    raise PoolClosed("the pool is closed")
                event = anyio.Event()
                self._slot_watchers.append(event)
                await event.wait()

    def owns(self, pid: int) -> bool:
        return any(w is not None and w.pid == pid for w in self._slots)

    def session_state(self, session: str) -> Any:
        """The pool's authoritative copy of a session's state (None if unknown)."""
        raw = self._sessions.get(session)
        return None if raw is None else p.decode_value(raw)

    # ------------------------------------------------------------------ request path
    async def _execute_once(
        self,
        command: str,
        raw: msgspec.Raw,
        session: str | None,
        timeout: float,  # noqa: ASYNC109  reason: per-call deadline, not a scope
    ) -> Any:
        w = self._take_idle(session)
        if w is None:
            w = await self._wait_for_worker()
        return await self._request(w, command, raw, session, timeout)

    def _take_idle(self, session: str | None) -> Worker | None:
        if self._circuit_open:
            raise CircuitOpen(self._circuit_message())
        idle = self._idle
        if not idle:
            return None
        w = self._affinity.get(session) if session is not None else None
        if w is not None and w.state == "ready":
            idle.remove(w)  # affinity is a preference: used only when that worker is idle
        else:
            w = idle.pop() if self._lifo else idle.popleft()
        self._checked_out(w)
        return w

    def _checked_out(self, w: Worker) -> None:
        w.state = "busy"
        self._counters.checkouts += 1
        if self._bus.subscribers:
            self._bus.emit("checkout", w.index, w.pid)

    async def _wait_for_worker(self) -> Worker:
        if len(self._waiters) >= self.config.max_queue:
            self._bus.emit("queue_full", depth=len(self._waiters))
            raise QueueFull(f"{len(self._waiters)} requests already wait for a worker "
                            f"(max_queue={self.config.max_queue})")
        waiter = Waiter(self._flag())
        self._waiters.append(waiter)
        depth = len(self._waiters)
        if depth > self._counters.max_queue_depth:
            self._counters.max_queue_depth = depth
        self._grow()
        handed_over = False
        try:
            if self._loop is not None:
                waiter.deadline = self._loop.time() + self.config.checkout_timeout
                self._arm_queue()
                await waiter.event.wait()
            else:
                await waiter.event.wait(self.config.checkout_timeout)
            handed_over = True
        finally:
            if waiter.worker is None:
                self._leave_queue(waiter)
            elif not handed_over:  # it arrived as we gave up: never keep it, give it back
                self._make_available(waiter.worker)
        if waiter.error is not None:
            raise waiter.error
        if waiter.worker is None:
            self._bus.emit("checkout_timeout", timeout=self.config.checkout_timeout)
            raise CheckoutTimeout(f"no worker became free within "
                                  f"{self.config.checkout_timeout}s")
        return waiter.worker

    def _arm_queue(self) -> None:
        if self._queue_timer is None and self._waiters and self._loop is not None:
            self._queue_timer = self._loop.call_at(self._waiters[0].deadline, self._expire_queue)

    def _expire_queue(self) -> None:
        """The queue timer fired: time out every waiter past its deadline (FIFO: the head)."""
        assert self._loop is not None
        self._queue_timer = None
        now = self._loop.time()
        waiters = self._waiters
        while waiters and waiters[0].deadline <= now:
            waiters.popleft().event.set()  # woken without a worker: CheckoutTimeout
        self._arm_queue()

    def _arm_worker(self, w: Worker, deadline: float) -> None:
        timer = w.timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            assert self._loop is not None
            w.timer = self._loop.call_at(deadline, self._expire_worker, w)

    def _expire_worker(self, w: Worker) -> None:
        """A worker's timer fired: time out its overdue command, re-arm for the next one."""
        assert self._loop is not None
        w.timer = None
        now = self._loop.time()
        for call in list(w.pending.values()):
            if call.command is None or call.abandoned or call.event.is_set():
                continue
            if call.deadline <= now:
                call.timed_out = True
                call.event.set()
            else:
                self._arm_worker(w, call.deadline)

    def _leave_queue(self, waiter: Waiter) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    async def _request(
        self,
        w: Worker,
        command: str,
        raw: msgspec.Raw,
        session: str | None,
        timeout: float,  # noqa: ASYNC109  reason: per-call deadline, not a scope
    ) -> Any:
        rid = next(self._ids)
        pending = Pending(command, self._flag())
        w.pending[rid] = pending
        state = self._sessions.get(session, p.NIL) if session is not None else p.NIL
        msg = p.Request(rid, command, raw, session, state)
        part, link = w.partition, w.link
        if part is not None and part.to_worker:
            part.intercept(msg, outgoing=True)
        elif link is not None:
            try:  # noqa: SIM105  reason: hot path (see _send)
                await link.send(msg)
            except LinkClosed:
                pass  # the read loop sees the EOF and fails this request
        try:
            if self._loop is not None:
                pending.deadline = self._loop.time() + timeout
                self._arm_worker(w, pending.deadline)
                done = await pending.event.wait() and not pending.timed_out
            else:
                done = await pending.event.wait(timeout)
        except BaseException:  # the caller gave up: never hand this worker to anyone else
            if not pending.event.is_set():
                pending.abandoned = True
                pending.deadline = time.monotonic() + timeout
            else:
                self._finish(w, pending, session)
            raise
        if not done:
            w.pending.pop(rid, None)
            raise self._timed_out(w, command, timeout)
        return self._finish(w, pending, session)

    def _finish(self, w: Worker, pending: Pending, session: str | None) -> Any:
        if pending.error is not None:
            raise pending.error
        msg = pending.msg
        if type(msg) is p.Reply:
            if session is not None:
                if msg.session != p.NIL:
                    self._sessions[session] = msg.session
                self._set_affinity(session, w)
            self._checkin(w)
            return p.decode_value(msg.value)
        assert isinstance(msg, p.Failure)
        self._checkin(w)
        raise CommandError(msg.error_type, msg.message, msg.traceback)

    def _timed_out(self, w: Worker, command: str, timeout: float) -> RequestTimeout:
        self._counters.timeouts += 1
        self._bus.emit("timeout", w.index, w.pid, command=command, timeout=timeout)
        self._kill(w, "timeout")  # a worker that timed out is never checked back in
        return RequestTimeout(f"{w.describe()} did not answer {command!r} within {timeout}s; "
                              "it was killed and will be replaced")

    def _set_affinity(self, session: str, w: Worker) -> None:
        old = self._affinity.get(session)
        if old is not w:
            if old is not None:
                old.sessions.discard(session)
            self._affinity[session] = w
            w.sessions.add(session)

    def _checkin(self, w: Worker) -> None:
        w.requests += 1
        if w.state != "busy":
            return  # it is being stopped or is dead already
        self._counters.checkins += 1
        if self._bus.subscribers:
            self._bus.emit("checkin", w.index, w.pid)
        cfg = self.config
        if cfg.max_requests is not None and w.requests >= cfg.max_requests:
            self._recycle(w, "max_requests", None)
        elif cfg.max_memory is not None and not self._memory_ok(w):
            return
        else:
            self._make_available(w)

    def _rss(self, w: Worker) -> int | None:
        proc = self._psproc(w)
        try:
            return None if proc is None else int(proc.memory_info().rss)
        except Exception:
            return None

    def _memory_ok(self, w: Worker) -> bool:
        rss = self._rss(w)
        limit = self.config.max_memory
        if rss is not None and limit is not None and rss > limit:
            self._recycle(w, "max_memory", rss)
            return False
        return True

    def _make_available(self, w: Worker) -> None:
        """Hand ``w`` to the first waiter still waiting, else put it back in the idle set."""
        if w.state not in ("ready", "busy"):
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if waiter.event.is_set():
                continue
            self._checked_out(w)
            waiter.worker = w
            waiter.event.set()
            return
        w.state = "ready"
        w.idle_since = time.monotonic()
        self._idle.append(w)

    async def _send(self, w: Worker, msg: p.Message) -> None:
        part = w.partition
        if part is not None and part.to_worker:
            part.intercept(msg, outgoing=True)
            return
        link = w.link
        if link is None:
            return
        try:  # noqa: SIM105  reason: hot path; contextlib.suppress costs a context manager
            await link.send(msg)
        except LinkClosed:
            pass  # the read loop sees the EOF and fails what this worker held

    # ------------------------------------------------------------------ fault surface
    async def _control(
        self,
        w: Worker,
        op: str,
        args: Mapping[str, Any] | None,
        timeout: float,  # noqa: ASYNC109  reason: the seam's API takes a timeout
    ) -> Any:
        rid = next(self._ids)
        pending = Pending(None, self._flag())
        w.pending[rid] = pending
        try:
            await self._send(w, p.Control(rid, op, p.encode_value(dict(args or {}))))
            await pending.event.wait(timeout)
        finally:
            w.pending.pop(rid, None)
        if not pending.event.is_set():
            raise RequestTimeout(f"control op {op!r} got no answer from {w.describe()} "
                                 f"within {timeout}s")
        if pending.error is not None:
            raise pending.error
        if isinstance(pending.msg, p.Failure):
            raise CommandError(pending.msg.error_type, pending.msg.message,
                               pending.msg.traceback)
        assert pending.msg is not None
        return p.decode_value(pending.msg.value)

    def _partition(self, w: Worker, direction: str, mode: str) -> Partition:
        if w.partition is not None and w.partition.active:
            raise RuntimeError(f"{w.describe()} is already partitioned")
        part = Partition(direction, mode, lambda part: self._heal(w, part))
        w.partition = part
        return part

    async def _heal(self, w: Worker, part: Partition) -> None:
        if w.partition is part:
            w.partition = None
        held_out, part.held_out = part.held_out, []
        for msg in held_out:
            if w.alive:
                await self._send(w, msg)
                part.counts["delivered_late"] += 1
        held_in, part.held_in = part.held_in, []
        for msg in held_in:
            if self._deliver(w, msg):
                part.counts["delivered_late"] += 1
            else:
                part.counts["late_discarded"] += 1

    def _psproc(self, w: Worker) -> psutil.Process | None:
        if w.state == "dead" or w.pid is None or not self._backend.real_processes:
            return None
        if w.psproc is None:
            import psutil

            try:
                w.psproc = psutil.Process(w.pid)
            except psutil.Error:
                return None
        return w.psproc

    # ------------------------------------------------------------------ incarnations
    def _handle(self, w: Worker) -> WorkerHandle:
        handle = self._handles.get(id(w))
        if handle is None or handle._w is not w:
            handle = self._handles[id(w)] = WorkerHandle(self, w)
        return handle

    def _launch(self, index: int) -> Worker:
        w = Worker(index, overflow=index >= self.config.size)
        self._slots[index] = w
        self._starting += 1
        assert self._tg is not None
        self._tg.start_soon(self._incarnation, w)
        return w

    async def _incarnation(self, w: Worker) -> None:
        reason = "start"
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
        if w.start_error is not None:
            self._signal(w, _signal.SIGKILL)  # whatever got started must not linger
        if w.start_error is None:
            self._on_ready(w)
            reason = await self._serve(w)
        with anyio.CancelScope(shield=True):
            status = await self._reap(w)
            if w.link is not None:
                w.link.close()  # a link that never reached _serve still holds its sockets
            self._on_dead(w, status, reason)

    async def _handshake(self, w: Worker) -> None:
        with anyio.fail_after(self.config.start_timeout):
            link = await self._backend.spawn(w.index)
            w.link, w.pid = link, link.pid
            try:
                msgs = await link.receive()
            except (LinkClosed, MalformedFrame) as exc:
                status = await link.wait()
                raise self._start_error(w, f"{status.describe()} during start-up", status) \
                    from exc
        hello = msgs[0]
        if not isinstance(hello, p.Hello) or hello.version != p.PROTOCOL_VERSION:
            link.signal(_signal.SIGKILL)
            raise self._start_error(w, f"bad handshake {hello!r}", None)
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
        if self._closed:
            self._stop(w, "close")
            return
        w.state = "ready"
        w.last_ping = time.monotonic()
        self._half_open = False  # a replacement got through: the circuit is closed again
        self._bus.emit("start", w.index, w.pid)
        watchers, self._slot_watchers = self._slot_watchers, []
        for event in watchers:
            event.set()
        self._make_available(w)

    async def _serve(self, w: Worker) -> str:
        link = w.link
        assert link is not None

        def deliver(msgs: list[p.Message]) -> None:
            part = w.partition
            for msg in msgs:
                if part is not None and part.from_worker:
                    part.intercept(msg, outgoing=False)
                else:
                    self._deliver(w, msg)

        try:
            await link.serve(deliver)
            return w.stop_reason or "crash"
        except MalformedFrame as exc:
            w.protocol_error = str(exc)
            self._kill(w, "protocol")
            return "protocol"
        finally:
            link.close()

    def _deliver(self, w: Worker, msg: p.Message) -> bool:
        """Complete the call ``msg`` answers; False if nobody waits for it any more."""
        if type(msg) is p.Reply or type(msg) is p.Failure:
            pending = w.pending.pop(msg.id, None)
            if pending is None or pending.abandoned:
                self._late_reply(w, msg)
                if pending is not None and pending.command is not None:
                    self._checkin(w)
                return False
            pending.msg = msg
            pending.event.set()
        elif type(msg) is p.Pong and w.ping_id == msg.id:
            w.ping_id = None
        return True

    def _late_reply(self, w: Worker, msg: p.Reply | p.Failure) -> None:
        self.late_replies += 1
        self._bus.emit("late_reply", w.index, w.pid, id=msg.id)

    async def _reap(self, w: Worker) -> ExitStatus:
        link = w.link
        if link is None:
            return ExitStatus(None, None)
        with anyio.move_on_after(self.config.stop_grace + 0.5):
            return await link.wait()
        self._signal(w, _signal.SIGKILL)
        with anyio.move_on_after(10.0):
            return await link.wait()
        return ExitStatus(None, None)

    def _on_dead(self, w: Worker, status: ExitStatus, reason: str) -> None:
        w.state = "dead"
        w.exit = status
        if w in self._idle:
            self._idle.remove(w)
        if self._slots[w.index] is w:
            self._slots[w.index] = None
        self._handles.pop(id(w), None)
        for session in w.sessions:  # affinity to a dead worker is dropped at once
            if self._affinity.get(session) is w:
                del self._affinity[session]
        self._fail_pending(w, status, reason)
        if reason in ("crash", "protocol"):
            self._counters.crashes += 1
            self._bus.emit("crash", w.index, w.pid, exitcode=status.exitcode,
                           signal=status.signal, reason=reason)
        w.done.set()
        if not self._closed and reason != "retire":
            self._after_death(w, reason)

    def _fail_pending(self, w: Worker, status: ExitStatus, reason: str) -> None:
        pending, w.pending = w.pending, {}
        for call in pending.values():
            if call.event.is_set():
                continue
            call.error = self._death_error(w, status, reason, call.command)
            call.event.set()

    def _death_error(
        self, w: Worker, status: ExitStatus, reason: str, command: str | None
    ) -> ChaospoolError:
        if self._closed:
            return PoolClosed("the pool closed while the request ran")
        what = f"{command!r}" if command is not None else "a control op"
        kw: dict[str, Any] = {"pid": w.pid, "exitcode": status.exitcode, "signal": status.signal}
        tail = "; ".join(w.log_tail(3))
        log = f" (last log lines: {tail})" if tail else ""
        if reason == "protocol":
            return ProtocolError(f"{w.describe()} sent a malformed frame while running {what}: "
                                 f"{w.protocol_error}; it was killed and will be replaced", **kw)
        cause = {"health": "failed its health check", "timeout": "was killed after a timeout",
                 "recycle": "was recycled", "close": "was closed"}.get(reason)
        return WorkerCrashed(f"{w.describe()} {cause or status.describe()} while running "
                             f"{what}{log}", **kw)

    # ------------------------------------------------------------------ supervision
    def _after_death(self, w: Worker, reason: str) -> None:
        failure = reason in _FAILURES
        if failure and self._count_failure():
            return
        if w.overflow:
            self._grow()  # an overflow slot is refilled only on demand
            return
        if self._circuit_open:
            return
        self._counters.restarts += 1
        self._bus.emit("restart", w.index, None, replaces=w.pid, reason=reason)
        if reason == "start":
            # a worker that cannot start is retried after a pause, not in a tight loop
            assert self._tg is not None
            self._tg.start_soon(self._relaunch_later, w.index, 0.05)
        else:
            self._launch(w.index)

    async def _relaunch_later(self, index: int, delay: float) -> None:
        await anyio.sleep(delay)
        if not self._closed and not self._circuit_open and self._slots[index] is None:
            self._launch(index)

    def _count_failure(self) -> bool:
        """Record one failure; open the circuit (and say so) when intensity is exceeded."""
        now = time.monotonic()
        failures = self._failures
        failures.append(now)
        while failures and now - failures[0] > self.config.restart_within:
            failures.popleft()
        if len(failures) <= self.config.max_restarts and not self._half_open:
            return False
        if not self._circuit_open:
            self._circuit_open = True
            self._circuit_opened_at = now
            self._bus.emit("circuit_open", failures=len(failures),
                           within=self.config.restart_within)
            self._fail_waiters(CircuitOpen(self._circuit_message()))
        return True

    def _circuit_message(self) -> str:
        cfg = self.config
        left = max(0.0, self._circuit_opened_at + cfg.restart_within - time.monotonic())
        return (f"circuit open: more than max_restarts={cfg.max_restarts} worker failures "
                f"within {cfg.restart_within}s; the pool stopped restarting workers and "
                f"retries one (half-open) in {left:.1f}s")

    def _half_open_circuit(self) -> None:
        self._circuit_open = False
        self._half_open = True  # the next failure reopens at once; the next start closes it
        self._failures.clear()
        self._bus.emit("circuit_half_open")
        for index in range(self.config.size):
            if self._slots[index] is None:
                self._counters.restarts += 1
                self._bus.emit("restart", index, None, reason="half_open")
                self._launch(index)

    def _fail_waiters(self, error: BaseException) -> None:
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter.event.is_set():
                waiter.error = error
                waiter.event.set()

    def _grow(self) -> None:
        """Start workers for waiters no starting worker will serve (lazy and overflow slots)."""
        need = len(self._waiters) - self._starting
        for index, w in enumerate(self._slots):
            if need <= 0 or self._closed or self._circuit_open:
                return
            if w is None:
                self._launch(index)
                need -= 1

    def _recycle(self, w: Worker, reason: str, rss: int | None) -> None:
        self._counters.recycles += 1
        self._bus.emit("recycle", w.index, w.pid, reason=reason, rss=rss)
        self._stop(w, "recycle")

    def _stop(self, w: Worker, reason: str) -> None:
        """SIGTERM now, SIGKILL after the grace period if it is still there."""
        if w.state in ("stopping", "dead"):
            return
        if w.stop_reason is None:
            w.stop_reason = reason
        if w.state == "starting":
            w.scope.cancel()  # the handshake gives up; the incarnation reaps what it started
            return
        w.state = "stopping"
        if w in self._idle:
            self._idle.remove(w)
        if w.link is not None:
            self._signal(w, _signal.SIGTERM)
            self._signal(w, _signal.SIGCONT)  # a stopped worker must see its SIGTERM
        assert self._tg is not None
        self._tg.start_soon(self._kill_after, w, self.config.stop_grace)

    async def _kill_after(self, w: Worker, grace: float) -> None:
        with anyio.move_on_after(grace):
            await w.done.wait()
        if not w.done.is_set():
            self._signal(w, _signal.SIGKILL)

    def _kill(self, w: Worker, reason: str) -> None:
        if w.state == "dead":
            return
        if w.stop_reason is None:
            w.stop_reason = reason
        w.state = "stopping"
        if w in self._idle:
            self._idle.remove(w)
        self._signal(w, _signal.SIGKILL)

    def _signal(self, w: Worker, sig: int) -> None:
        if w.link is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                w.link.signal(sig)

    async def _supervise(self) -> None:
        """One periodic tick: heartbeats, overflow retirement, abandoned calls, half-open."""
        cfg = self.config
        periods = [x for x in (cfg.health_interval, cfg.health_timeout) if x > 0]
        if cfg.max_overflow:
            periods.append(cfg.overflow_idle or 0.05)
        tick = min(max(min(periods, default=1.0) / 4, 0.005), 0.25)
        while not self._closed:
            await anyio.sleep(tick)
            now = time.monotonic()
            if self._circuit_open and now - self._circuit_opened_at >= cfg.restart_within:
                self._half_open_circuit()
            for w in list(self._slots):
                if w is not None and w.alive:
                    await self._check(w, now)

    async def _check(self, w: Worker, now: float) -> None:
        cfg = self.config
        if w.overflow and w.state == "ready" and now - w.idle_since >= cfg.overflow_idle:
            self._bus.emit("retire", w.index, w.pid, idle=now - w.idle_since)
            self._stop(w, "retire")
            return
        for call in w.pending.values():
            if call.abandoned and now > call.deadline:
                self._timed_out(w, call.command or "?", cfg.request_timeout)
                return
        if cfg.health_interval <= 0:
            return
        if w.ping_id is not None:
            if now - w.ping_sent > cfg.health_timeout:
                self._bus.emit("health_fail", w.index, w.pid, timeout=cfg.health_timeout)
                self._kill(w, "health")
        elif now - w.last_ping >= cfg.health_interval:
            if w.state == "ready" and cfg.max_memory is not None and not self._memory_ok_idle(w):
                return
            w.ping_id = next(self._ids)
            w.ping_sent = w.last_ping = now
            await self._send(w, p.Ping(w.ping_id))

    def _memory_ok_idle(self, w: Worker) -> bool:
        """An idle worker above ``max_memory`` (a leak between requests) is recycled too."""
        rss = self._rss(w)
        limit = self.config.max_memory
        if rss is None or limit is None or rss <= limit:
            return True
        self._recycle(w, "max_memory", rss)
        return False
