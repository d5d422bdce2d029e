"""A one-shot flag with a timed wait: the request path's only synchronisation primitive.

Why not ``anyio.Event`` + ``anyio.move_on_after``: each request waits twice (for a worker,
for the reply) and a cancel scope per wait costs more than the rest of the request path on
asyncio. On asyncio the flag is a bare future plus one ``call_later`` timer; on any other
backend (trio) it falls back to the anyio primitives. Cancellation behaves the same in both:
an enclosing anyio cancel scope interrupts ``wait``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import anyio
import sniffio


def _expire(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(False)


class AsyncioFlag:
    __slots__ = ("_fut", "_set")

    def __init__(self) -> None:
        self._set = False
        self._fut: asyncio.Future[bool] | None = None

    def set(self) -> None:
        if not self._set:
            self._set = True
            fut = self._fut
            if fut is not None and not fut.done():
                fut.set_result(True)

    def is_set(self) -> bool:
        return self._set

    async def wait(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109  reason: why this module exists
        """True once set; False if ``timeout`` seconds passed first."""
        if self._set:
            return True
        loop = asyncio.get_running_loop()
        fut = self._fut = loop.create_future()
        handle = None if timeout is None else loop.call_later(timeout, _expire, fut)
        try:
            await fut
        finally:
            if handle is not None:
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


def flag_factory() -> Callable[[], Flag]:
    """The flag type for the running event loop (call inside it)."""
    return AsyncioFlag if sniffio.current_async_library() == "asyncio" else AnyioFlag
