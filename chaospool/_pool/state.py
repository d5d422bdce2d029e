"""The pool's shared state, and the seams between its two halves.

``Pool`` is assembled from ``RequestPath`` (checkout queue, dispatch, replies, check-in) and
``Supervisor`` (incarnations, deaths, restarts, circuit, heartbeats). Both read and write the
state declared here; the stubs below are what each half calls of the other.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from chaospool._pool.backend import Backend
from chaospool._pool.config import PoolConfig
from chaospool._pool.events import Counters, EventBus
from chaospool._pool.flag import AnyioFlag, Flag
from chaospool._pool.handle import WorkerHandle
from chaospool._pool.sessions import Sessions
from chaospool._pool.worker import Call, Worker
from chaospool._wire import protocol as p

if TYPE_CHECKING:
    import psutil
    from anyio.abc import TaskGroup


class PoolState:
    def __init__(self, config: PoolConfig, backend: Backend) -> None:
        self.config = config
        self._backend = backend
        self._lifo = config.strategy == "lifo"
        self._slots: list[Worker | None] = [None] * config.slots
        # the last incarnation of each core slot, shown by ``pool.workers`` (state "dead")
        # while the slot is empty, so that ``pool.workers[i].index == i`` always holds
        self._last: list[Worker | None] = [None] * config.size
        self._handles: dict[int, WorkerHandle] = {}
        self._idle: deque[Worker] = deque()
        # the FIFO checkout queue; an OrderedDict so that a caller who gives up leaves it in
        # O(1) (deque.remove is O(n): a cancelled 100k-caller herd would be quadratic)
        self._waiters: OrderedDict[Call, None] = OrderedDict()
        self._ids = itertools.count(1)
        # states, versions (drawn from the same ids), turns and affinity of every session
        self._sessions = Sessions(self._ids)
        self._affinity = self._sessions.affinity
        self._counters = Counters()
        self._bus = EventBus()
        self._failures: deque[float] = deque()
        self._circuit_open = False
        self._circuit_opened_at = 0.0
        self._half_open = False
        self._starting = 0
        self._slot_watchers: list[anyio.Event] = []
        self._flag: Callable[[], Flag] = AnyioFlag
        self._clock: Callable[[], float] = anyio.current_time
        # asyncio only: deadlines are lazy loop timers (one for the queue, one per worker,
        # re-armed when they fire) instead of a timer per wait -- see RequestPath
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue_timer: asyncio.TimerHandle | None = None
        self._tg: TaskGroup | None = None
        self._opened = False
        self._closed = False
        self.commands: list[str] = []
        self.late_replies = 0

    # -- implemented by RequestPath -----------------------------------------------------
    def _make_available(self, w: Worker) -> None:
        raise NotImplementedError

    def _deliver(self, w: Worker, msg: p.Message) -> bool:
        raise NotImplementedError

    def _fail_waiters(self, error: BaseException) -> None:
        raise NotImplementedError

    def _time_out(self, call: Call) -> None:
        raise NotImplementedError

    def _memory_ok(self, w: Worker) -> bool:
        raise NotImplementedError

    async def _send(self, w: Worker, msg: p.Message) -> None:
        raise NotImplementedError

    # -- implemented by Supervisor ------------------------------------------------------
    def _kill(self, w: Worker, reason: str) -> None:
        raise NotImplementedError

    def _recycle(self, w: Worker, reason: str, rss: int | None) -> None:
        raise NotImplementedError

    def _grow(self) -> None:
        raise NotImplementedError

    def _circuit_message(self) -> str:
        raise NotImplementedError

    # -- implemented by Pool ------------------------------------------------------------
    def _psproc(self, w: Worker) -> psutil.Process | None:
        raise NotImplementedError

    def _handle(self, w: Worker) -> WorkerHandle:
        raise NotImplementedError
