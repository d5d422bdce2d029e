"""Deterministic test helpers: ``wait_for``, ``synchronize`` and ``monitor``.

``wait_for`` and ``synchronize`` work in sync and async code: called inside a running event loop
(asyncio or trio, through anyio) they return an awaitable; called from plain sync code they block
and return the result. ``monitor(pool)`` counts what a pool did during a block.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec

import sniffio

if TYPE_CHECKING:
    from chaospool.pool import Pool, PoolEvent, PoolStats

_P = ParamSpec("_P")

__all__ = (
    "PoolActivity", "assert_explores_ok", "assert_explores_ok_async", "monitor", "synchronize",
    "wait_for",
)


def _in_async_context() -> bool:
    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return False
    return True


def _describe(predicate: Callable[..., Any]) -> str:
    return getattr(predicate, "__qualname__", None) or repr(predicate)


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05) -> Any:
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


async def _wait_for_async(predicate: Callable[[], Any], limit: float, interval: float) -> Any:
    import anyio

    deadline = anyio.current_time() + limit
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if anyio.current_time() >= deadline:
            raise TimeoutError(f"wait_for: {_describe(predicate)} still false after {limit}s")
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


# Event kinds that mean a request failed or a worker misbehaved.
_ERROR_EVENTS = frozenset(
    {"crash", "timeout", "health_fail", "queue_full", "checkout_timeout", "circuit_open"}
)


@dataclass
class PoolActivity:
    """What a pool did while :func:`monitor` watched it; live during the block, final after it.

    ``checkouts``/``checkins``/``restarts``/``crashes``/``timeouts`` count the pool's events;
    ``errors`` is the growth of ``pool.stats().errors`` (requests the pool failed);
    ``error_events`` counts the error-like events (crash, timeout, health_fail, queue_full,
    checkout_timeout, circuit_open); ``max_queue_depth`` is the deepest the wait queue was seen;
    ``kinds`` counts every event by kind.
    """

    checkouts: int = 0
    checkins: int = 0
    errors: int = 0
    error_events: int = 0
    restarts: int = 0
    crashes: int = 0
    timeouts: int = 0
    max_queue_depth: int = 0
    kinds: Counter[str] = field(default_factory=Counter)

    def _on_event(self, event: PoolEvent, stats: PoolStats, start: PoolStats) -> None:
        kind = event.kind
        self.kinds[kind] += 1
        if kind == "checkout":
            self.checkouts += 1
        elif kind == "checkin":
            self.checkins += 1
        elif kind == "restart":
            self.restarts += 1
        elif kind == "crash":
            self.crashes += 1
        elif kind == "timeout":
            self.timeouts += 1
        if kind in _ERROR_EVENTS:
            self.error_events += 1
        self._sample(stats, start)

    def _sample(self, stats: PoolStats, start: PoolStats) -> None:
        self.errors = stats.errors - start.errors
        self.max_queue_depth = max(self.max_queue_depth, stats.queue_depth)
        # The pool's own high-water mark catches a peak between two events -- but only if it
        # rose during the block (before, it may stem from earlier traffic).
        if stats.max_queue_depth > start.max_queue_depth:
            self.max_queue_depth = max(self.max_queue_depth, stats.max_queue_depth)


@contextlib.asynccontextmanager
async def monitor(pool: Pool) -> AsyncIterator[PoolActivity]:
    """Count a pool's activity during the ``async with`` block (via ``pool.subscribe``).

    ::

        async with monitor(pool) as seen:
            await pool.execute("ping")
            await wait_for(lambda: seen.checkins == 1)
        assert seen.checkouts == 1 and seen.errors == 0
    """
    start = pool.stats()
    activity = PoolActivity(max_queue_depth=start.queue_depth)

    def on_event(event: PoolEvent) -> None:
        activity._on_event(event, pool.stats(), start)

    unsubscribe = pool.subscribe(on_event)
    try:
        yield activity
    finally:
        unsubscribe()
        activity._sample(pool.stats(), start)


async def assert_explores_ok_async(
    experiment: Any,
    *,
    seed: int | None = 0,
    budget: int = 5,
    shrink: bool = True,
    runs: int = 1,
    min_fails: int = 1,
    time_limit: float = 60.0,
    max_runs: int = 60,
) -> None:
    """Explore ``experiment`` (a path or a mapping with an ``explore:`` section, docs/explore.md)
    with a small ``budget``; if a schedule fails a tolerance, shrink it and fail with the
    minimal experiment's YAML in the AssertionError. ``seed`` fixes the schedules (None: the
    experiment's). Awaited in async tests; sync ones call :func:`assert_explores_ok`."""
    from chaospool._explore.session import ShrinkOptions, explore_source

    options = ShrinkOptions(runs, min_fails, time_limit, max_runs) if shrink else None
    finding = await explore_source(experiment, seed=seed, budget=budget, shrink_options=options)
    outcome = finding.explored.outcome
    if outcome is not None and outcome.status == "failed":
        raise AssertionError(f"explore: a run failed: {outcome.journal.get('error')}")
    if finding.explored.found is None:
        return
    raise AssertionError(_explore_failure(finding))


def _blocking(function: Callable[_P, Awaitable[None]], name: str) -> Callable[_P, None]:
    """The sync twin of ``function``: same parameters (one signature, kept typed), run in an
    event loop of its own; refused inside one, where the async twin is the one to await."""

    @functools.wraps(function)
    def blocking(*args: _P.args, **kwargs: _P.kwargs) -> None:
        import anyio

        if _in_async_context():
            raise RuntimeError(f"{name} starts its own event loop: in an async test use "
                               f"`await {function.__name__}(...)`")
        anyio.run(functools.partial(function, *args, **kwargs))

    blocking.__name__ = blocking.__qualname__ = name
    blocking.__doc__ = (f"Blocking :func:`{function.__name__}`, for sync tests (same "
                        f"parameters).\n\n{function.__doc__}")
    return blocking


assert_explores_ok = _blocking(assert_explores_ok_async, "assert_explores_ok")


def _explore_failure(finding: Any) -> str:
    from chaospool._explore.runner import tolerance_text

    found, outcome = finding.explored.found, finding.explored.outcome
    head = (f"explore: schedule {found.number} of seed {finding.explored.seed} failed "
            f"{tolerance_text(outcome.journal, outcome.failed[0])}")
    if finding.minimal_text is not None:
        return f"{head}\n\nminimal experiment (save it and `chaospool run` it):\n\n" \
               f"{finding.minimal_text}"
    return f"{head}\n\nfailing experiment:\n\n{finding.failing_text}"
