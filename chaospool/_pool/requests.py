"""The request path: checkout, dispatch, replies, check-in.

::

    execute -> an idle worker (the session's last one if idle, else LIFO/FIFO) -> dispatch
            -> or a FIFO queue entry, dispatched later by whoever frees a worker
    reply   -> (transport callback) complete the call, check the worker in, dispatch the next
               queued call at once, then wake the caller

Dispatching the next queued call from the reply callback -- instead of waking its caller to
send it -- keeps workers busy without any pipelining: a worker still holds exactly one request,
so a crash fails only that one. Request ids are unique per pool and a reply only completes the
call registered under its id *on that worker*: a late reply cannot reach another caller.

Calls on one session take turns (``chaospool/_pool/sessions.py``): a call whose session has a
call in flight waits in that session's line, and enters the path above when the call before it
ends -- answered, failed, timed out, or given up by its caller (whose reply is then discarded).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from chaospool._pool.backend import WRITE_CLOSED, LinkClosed
from chaospool._pool.kinds import BUSY, READY, RecycleReason, StopReason
from chaospool._pool.seams import Supervision
from chaospool._pool.state import PoolState
from chaospool._pool.worker import Call, Partition, Worker
from chaospool._wire import protocol as p
from chaospool.errors import (
    ChaospoolError,
    CheckoutTimeout,
    CircuitOpen,
    CommandError,
    PoolClosed,
    QueueFull,
    RequestTimeout,
)

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from chaospool._pool.flag import Flag


_decode_value = p.decode_value
_Reply = p.Reply
_Request = p.Request
_encode = msgspec.msgpack.Encoder().encode  # as ``p.encode_frame`` encodes
_pack = p.HEADER.pack


class RequestPath:
    """Given the shared state, the supervision it asks to kill, recycle and grow workers,
    and how to measure a worker's memory (``max_memory``)."""

    def __init__(
        self,
        state: PoolState,
        supervision: Supervision,
        rss: Callable[[Worker], int | None],
    ) -> None:
        self._state = state
        self.config = state.config
        self._lifo = state.config.strategy == "lifo"
        # neither max_requests nor max_memory: a check-in recycles nothing (one test, not two)
        self._plain = state.config.max_requests is None and state.config.max_memory is None
        # (the config is frozen) read per queued call
        self._max_queue = state.config.max_queue
        self._checkout_timeout = state.config.checkout_timeout
        # the shared containers, bound once: the code below reads them with one lookup
        self._slots = state.slots
        self._idle = state.idle
        self._ids = state.ids
        self._sessions = state.sessions
        self._affinity = state.sessions.affinity
        self._counters = state.counters
        self._bus = state.bus
        # the request path's own: the FIFO checkout queue and its deadline timer. A caller who
        # gives up leaves it in O(1) (deque.remove is O(n): a cancelled 100k-caller herd would
        # be quadratic): its call is marked (``abandoned``) and skipped when it reaches the
        # head; ``_depth`` counts the calls that still wait. Why not an OrderedDict, which
        # removes in O(1) too: its insert and pop cost a hash, a node and a tuple per request.
        self._waiters: deque[Call] = deque()
        self._depth = 0
        self._queue_timer: asyncio.TimerHandle | None = None
        self.late_replies = 0
        self._kill = supervision.kill
        self._recycle = supervision.recycle
        self._grow = supervision.grow
        self._circuit_message = supervision.circuit_message
        self._rss = rss
        # the supervisor owns the circuit and says when it changes (set_circuit): a copy
        # read per call, where a look through the state would cost a call per request
        self._circuit_open = False
        self.bind_loop()

    def bind_loop(self) -> None:
        """Copy the loop the pool opened on (its flags, clock, task group): fixed once open,
        and read per call, so kept here rather than looked up through the state."""
        state = self._state
        # asyncio only: deadlines are lazy loop timers (one for the queue, one per worker,
        # re-armed when they fire) instead of a timer per wait
        self._loop: asyncio.AbstractEventLoop | None = state.loop
        self._flag: Callable[[], Flag] = state.flag
        self._clock: Callable[[], float] = state.clock
        self._tg: TaskGroup | None = state.tg

    @property
    def _closed(self) -> bool:
        return self._state.closed  # the pool's to change

    def queued(self) -> int:
        """Calls waiting in the checkout queue."""
        return self._depth

    def set_circuit(self, is_open: bool) -> None:
        """The circuit opened (calls fail with CircuitOpen at once) or half-opened."""
        self._circuit_open = is_open

    # -- one attempt: begin, wait, finish (``Pool.execute`` is the one coroutine around them)
    def _begin(self, command: str, raw: msgspec.Raw, session: str | None, timeout: float) -> Call:
        """Start one attempt -- to an idle worker, into the queue, or into its session's line
        -- and return its call, whose caller then awaits ``call.fut`` if it has one, else
        ``wait(call)``. Raises what refuses it at once (CircuitOpen, QueueFull, a
        CommandError), having passed on any session turn it took.

        Why not a coroutine: it would be a second one per request beside ``Pool.execute``,
        and a coroutine layer costs more than these two plain calls (docs/design.md,
        "Performance")."""
        if self._circuit_open:
            raise CircuitOpen(self._circuit_message())
        loop = self._loop
        if session is None:
            # encoded here, by its caller: the reply callback that dispatches it -- while its
            # worker waits -- then only writes it (docs/design.md, "Performance")
            rid = next(self._ids)
            body = _encode(_Request(rid, command, raw))
            frame = _pack(len(body)) + body
            # asyncio: the call is its own flag (worker.py, Call), with the future its caller
            # awaits made here: the caller's one wait, and no call to get it
            call = (Call(command, None, raw, None, timeout, loop.create_future(), rid, frame)
                    if loop is not None else Call(command, self._flag(), raw, None, timeout, None,
                                                  rid, frame))
            if self._idle:
                self._dispatch(self._take_idle(None), call)
            else:
                self._enqueue(call)
        else:
            call = (Call(command, None, raw, session, timeout, loop.create_future())
                    if loop is not None else Call(command, self._flag(), raw, session, timeout))
            try:
                self._take_turn(call)  # (encoded at dispatch: its state may change until then)
            except BaseException:
                if call.has_turn:
                    self._pass_turn(call)
                raise
        return call

    def _finish(self, call: Call) -> Any:
        """The attempt's result, or its error raised; the session's next call goes."""
        try:
            msg = call.msg
            if type(msg) is _Reply:  # the common end, read here: one call less per request
                return _decode_value(msg.value)
            return self._result(call)
        finally:
            if call.has_turn:
                self._pass_turn(call)

    def _give_up(self, call: Call) -> None:
        """The caller stopped waiting (cancelled): abandon the call, pass its session's turn."""
        try:
            self._abandon(call)
        finally:
            if call.has_turn:
                self._pass_turn(call)

    def _take_turn(self, call: Call) -> None:
        """Route a call on a session now if it has its session's turn, else put it in line."""
        if self._sessions.take_turn(call):
            self._route(call)
        else:
            self._wait_turn(call)

    def _route(self, call: Call) -> None:
        """To an idle worker now, else into the FIFO queue (QueueFull beyond max_queue)."""
        if call.session is not None:
            self._check_fits(call)
        w = self._take_idle(call.session) if self._idle else None
        if w is not None:
            self._dispatch(w, call)
        else:
            self._enqueue(call)

    def _check_fits(self, call: Call) -> None:
        """A request must fit in one frame with its session's whole state (which it may have
        to carry); checked once the call holds the turn, when that state cannot change."""
        assert call.session is not None
        size = len(call.raw) + self._sessions.size(call.session) + len(call.session)
        if size > p.payload_limit():
            raise CommandError("FrameTooLarge", (
                f"{call.command!r} on session {call.session!r}: its args and the session's "
                f"state take {size} bytes, above the {p.payload_limit()}-byte frame limit"))

    # -- session turns --------------------------------------------------------------------
    def _wait_turn(self, call: Call) -> None:
        """Another call of this session is in flight: wait in its line, at most
        checkout_timeout (then the line's wait, like the queue's, ends in CheckoutTimeout)."""
        session = call.session
        assert session is not None
        if self._sessions.waiting(session) > self.config.max_queue:
            self._sessions.leave_line(call)
            raise QueueFull(f"{self.config.max_queue} calls of session {session!r} already "
                            f"wait for their turn (max_queue={self.config.max_queue})")
        call.queue_deadline = self._clock() + self.config.checkout_timeout
        if self._loop is not None:
            call.timer = self._loop.call_at(call.queue_deadline, self._expire_turn, call)

    def _expire_turn(self, call: Call) -> None:
        call.timer = None
        if not call.has_turn and not call.is_set():
            self._turn_timed_out(call)

    def _turn_timed_out(self, call: Call) -> None:
        self._sessions.leave_line(call)
        self._bus.emit("checkout_timeout", timeout=self.config.checkout_timeout)
        call.error = CheckoutTimeout(
            f"session {call.session!r}: the call before this one still ran after "
            f"checkout_timeout={self.config.checkout_timeout}s (a session's calls run one at "
            "a time)")
        call.set()

    def _pass_turn(self, call: Call) -> None:
        """``call`` is over: the next call of its session gets the turn and is routed."""
        call.has_turn = False
        session = call.session
        assert session is not None
        nxt = self._sessions.next_turn(session)
        if nxt is None:
            return
        if nxt.timer is not None:
            nxt.timer.cancel()
            nxt.timer = None
        try:
            if self._closed:
                raise PoolClosed("the pool is closing")
            if self._circuit_open:
                raise CircuitOpen(self._circuit_message())
            self._route(nxt)
        except ChaospoolError as exc:  # its caller raises it, then passes the turn on
            nxt.error = exc
            nxt.set()

    def _take_idle(self, session: str | None) -> Worker:
        idle = self._idle
        w = self._affinity.get(session) if session is not None else None
        if w is not None and w.state == "ready":
            idle.remove(w)  # affinity is a preference: used only when that worker is idle
        else:
            w = idle.pop() if self._lifo else idle.popleft()
        w.state = BUSY  # checked out (as in _make_available: inline, one call less)
        self._counters.checkouts += 1
        if self._bus.subscribers:
            self._bus.emit("checkout", w.index, w.pid)
        return w

    def _enqueue(self, call: Call) -> None:
        depth = self._depth
        if depth >= self._max_queue:
            self._bus.emit("queue_full", depth=depth)
            raise QueueFull(f"{depth} requests already wait for a worker "
                            f"(max_queue={self._max_queue})")
        clock = self._clock  # (a callable attribute: ``self._clock()`` is an unspecialised lookup)
        call.queue_deadline = clock() + self._checkout_timeout
        self._waiters.append(call)
        self._depth = depth + 1
        counters = self._counters
        if depth >= counters.max_queue_depth:
            counters.max_queue_depth = depth + 1
        if self._queue_timer is None:
            self._arm_queue()
        if self._state.vacant:  # only an empty slot can grow
            self._grow()

    async def _wait(self, call: Call) -> None:
        """The waits of a call on backends without lazy timers (trio): anyio scopes."""
        while not call.is_set():
            if call.worker is None:
                # the deadline is read again each time: a call that got its session's turn
                # entered the queue with a new one
                left = call.queue_deadline - self._clock()
                if left > 0:
                    await call.wait(left)
                elif call.session is not None and not call.has_turn:
                    self._turn_timed_out(call)
                else:
                    self._leave_queue(call)
                    call.timed_out = True
                    return
            elif not await call.wait(max(0.0, call.deadline - self._clock())):
                self._time_out(call)

    def _abandon(self, call: Call) -> None:
        """The caller gave up: a queued call leaves the queue; a dispatched one is abandoned
        (its worker stays busy until the reply comes -- then it is checked in -- or until its
        deadline -- then it is killed), never handed to anyone else meanwhile."""
        if call.worker is None:
            self._leave_queue(call)
        elif not call.is_set():
            call.abandoned = True

    def _result(self, call: Call) -> Any:
        if call.error is not None:
            raise call.error
        w = call.worker
        if call.timed_out:
            if w is None:
                self._bus.emit("checkout_timeout", timeout=self.config.checkout_timeout)
                raise CheckoutTimeout(f"no worker became free within "
                                      f"{self.config.checkout_timeout}s")
            raise RequestTimeout(f"{w.describe()} did not answer {call.command!r} within "
                                 f"{call.timeout}s; it was killed and will be replaced")
        msg = call.msg
        if type(msg) is p.Reply:
            return p.decode_value(msg.value)
        assert isinstance(msg, p.Failure)
        raise CommandError(msg.error_type, msg.message, msg.traceback)

    # -- deadlines (asyncio: lazy loop timers) ------------------------------------------
    def _arm_queue(self) -> None:
        if self._queue_timer is None and self._depth and self._loop is not None:
            deadline = self._head().queue_deadline
            self._queue_timer = self._loop.call_at(deadline, self._expire_queue)

    def _head(self) -> Call:
        """The first call that still waits (``_depth`` > 0), the ones that left before it
        dropped on the way."""
        waiters = self._waiters
        while waiters[0].abandoned or waiters[0].done:
            waiters.popleft()
        return waiters[0]

    def _pop_waiter(self) -> Call:
        """Take the first call that still waits (``_depth`` > 0) out of the queue."""
        call = self._head()
        self._waiters.popleft()
        self._depth -= 1
        return call

    def _expire_queue(self) -> None:
        """Time out every queued call past its deadline. FIFO with one checkout_timeout: the
        head is always the oldest, so one timer for the head covers the whole queue."""
        self._queue_timer = None
        now = self._clock()
        while self._depth and self._head().queue_deadline <= now:
            call = self._pop_waiter()
            call.timed_out = True
            call.set()
        self._arm_queue()

    def _arm_worker(self, w: Worker, deadline: float) -> None:
        """Make ``w``'s one timer fire by ``deadline`` (``w.timer_at``: when it fires, read
        per dispatch without a call; never armed off asyncio, where scopes wait)."""
        if self._loop is None:
            w.timer_at = -math.inf  # no loop timers here (scopes wait): never asked again
            return
        if w.timer_at <= deadline:
            return
        if w.timer is not None:
            w.timer.cancel()
        w.timer = self._loop.call_at(deadline, self._expire_worker, w)
        w.timer_at = deadline

    def _expire_worker(self, w: Worker) -> None:
        """A worker's timer fired: time out its overdue command, re-arm for the next one."""
        w.timer, w.timer_at = None, math.inf
        now = self._clock()
        for call in list(w.pending.values()):
            if call.command is None or call.is_set():
                continue
            if call.deadline <= now:
                self._time_out(call)
            else:
                self._arm_worker(w, call.deadline)

    def _time_out(self, call: Call) -> None:
        """A dispatched call passed its deadline: its worker is killed, never checked back in."""
        w = call.worker
        assert w is not None
        w.pending.pop(call.rid, None)
        call.timed_out = True
        call.set()
        self._counters.timeouts += 1
        self._bus.emit("timeout", w.index, w.pid, command=call.command, timeout=call.timeout)
        self._kill(w, StopReason.TIMEOUT)

    def _leave_queue(self, call: Call) -> None:
        if call.session is not None and self._sessions.leave_line(call):
            if call.timer is not None:  # its turn's deadline: nobody waits for it any more
                call.timer.cancel()
                call.timer = None
            return  # it was still waiting for its session's turn
        if call.abandoned or call.done:
            return  # it left already (timed out, failed) or was never queued
        call.abandoned = True  # skipped when it reaches the head: O(1)
        self._depth -= 1
        waiters = self._waiters
        if len(waiters) > 2 * self._depth + 64:  # mostly calls that left: drop them now
            self._waiters = deque(c for c in waiters if not (c.abandoned or c.done))

    # -- dispatch and replies -----------------------------------------------------------
    def _dispatch(self, w: Worker, call: Call) -> None:
        """Send ``call`` to the (checked-out) worker ``w`` now.

        The frame goes out first and the deadline is set after: the worker is waiting, and
        nothing can answer before this callback returns."""
        call.worker = w
        frame = call.frame
        if frame is None:  # a call on a session: its id and state are chosen now
            call.rid = next(self._ids)
        w.pending[call.rid] = call
        send = w.send_frame
        if frame is None or send is None or w.partition is not None:
            self._send_now(w, self._request(w, call))
        else:
            try:  # noqa: SIM105  reason: suppress() is two calls per request
                send(frame)  # the common case: write it right here
            except WRITE_CLOSED:
                pass  # the read loop sees the EOF and fails this request
        clock = self._clock  # (as in _enqueue)
        deadline = call.deadline = clock() + call.timeout
        if w.timer_at > deadline:
            self._arm_worker(w, deadline)

    def _request(self, w: Worker, call: Call) -> p.Request:
        if call.session is not None:
            return self._sessions.request(w, call, call.rid)
        return p.Request(call.rid, call.command or "", call.raw)

    def _send_now(self, w: Worker, msg: p.Message) -> None:
        part, link = w.partition, w.link
        if part is not None and part.to_worker:
            part.intercept(msg, outgoing=True)
            return
        if link is None:
            return
        try:
            if link.send_nowait(msg):
                return
        except LinkClosed:
            return  # the read loop sees the EOF and fails this request
        assert self._tg is not None
        self._tg.start_soon(self._send_link, w, msg)

    async def _send_link(self, w: Worker, msg: p.Message) -> None:
        if w.link is not None:
            with contextlib.suppress(LinkClosed):
                await w.link.send(msg)

    async def _send(self, w: Worker, msg: p.Message) -> None:
        part = w.partition
        if part is not None and part.to_worker:
            part.intercept(msg, outgoing=True)
            return
        await self._send_link(w, msg)

    def _replies(self, w: Worker, msgs: list[p.Message]) -> None:
        """What ``w``'s link read, in order (its ``serve`` callback, bound per worker).

        The reply of a loaded pool takes the path below without another call: complete the
        call, check the worker in, hand it the first queued call and write that call's frame,
        then wake the caller (``_deliver``, ``_checkin`` and ``_dispatch`` in one piece). The
        worker waits for the parent through all of this; each Python call on it costs as much
        as several of these lines (docs/design.md, "Performance"). Everything else -- a
        partition, a Failure, a session, an abandoned call, recycling, subscribers, an empty
        queue -- takes the general path."""
        part = w.partition
        if part is not None:
            self._partitioned(w, part, msgs)
            return
        pending, clock = w.pending, self._clock  # (clock: as in _enqueue)
        for msg in msgs:
            if type(msg) is not _Reply:
                self._deliver(w, msg)
                continue
            call = pending.pop(msg.id, None)
            if call is None or call.abandoned or call.session is not None or call.command is None:
                self._answered(w, call, msg)
                continue
            call.msg = msg
            if (w.state is BUSY and self._depth and self._plain and not self._circuit_open
                    and not self._bus.subscribers):
                w.requests += 1
                counters = self._counters
                counters.checkins += 1
                counters.checkouts += 1
                # (``_pop_waiter`` inline) FIFO; calls that left the queue are skipped
                waiters = self._waiters
                nxt = waiters.popleft()
                while nxt.abandoned or nxt.done:
                    nxt = waiters.popleft()
                self._depth -= 1
                frame, send = nxt.frame, w.send_frame
                if frame is None or send is None:
                    self._dispatch(w, nxt)  # a call on a session, or a link without frames
                else:
                    nxt.worker = w
                    pending[nxt.rid] = nxt
                    try:  # noqa: SIM105  reason: suppress() is two calls per request
                        send(frame)
                    except WRITE_CLOSED:
                        pass  # the read loop sees the EOF and fails this request
                    deadline = nxt.deadline = clock() + nxt.timeout
                    if w.timer_at > deadline:
                        self._arm_worker(w, deadline)
            else:
                self._checkin(w)
            # (``call.set()`` inline) asyncio: its caller's future; elsewhere its flag
            call.done = True
            fut = call.fut
            if fut is None or call.flag is not None:
                call.set()
            elif not fut.done():
                fut.set_result(True)

    def _partitioned(self, w: Worker, part: Partition, msgs: list[p.Message]) -> None:
        """A partition stands between ``w`` and the pool: what comes from ``w`` is held or
        dropped if it cuts that direction, else delivered."""
        for msg in msgs:
            if part.from_worker:
                part.intercept(msg, outgoing=False)
            else:
                self._deliver(w, msg)

    def _deliver(self, w: Worker, msg: p.Message) -> bool:
        """Complete the call ``msg`` answers; False if nobody waits for it any more."""
        kind = type(msg)  # exact types: the messages are final, and ``is`` is no call
        if kind is p.Reply or kind is p.Failure:
            # (narrowed by hand: isinstance or typing.cast would each be a call per reply)
            answer: p.Reply | p.Failure = msg  # type: ignore[assignment]
            return self._answered(w, w.pending.pop(answer.id, None), answer)
        if isinstance(msg, p.Miss):
            return self._missed(w, msg)
        if isinstance(msg, p.Pong) and w.ping_id == msg.id:
            w.ping_id = None
        return True

    def _answered(self, w: Worker, call: Call | None, answer: p.Reply | p.Failure) -> bool:
        """Complete ``call`` (popped from ``w.pending``) with ``answer``; False if nobody
        waits for it any more."""
        if call is None or call.abandoned:
            self._discard(w, call, answer)
            return False
        call.msg = answer if call.session is None else self._session_reply(w, call, answer)
        if call.command is not None:
            self._checkin(w)  # may dispatch the next queued call right now
        call.set()
        return True

    def _missed(self, w: Worker, msg: p.Miss) -> bool:
        """``w`` lacked the session version a request named: nothing ran, send it again."""
        call = w.pending.pop(msg.id, None)
        if call is None or call.abandoned:
            self._discard(w, call, msg)
            return False
        self._resend(w, call)  # only a command on a session gets a Miss
        return True

    def _discard(self, w: Worker, call: Call | None, reply: p.Reply | p.Failure | p.Miss) -> None:
        """A reply nobody waits for: counted; the worker is checked in, and its copy of the
        session (changed by a call whose change is discarded) is no longer trusted."""
        self._late_reply(w, reply)
        if call is not None and call.command is not None:
            if call.session is not None:
                self._sessions.forget(w, call.session)
            self._checkin(w)

    def _session_reply(
        self, w: Worker, call: Call, reply: p.Reply | p.Failure
    ) -> p.Reply | p.Failure:
        assert call.session is not None
        if isinstance(reply, p.Failure):  # nothing changed; the worker dropped its copy
            self._sessions.forget(w, call.session)
            return reply
        return self._sessions.adopt(w, call, reply) or reply

    def _resend(self, w: Worker, call: Call) -> None:
        """``w`` lacked the session's state (``Miss``, nothing ran): send it again, with the
        state, under a new request id; the call keeps its worker and its deadline."""
        assert call.session is not None
        self._sessions.forget(w, call.session)
        rid = call.rid = next(self._ids)
        w.pending[rid] = call
        self._send_now(w, self._sessions.request(w, call, rid))

    def _late_reply(self, w: Worker, msg: p.Reply | p.Failure | p.Miss) -> None:
        self.late_replies += 1
        self._bus.emit("late_reply", w.index, w.pid, id=msg.id)

    # -- check-in ---------------------------------------------------------------------
    def _checkin(self, w: Worker) -> None:
        w.requests += 1
        if w.state is not BUSY:
            return  # it is being stopped or is dead already
        self._counters.checkins += 1
        if self._bus.subscribers:
            self._bus.emit("checkin", w.index, w.pid)
        if not self._plain and not self._keeps(w):
            return  # recycled
        if self._depth and not self._circuit_open:
            # the hand-off of a loaded pool, inline (``_make_available`` without its call):
            # ``w`` takes the first queued call now, before any task switch
            self._counters.checkouts += 1
            if self._bus.subscribers:
                self._bus.emit("checkout", w.index, w.pid)
            self._dispatch(w, self._pop_waiter())
        else:
            self._make_available(w)

    def _keeps(self, w: Worker) -> bool:
        """False (and ``w`` is recycled) past ``max_requests`` or above ``max_memory``."""
        cfg = self.config
        if cfg.max_requests is not None and w.requests >= cfg.max_requests:
            self._recycle(w, RecycleReason.MAX_REQUESTS, None)
            return False
        return cfg.max_memory is None or self._memory_ok(w)

    def _memory_ok(self, w: Worker) -> bool:
        """False (and ``w`` is recycled) when its RSS is above ``max_memory``."""
        rss = self._rss(w)
        limit = self.config.max_memory
        if rss is not None and limit is not None and rss > limit:
            self._recycle(w, RecycleReason.MAX_MEMORY, rss)
            return False
        return True

    def _make_available(self, w: Worker) -> None:
        """Dispatch the first queued call to ``w``, else put it back in the idle set."""
        if w.state not in ("ready", "busy"):
            return
        if self._depth and not self._circuit_open:
            w.state = BUSY  # checked out (inline: the hot path of a loaded pool)
            self._counters.checkouts += 1
            if self._bus.subscribers:
                self._bus.emit("checkout", w.index, w.pid)
            self._dispatch(w, self._pop_waiter())  # (FIFO)
            return
        w.state = READY
        w.idle_since = self._clock()
        self._idle.append(w)

    def _fail_waiters(self, error: BaseException) -> None:
        waiters, self._waiters, self._depth = self._waiters, deque(), 0
        for call in waiters:
            if not (call.abandoned or call.done):
                call.error = error
                call.set()

    # -- what the pool calls, and what supervision calls (seams.py, Dispatch) ----------
    begin = _begin
    wait = _wait
    finish = _finish
    give_up = _give_up
    make_available = _make_available
    deliver = _deliver
    replies = _replies
    fail_waiters = _fail_waiters
    time_out = _time_out
    memory_ok = _memory_ok
    send = _send
