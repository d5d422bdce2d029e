"""The checkout queue in seeded random mixes of calls, cancelled callers and checkout
timeouts, on every loop and on both local backends.

A caller who gives up leaves the queue in O(1): its call is marked and skipped when it
reaches the head (chaospool/_pool/requests.py). What must hold at every step: the count of
waiting calls equals the calls in the queue that still wait, the queue never hands a worker a
call whose caller left, and once the mix is over nothing waits and the pool serves again."""

from __future__ import annotations

import random
from typing import Any

import anyio
import pytest

from chaospool.errors import CheckoutTimeout, QueueFull, RequestTimeout
from chaospool.pool import Pool

pytestmark = [pytest.mark.integration, pytest.mark.anyio, pytest.mark.timeout(60)]

WORKER = "chaospool.workers.demo"


def _waiting(pool: Pool) -> int:
    """The calls in the queue whose callers still wait, counted one by one."""
    requests: Any = pool._requests
    return sum(1 for call in requests._waiters if not (call.abandoned or call.done))


async def _mix(pool: Pool, rng: random.Random, outcomes: dict[str, int]) -> None:
    """40 callers: each sleeps on a worker for 0-4 ms, some cancelled after a random while."""

    async def caller(duration: float, cancel_after: float | None) -> None:
        with anyio.CancelScope() as scope:
            if cancel_after is not None:
                scope.deadline = anyio.current_time() + cancel_after
            try:
                await pool.execute("sleep", {"duration": duration})
                outcomes["ok"] += 1
            except CheckoutTimeout:
                outcomes["checkout_timeout"] += 1
            except QueueFull:
                outcomes["queue_full"] += 1
        if scope.cancelled_caught:
            outcomes["cancelled"] += 1

    async with anyio.create_task_group() as tg:
        for _ in range(40):
            cancel_after = rng.choice((None, None, 0.0, rng.uniform(0, 0.02)))
            tg.start_soon(caller, rng.uniform(0, 0.004), cancel_after)
            if rng.random() < 0.3:
                await anyio.lowlevel.checkpoint()


async def _watch(pool: Pool, checks: list[tuple[int, int]], done: anyio.Event) -> None:
    """At every turn of the loop while the mix runs: the depth against a count of the queue."""
    while not done.is_set():
        checks.append((pool.stats().queue_depth, _waiting(pool)))
        await anyio.lowlevel.checkpoint()


@pytest.mark.parametrize("backend", ["memory", "process"])
@pytest.mark.parametrize("seed", range(4))
async def test_the_queue_keeps_count_through_cancellations_and_timeouts(
    backend: str, seed: int
) -> None:
    rng = random.Random(seed)
    outcomes = dict.fromkeys(("ok", "checkout_timeout", "queue_full", "cancelled"), 0)
    checks: list[tuple[int, int]] = []
    async with Pool(WORKER, size=2, backend=backend, health_check=False, max_queue=30,
                    checkout_timeout=rng.choice((0.005, 0.02, 5.0))) as pool:
        done = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_watch, pool, checks, done)
            for _ in range(3):
                await _mix(pool, rng, outcomes)
            done.set()
        assert sum(outcomes.values()) == 120
        assert checks
        assert [c for c in checks if c[0] != c[1]] == []
        assert pool.stats().queue_depth == _waiting(pool) == 0
        # the queue kept no caller who left, and the pool serves again
        assert [await pool.execute("ping") for _ in range(4)] == ["pong"] * 4
    assert outcomes["ok"] > 0


async def test_a_cancelled_herd_leaves_the_queue_without_keeping_its_calls() -> None:
    async with Pool(WORKER, size=1, backend="memory", health_check=False,
                    max_queue=20_000) as pool:
        async with anyio.create_task_group() as tg:
            tg.start_soon(pool.execute, "sleep", {"duration": 0.5})  # the worker, held
            for _ in range(5_000):
                tg.start_soon(pool.execute, "ping")
            await anyio.wait_all_tasks_blocked()
            # (most of the herd: trio runs a few before the sleep holds the worker)
            assert pool.stats().queue_depth == _waiting(pool) > 1_000
            tg.cancel_scope.cancel()
        requests: Any = pool._requests
        assert pool.stats().queue_depth == 0
        assert len(requests._waiters) <= 64  # dropped as they left, not kept until popped
        assert await pool.execute("ping") == "pong"


@pytest.mark.parametrize("seed", range(3))
async def test_a_call_handed_over_by_a_reply_keeps_its_deadline_and_its_turn(seed: int) -> None:
    # a loaded pool dispatches the next queued call from the reply callback itself
    # (``RequestPath._replies``): that call must get its own deadline (a hung one times out
    # and its worker is replaced) and the queue must stay FIFO around it. (0.3.0 failed this
    # on trio: a call queued when its caller began to wait had its deadline enforced only
    # when the checkout wait ended, 5 s later, and every call behind it timed out too.)
    rng = random.Random(seed)
    hung = rng.randrange(1, 7)
    async with Pool("pool_test_workers", size=1, health_check=False) as pool:
        order: list[int] = []
        errors: list[str] = []

        async def caller(i: int) -> None:
            try:
                if i == hung:
                    await pool.execute("hang", {"duration": 30.0}, timeout=0.5)
                else:
                    assert await pool.execute("echo", i, timeout=10) == i
                order.append(i)
            except RequestTimeout:
                errors.append(f"timeout {i}")

        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(caller, i)
                await anyio.wait_all_tasks_blocked()  # queued in this order
        assert errors == [f"timeout {hung}"]
        assert order == [i for i in range(8) if i != hung]
        assert pool.stats().timeouts == 1
        assert await pool.execute("echo", 42) == 42
