"""The pool's record of one worker incarnation, its in-flight calls and its partition."""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import anyio
import msgspec

from chaospool._pool.backend import SendsFrames, capable
from chaospool._pool.flag import AsyncioFlag, Flag
from chaospool._pool.kinds import ALIVE, STARTING, StopReason, WorkerState
from chaospool._wire import protocol as p

if TYPE_CHECKING:
    from chaospool._pool.backend import ExitStatus, Link

DIRECTIONS = ("both", "to_worker", "from_worker")
MODES = ("drop", "hold")


class Call:
    """One call: a command (queued, then dispatched to a worker) or a control op / ping.

    A command waits in the pool's FIFO queue (``worker`` None) until a worker is free; then it
    is *dispatched* -- registered in that worker's ``pending`` under a fresh request id and
    sent -- possibly from the reply callback of the previous call, before its caller wakes.
    A call on a session first waits for its session's turn (one call of a session at a time).

    The call is its own flag (``set`` / ``is_set`` / ``wait``): on asyncio, given no ``flag``,
    it is one object per call plus the future its caller awaits, made with it by the request
    path (0.1 made a Call, a flag object and a future: docs/design.md, "Performance"). Given a
    ``flag`` (trio, control ops) it defers to that.
    """

    __slots__ = (
        "abandoned",
        "command",
        "deadline",
        "done",
        "error",
        "flag",
        "frame",
        "fut",
        "has_turn",
        "msg",
        "queue_deadline",
        "raw",
        "rid",
        "session",
        "timed_out",
        "timeout",
        "timer",
        "version",
        "worker",
    )

    # Why not a ``msgspec.Struct`` (its defaults are filled in C): the interpreter cannot
    # specialise stores to a Struct's fields, and a call's later stores then cost more than
    # this ``__init__`` saves (measured with callgrind; docs/design.md, "Performance").
    def __init__(
        self,
        command: str | None,
        flag: Flag | None,
        raw: msgspec.Raw = p.NIL,
        session: str | None = None,
        timeout: float = 0.0,
        fut: asyncio.Future[bool] | None = None,
        rid: int = 0,
        frame: bytes | None = None,
    ) -> None:
        # what wakes its caller: the given flag, else (asyncio) ``fut``, made with the call
        self.flag = flag
        self.fut = fut
        self.done = False
        self.command = command  # None for a control op
        self.raw = raw
        self.session = session
        self.timeout = timeout
        self.worker: Worker | None = None
        self.rid = rid
        # a plain command's Request frame, encoded by its caller: dispatch only writes it
        self.frame = frame
        self.msg: p.Reply | p.Failure | None = None
        self.error: BaseException | None = None
        self.abandoned = False  # the caller gave up after dispatch: discard the reply
        self.timed_out = False
        self.deadline = 0.0  # request deadline, from dispatch
        self.queue_deadline = 0.0  # checkout deadline, while queued
        # sessions (chaospool/_pool/sessions.py): whether this call holds its session's turn,
        # the version of the state it was sent, and (asyncio) its deadline while in line
        self.has_turn = False
        self.version = 0
        self.timer: asyncio.TimerHandle | None = None

    @property
    def event(self) -> Flag | Call:
        """What to wait on and set: the given flag, else the call itself."""
        return self if self.flag is None else self.flag

    def set(self) -> None:
        """The call is over (answered, failed, timed out): wake its caller."""
        self.done = True
        if self.flag is not None:
            self.flag.set()
        fut = self.fut
        if fut is not None and not fut.done():
            fut.set_result(True)

    def is_set(self) -> bool:
        return self.done if self.flag is None else self.flag.is_set()

    def wait(self, timeout: float | None = None) -> Awaitable[bool]:
        """An awaitable: True once set; False if ``timeout`` seconds passed first. (The
        request path awaits ``fut`` itself; this is for any other wait.)"""
        if self.flag is None:
            # (asyncio: a call without a flag was made with its future) a full flag from now on
            assert self.fut is not None
            self.flag = AsyncioFlag(self.fut.get_loop())
            if self.done:
                self.flag.set()
        return self.flag.wait(timeout)


class Partition:
    """A partition of one worker's channel, at the pool-side seam.

    ``drop`` loses messages in the chosen direction(s); ``hold`` keeps them and delivers them
    after ``heal()``. A held reply whose caller gave up meanwhile is discarded (request ids make
    it impossible to hand it to anyone else) and counted in ``late_discarded``.
    """

    def __init__(self, direction: str, mode: str, heal: Callable[[Partition], Any]) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.direction = direction
        self.mode = mode
        self.to_worker = direction in ("both", "to_worker")
        self.from_worker = direction in ("both", "from_worker")
        self.active = True
        self.counts = {"dropped": 0, "held": 0, "delivered_late": 0, "late_discarded": 0}
        self.held_out: list[p.Message] = []
        self.held_in: list[p.Message] = []
        self._heal = heal

    def intercept(self, msg: p.Message, outgoing: bool) -> None:
        if self.mode == "drop":
            self.counts["dropped"] += 1
        else:
            self.counts["held"] += 1
            (self.held_out if outgoing else self.held_in).append(msg)

    async def heal(self) -> None:
        """End the partition; held messages are delivered now (in order, per direction)."""
        if self.active:
            self.active = False
            await self._heal(self)

    def __repr__(self) -> str:
        state = "active" if self.active else "healed"
        return f"<Partition {self.direction} {self.mode} {state} {self.counts}>"


class Worker:
    """One incarnation of a slot: its link, state and in-flight calls."""

    def __init__(self, index: int, overflow: bool) -> None:
        self.index = index
        self.overflow = overflow
        self.link: Link | None = None
        self.pid: int | None = None
        self.state: WorkerState = STARTING
        self.requests = 0
        self.pending: dict[int, Call] = {}
        self.sessions: set[str] = set()
        # session -> version of the state this worker holds (a mirror of its cache, LRU order)
        self.cached: OrderedDict[str, int] = OrderedDict()
        self.partition: Partition | None = None
        self.stop_reason: StopReason | None = None
        self.protocol_error: str | None = None
        self.exit: ExitStatus | None = None
        self.ping_id: int | None = None
        self.ping_sent = 0.0
        self.last_ping = time.monotonic()
        self.idle_since = time.monotonic()
        self.started = anyio.Event()
        self.scope = anyio.CancelScope()  # cancelled to abandon the start-up handshake
        self.done = anyio.Event()
        self.start_error: BaseException | None = None
        self.timer: asyncio.TimerHandle | None = None  # request deadline (asyncio fast path)
        self.timer_at = math.inf  # when ``timer`` fires (inf: not armed)
        self.send_frame: Callable[[bytes], object] | None = None  # the link's, if it has one

    def attach(self, link: Link) -> None:
        """This incarnation's link (once its process exists)."""
        self.link, self.pid = link, link.pid
        writes = capable(link, SendsFrames)
        self.send_frame = cast(SendsFrames, link).frame_writer() if writes else None

    @property
    def alive(self) -> bool:
        return self.state in ALIVE

    @property
    def node(self) -> int | None:
        """The cluster node the worker runs on (a Ray link's ``node``); None elsewhere."""
        return getattr(self.link, "node", None)

    def log_tail(self, lines: int = 10) -> list[str]:
        if self.link is None:
            return []
        return list(self.link.log)[-lines:]

    def describe(self) -> str:
        return f"worker {self.index} (pid {self.pid})"
