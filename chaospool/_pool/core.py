"""``Pool``: the facade that owns the pool's parts, wires them, and runs their lifecycle.

::

    Pool ─┬─ PoolState      (state.py)       the shared data: slots, idle set, sessions, ...
          ├─ RequestPath    (requests.py)    checkout, dispatch, replies, check-in
          ├─ Supervisor     (supervisor.py)  incarnations, deaths, restarts, circuit, heartbeats
          ├─ FaultSurface   (surface.py)     WorkerOps for every WorkerHandle
          └─ Backend        (backend.py)     by name in backends.py: process.py | memory.py |
                                             _ray/ -- or a given one

The request path and the supervisor see each other only through the protocols of
``seams.py``; ``WorkerHandle`` sees only ``WorkerOps`` (``ops.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import msgspec

from chaospool._pool.backend import Backend
from chaospool._pool.backends import make_backend
from chaospool._pool.config import build_config
from chaospool._pool.events import PoolEvent, PoolStats
from chaospool._pool.flag import asyncio_loop, flag_factory
from chaospool._pool.handle import WorkerHandle
from chaospool._pool.kinds import BUSY, DEAD, READY, StopReason
from chaospool._pool.requests import RequestPath
from chaospool._pool.state import PoolState
from chaospool._pool.supervisor import Supervisor
from chaospool._pool.surface import FaultSurface, Meter
from chaospool._pool.worker import Worker
from chaospool._wire import protocol as p
from chaospool.errors import (
    ChaospoolError,
    CommandError,
    PoolClosed,
    RequestTimeout,
    WorkerCrashed,
    WorkerStartError,
)

_ENCODE_ERRORS = (TypeError, ValueError, OverflowError, msgspec.EncodeError)


def _loop_clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """The clock of ``loop``'s timers. asyncio's own ``time()`` is ``time.monotonic()`` in a
    Python method: the pool reads the clock twice per request, so it calls ``monotonic``
    itself unless the loop's class has its own clock (uvloop's is C, and cached per poll)."""
    if type(loop).time is asyncio.BaseEventLoop.time:
        return time.monotonic
    return loop.time


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
        ray: Mapping[str, Any] | None = None,
    ) -> None:
        config = build_config(
            worker, size=size, max_overflow=max_overflow, strategy=strategy,
            checkout_timeout=checkout_timeout, request_timeout=request_timeout,
            max_queue=max_queue, restart=restart, max_memory=max_memory,
            max_requests=max_requests, overflow_idle=overflow_idle, lazy=lazy,
            health_check=health_check, start_timeout=start_timeout,
        )
        self.config = config
        self._assemble(PoolState(config, make_backend(backend, config, ray)))
        self.commands: list[str] = []
        self._stack: AsyncExitStack | None = None

    def _assemble(self, state: PoolState) -> None:
        """Make the parts and hand each its collaborators (docs/design.md, "Pool")."""
        self._state = state
        meter = Meter(state.backend.real_processes)
        self._supervisor = Supervisor(state)
        self._requests = RequestPath(state, self._supervisor, meter.rss)
        self._supervisor.attach(self._requests)
        self._surface = FaultSurface(state, self._requests, meter)
        # the shared containers under the names tests and benchmarks reach for
        self._backend, self._slots, self._bus = state.backend, state.slots, state.bus
        self._sessions, self._affinity = state.sessions, state.sessions.affinity

    # ------------------------------------------------------------------ the options, read-only
    # every PoolConfig field, typed (tests/pool/test_pool_structure.py checks none is missing)
    @property
    def worker(self) -> str:
        return self.config.worker

    @property
    def size(self) -> int:
        return self.config.size

    @property
    def max_overflow(self) -> int:
        return self.config.max_overflow

    @property
    def strategy(self) -> str:
        return self.config.strategy

    @property
    def checkout_timeout(self) -> float:
        return self.config.checkout_timeout

    @property
    def request_timeout(self) -> float:
        return self.config.request_timeout

    @property
    def max_queue(self) -> int:
        return self.config.max_queue

    @property
    def max_restarts(self) -> int:
        return self.config.max_restarts

    @property
    def restart_within(self) -> float:
        return self.config.restart_within

    @property
    def max_memory(self) -> int | None:
        return self.config.max_memory

    @property
    def max_requests(self) -> int | None:
        return self.config.max_requests

    @property
    def overflow_idle(self) -> float:
        return self.config.overflow_idle

    @property
    def lazy(self) -> bool:
        return self.config.lazy

    @property
    def health_interval(self) -> float:
        return self.config.health_interval

    @property
    def health_timeout(self) -> float:
        return self.config.health_timeout

    @property
    def start_timeout(self) -> float:
        return self.config.start_timeout

    @property
    def stop_grace(self) -> float:
        return self.config.stop_grace

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Pool:
        state = self._state
        if state.opened:
            raise RuntimeError("a Pool can be entered only once")
        state.opened = True
        self._stack = AsyncExitStack()
        outer = await self._stack.enter_async_context(anyio.create_task_group())
        state.tg = await outer.start(self._host)
        self._bind_loop(state)
        try:
            self.commands = await self._backend.start(state.tg)
            if not self.config.lazy:
                await self._start_eager()
            state.tg.start_soon(self._supervisor.run)
        except BaseException:
            await self._teardown()
            raise
        return self

    def _bind_loop(self, state: PoolState) -> None:
        """The loop the pool runs on gives the flags and the clock (asyncio: its own)."""
        state.loop = asyncio_loop()
        state.flag = flag_factory(state.loop)
        if state.loop is not None:
            state.clock = _loop_clock(state.loop)
        self._requests.bind_loop()

    async def _start_eager(self) -> None:
        workers = [self._supervisor.launch(i) for i in range(self.config.size)]
        for w in workers:
            await w.started.wait()
        errors = [w.start_error for w in workers if w.start_error is not None]
        if errors:
            raise errors[0]

    async def _host(
        self, *, task_status: anyio.abc.TaskStatus[anyio.abc.TaskGroup] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Own the pool's background tasks (readers, reapers, supervisor) under a shield.

        Why: if they lived in a task group entered by ``__aenter__``, a cancellation of the
        caller's scope (a timeout around ``async with Pool``, an aborted run) would cancel them
        too, and teardown would wait forever for exits nobody reports. Here only ``_teardown``
        ends them, after every worker is reaped; the caller's body stays cancellable.
        """
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                task_status.started(tg)
                await anyio.sleep_forever()  # cancelled by _teardown via tg.cancel_scope

    async def __aexit__(self, *exc_info: object) -> None:
        await self._teardown()

    async def aclose(self) -> None:
        await self._teardown()

    async def _teardown(self) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            return
        with anyio.CancelScope(shield=True):
            self._state.closed = True
            self._requests.fail_waiters(PoolClosed("the pool is closing"))
            workers = [w for w in self._slots if w is not None]
            for w in workers:
                self._supervisor.stop(w, StopReason.CLOSE)
            for w in workers + self._supervisor.reaping():  # dead, replaced, not yet reaped
                await w.done.wait()
            await self._backend.aclose()
            assert self._state.tg is not None
            self._state.tg.cancel_scope.cancel()
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
        CircuitOpen, PoolClosed or CommandError (also for args that cannot be encoded or do
        not fit in a frame). ``retries`` re-runs the call (after a short
        backoff) when the worker crashed or timed out.
        """
        state = self._state
        if state.closed or not state.opened:
            raise PoolClosed("the pool is closed" if state.closed else "the pool is not open")
        try:
            raw = p.NIL if args is None else self._encode_args(command, args)
        except CommandError:
            state.counters.errors += 1
            await anyio.lowlevel.checkpoint()  # a caller retrying in a loop must yield
            raise
        deadline = self.config.request_timeout if timeout is None else timeout
        # (the request path's methods, called through it: a bound method kept as an attribute
        # of ours would be an unspecialised lookup per call)
        requests = self._requests
        attempt = 0
        while True:
            try:
                call = requests.begin(command, raw, session, deadline)
                try:
                    # asyncio: the future made with the call (the lazy timers set it on a
                    # deadline); elsewhere anyio scopes wait
                    await (call.fut or requests.wait(call))
                except BaseException:
                    requests.give_up(call)
                    raise
                return requests.finish(call)
            except ChaospoolError as exc:
                if not self._retry(exc, attempt, retries):
                    if not isinstance(exc, WorkerCrashed | RequestTimeout):
                        # QueueFull and CircuitOpen are raised before any await: yield once
                        # anyway, or a caller that retries in a loop starves the event loop
                        # -- and with it the workers whose replies would free the queue
                        await anyio.lowlevel.checkpoint()
                    raise
                attempt += 1
                await anyio.sleep(min(0.005 * 2**attempt, 0.1))

    def _retry(self, exc: ChaospoolError, attempt: int, retries: int) -> bool:
        """Whether to run a failed call again: after a crash or a timeout, while ``retries``
        are left and the pool is open (a worker that cannot start is not retried). A call
        that is not retried is counted as an error."""
        state = self._state
        if (isinstance(exc, WorkerCrashed | RequestTimeout) and attempt < retries
                and not isinstance(exc, WorkerStartError) and not state.closed):
            return True
        state.counters.errors += 1
        return False

    @staticmethod
    def _encode_args(command: str, args: Any) -> msgspec.Raw:
        """The args, encoded once; a CommandError (the call's fault, not the worker's) when
        they cannot be encoded or would not fit in a frame."""
        try:
            raw = p.NIL if args is None else p.encode_value(args)  # NIL is None, encoded
        except _ENCODE_ERRORS as exc:
            raise CommandError("UnserialisableArgs",
                               f"the args of {command!r} cannot be serialised: {exc}") from exc
        if len(raw) > p.payload_limit():
            raise CommandError("FrameTooLarge", f"the args of {command!r} take {len(raw)} "
                               f"bytes, above the {p.payload_limit()}-byte frame limit")
        return raw

    def stats(self) -> PoolStats:
        ready = busy = overflow = 0
        for w in self._slots:
            if w is None:
                continue
            ready += w.state == READY
            busy += w.state == BUSY
            overflow += w.overflow and w.state != DEAD
        c = self._state.counters
        return PoolStats(
            ready_workers=ready, busy_workers=busy, overflow_workers=overflow,
            queue_depth=self._requests.queued(), max_queue_depth=c.max_queue_depth,
            restarts=c.restarts, checkouts=c.checkouts, checkins=c.checkins, errors=c.errors,
            crashes=c.crashes, timeouts=c.timeouts, recycles=c.recycles,
            circuit_open=self._supervisor.circuit_open, subscriber_errors=self._bus.errors,
        )

    @property
    def workers(self) -> list[WorkerHandle]:
        """Handles of the current incarnations, by slot (overflow slots after).

        A core slot between two incarnations shows its last one (state ``"dead"``), so
        ``pool.workers[i].index == i`` holds for every core slot that has ever started.
        """
        handles = []
        for i, w in enumerate(self._slots):
            if w is not None:
                handles.append(self._handle(w))
            elif i < self.config.size and (last := self._state.last[i]) is not None:
                handles.append(WorkerHandle(self._surface, last))  # not cached: gone for good
        return handles

    def subscribe(self, callback: Callable[[PoolEvent], None],
                  kinds: Iterable[str] | None = None) -> Callable[[], None]:
        """Call ``callback(event)`` for every pool event, or only for those of ``kinds``
        (names from ``EVENT_KINDS``; an unknown one is a ValueError); returns the unsubscribe
        function. Name the kinds you need: an event nobody wants is never built, and the
        request path emits two per call."""
        return self._bus.subscribe(callback, kinds)

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
                if self._state.closed:
                    raise PoolClosed("the pool is closed")
                event = anyio.Event()
                self._state.slot_watchers.append(event)
                await event.wait()

    def owns(self, pid: int) -> bool:
        return any(w is not None and w.pid == pid for w in self._slots)

    def session_state(self, session: str) -> Any:
        """The pool's authoritative copy of a session's state (None if unknown or empty)."""
        return self._sessions.state(session)

    @property
    def late_replies(self) -> int:
        """Replies that came for a caller who had given up (each was discarded)."""
        return self._requests.late_replies

    def _handle(self, w: Worker) -> WorkerHandle:
        handles = self._state.handles
        handle = handles.get(id(w))
        if handle is None or not handle.is_for(w):
            handle = handles[id(w)] = WorkerHandle(self._surface, w)
        return handle
