"""Deterministic test helpers: the seed's ``wait_for`` and ``synchronize``, made real.

Both work in sync and async code: called inside a running event loop (asyncio or trio, through
anyio) they return an awaitable; called from plain sync code they block and return the result.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import sniffio

__all__ = ("synchronize", "wait_for")


def _in_async_context() -> bool:
    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return False
    return True


def _describe(predicate: Callable[..., Any]) -> str:
    return getattr(predicate, "__qualname__", None) or repr(predicate)


def wait_for(
    predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05
) -> Any:
    """Poll ``predicate`` until it returns a truthy value; return that value.

    Raises ``TimeoutError`` naming the predicate when ``timeout`` seconds pass first. In async
    code, ``await wait_for(...)``; the predicate may then be a coroutine function.
    """
    if _in_async_context():
        return _wait_for_async(predicate, timeout, interval)
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"wait_for: {_describe(predicate)} still false after {timeout}s")
        time.sleep(interval)


async def _wait_for_async(
    predicate: Callable[[], Any], timeout: float, interval: float
) -> Any:
    import anyio

    deadline = anyio.current_time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if anyio.current_time() >= deadline:
            raise TimeoutError(f"wait_for: {_describe(predicate)} still false after {timeout}s")
        await anyio.sleep(interval)


def synchronize(*callables: Callable[[], Any]) -> Any:
    """Start every callable at the same instant (behind a barrier); return their results in order.

    Sync code: each callable runs in its own thread. Async code (``await synchronize(...)``):
    each is a coroutine function run in one task group, released together once all are ready.
    An exception in any callable propagates.
    """
    if _in_async_context():
        return _synchronize_async(callables)
    barrier = threading.Barrier(len(callables))
    results: list[Any] = [None] * len(callables)
    errors: list[BaseException] = []

    def runner(i: int, fn: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = fn()
        except BaseException as exc:  # reason: re-raised in the caller's thread below
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(i, fn)) for i, fn in enumerate(callables)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


async def _synchronize_async(callables: tuple[Callable[[], Any], ...]) -> list[Any]:
    import anyio

    results: list[Any] = [None] * len(callables)
    ready = 0
    go = anyio.Event()

    async def runner(i: int, fn: Callable[[], Awaitable[Any]]) -> None:
        nonlocal ready
        ready += 1
        if ready == len(callables):
            go.set()
        await go.wait()
        results[i] = await fn()

    async with anyio.create_task_group() as tg:
        for i, fn in enumerate(callables):
            tg.start_soon(runner, i, fn)
    return results
