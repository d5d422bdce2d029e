"""The data the pool's parts share, and nothing else: no behaviour lives here.

``Pool`` (``core.py``) makes one ``PoolState`` and hands it to the request path
(``requests.py``) and the supervisor (``supervisor.py``); each reads the parts it needs. The
containers are shared by reference (the request path binds them to attributes of its own, so
its hot code reads ``self._idle`` with one lookup); the scalars that change after the pool opens
are read here by whoever needs them (see ``RequestPath``'s properties).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from chaospool._pool.backend import Backend
from chaospool._pool.config import PoolConfig
from chaospool._pool.events import Counters, EventBus
from chaospool._pool.flag import AnyioFlag, Flag
from chaospool._pool.handle import WorkerHandle
from chaospool._pool.sessions import Sessions
from chaospool._pool.worker import Worker

if TYPE_CHECKING:
    from anyio.abc import TaskGroup


class PoolState:
    """Slots, the idle set, sessions, counters, events, and the loop the pool
    runs on (set once by ``Pool.__aenter__``)."""

    def __init__(self, config: PoolConfig, backend: Backend) -> None:
        self.config = config
        self.backend = backend
        self.slots: list[Worker | None] = [None] * config.slots
        self.vacant = config.slots  # empty slots (set_slot): read per queued call
        # the last incarnation of each core slot, shown by ``pool.workers`` (state "dead")
        # while the slot is empty, so that ``pool.workers[i].index == i`` always holds
        self.last: list[Worker | None] = [None] * config.size
        self.handles: dict[int, WorkerHandle] = {}  # id(worker) -> its handle, while alive
        self.idle: deque[Worker] = deque()
        self.ids = itertools.count(1)
        # states, versions (drawn from the same ids), turns and affinity of every session
        self.sessions = Sessions(self.ids)
        self.counters = Counters()
        self.bus = EventBus()
        self.slot_watchers: list[anyio.Event] = []  # ``Pool.wait_serving``: woken on a start
        self.opened = False
        self.closed = False
        # the loop: set on open (asyncio: a loop whose timers the request path arms lazily)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.flag: Callable[[], Flag] = AnyioFlag
        self.clock: Callable[[], float] = anyio.current_time
        self.tg: TaskGroup | None = None

    def set_slot(self, index: int, w: Worker | None) -> None:
        """Put ``w`` in slot ``index`` (None: empty it); ``vacant`` follows. Why a count:
        ``None in slots`` compares every worker with None, per queued call."""
        self.slots[index] = w
        self.vacant = self.slots.count(None)
