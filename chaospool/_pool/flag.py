"""A one-shot flag with a timed wait: the request path's only synchronisation primitive.

A request's ``Call`` (``worker.py``) is its own flag on asyncio (one object per call plus the
future its caller awaits); these classes serve trio, control ops, and a Call's rare timed or
repeated wait.

Why not ``anyio.Event`` + ``anyio.move_on_after``: each request waits twice (for a worker,
for the reply) and a cancel scope per wait costs more than the rest of the request path on
asyncio. On asyncio the flag is a bare future (plus a ``call_later`` timer for a timed wait);
on any other backend (trio) it falls back to the anyio primitives. Cancellation behaves the
same in both:
an enclosing anyio cancel scope interrupts ``wait``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

import anyio
import sniffio


def _expire(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(False)


class AsyncioFlag:
    """The asyncio flag. ``wait()`` without a timeout returns the bare future: the caller awaits
    it directly, with no coroutine frame of ours in between (the request path's hot spot).
    The loop is given, not looked up: ``asyncio.get_running_loop()`` costs a ``getpid``
    syscall per call (docs/design.md, "Performance")."""

    __slots__ = ("_fut", "_loop", "_set")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._set = False
        self._fut: asyncio.Future[bool] = loop.create_future()

    def set(self) -> None:
        if not self._set:
            self._set = True
            if not self._fut.done():
                self._fut.set_result(True)

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> Awaitable[bool]:
        """An awaitable: True once set; False if ``timeout`` seconds passed first."""
        if timeout is not None:
            return self._wait_for(timeout)
        fut = self._fut
        return fut if not fut.done() else self._future()

    def _future(self) -> asyncio.Future[bool]:
        """The future to wait on: a new one if the last wait was cancelled or timed out."""
        fut = self._fut
        if fut.done() and (fut.cancelled() or not fut.result()):
            fut = self._fut = self._loop.create_future()
            if self._set:
                fut.set_result(True)
        return fut

    async def _wait_for(self, timeout: float) -> bool:  # noqa: ASYNC109  reason: as above
        fut = self._future()
        if fut.done():
            return self._set
        handle = self._loop.call_later(timeout, _expire, fut)
        try:
            await fut
        finally:
            handle.cancel()
        return self._set


class AnyioFlag:
    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = anyio.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109  reason: as above
        with anyio.move_on_after(timeout):
            await self._event.wait()
        return self._event.is_set()


Flag = AsyncioFlag | AnyioFlag


def asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio loop (any implementation: uvloop too), None on another library."""
    return asyncio.get_running_loop() if sniffio.current_async_library() == "asyncio" else None


def flag_factory(loop: asyncio.AbstractEventLoop | None) -> Callable[[], Flag]:
    """The flag maker for ``loop`` (None: not asyncio)."""
    return AnyioFlag if loop is None else functools.partial(AsyncioFlag, loop)
