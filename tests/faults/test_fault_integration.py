"""Each built-in fault on a real pool of ``chaospool.workers.demo`` subprocesses: the effect is
observed from outside (psutil, a caller's error, the partition's counts) and so is the revert.
The effect dict of each run is printed (``pytest -s``) as the evidence a real run records."""

from __future__ import annotations

import json
import random
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import psutil
import pytest

from chaospool import CheckoutTimeout, Pool, RequestTimeout
from chaospool._faults import (
    MemoryLeak,
    NetworkPartition,
    PortCrash,
    ResourceExhaustion,
    SlowWorker,
    ThunderingHerd,
    Timeout,
)
from chaospool.fault import Fault, FaultContext
from chaospool.pool import WorkerHandle
from chaospool.testing import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.anyio, pytest.mark.timeout(30)]

DEMO = "chaospool.workers.demo"
MB = 1_000_000


@asynccontextmanager
async def demo_pool(size: int = 2, **kw: Any) -> AsyncIterator[Pool]:
    kw.setdefault("health_check", {"interval": 0})  # no heartbeats unless a test wants them
    async with Pool(worker=DEMO, size=size, **kw) as pool:
        yield pool


def ctx_for(fault: type[Fault], pool: Pool, targets: list[WorkerHandle],
            duration: float | None = None, **params: Any) -> FaultContext:
    params_obj = fault.Params(**params)
    if duration is None:
        duration = getattr(params_obj, "duration", None)
    return FaultContext(params=params_obj, targets=targets, pool=pool,
                        rng=random.Random(1), duration=duration)


def evidence(ctx: FaultContext) -> dict[str, Any]:
    """The effect as the journal would hold it (JSON round trip); printed for the record."""
    effect: dict[str, Any] = json.loads(json.dumps(ctx.effect))
    print(json.dumps(effect, sort_keys=True))
    # once proved (at revert, or at the end of a pool-level inject), a real fault took effect
    assert effect.get("took_effect", True) is True, effect.get("took_effect_reason")
    return effect


def status(pid: int) -> str | None:
    try:
        return psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return None


def gone(pid: int) -> bool:
    return status(pid) in (None, psutil.STATUS_ZOMBIE)


# --- port_crash --------------------------------------------------------------------------------


async def test_port_crash_kills_the_process_and_the_slot_serves_again() -> None:
    async with demo_pool(size=3) as pool:
        victim = pool.workers[1]
        old_pid = victim.pid
        ctx = ctx_for(PortCrash, pool, [victim])
        fault = PortCrash()
        await fault.inject(ctx)
        await wait_for(lambda: gone(old_pid), timeout=5)
        await fault.revert(ctx)
        fresh = pool.workers[1]
        assert fresh.pid != old_pid
        assert fresh.state in ("ready", "busy")
        assert status(fresh.pid) not in (None, psutil.STATUS_ZOMBIE)
        assert await pool.execute("ping") == "pong"
        effect = evidence(ctx)
        (replaced,) = effect["replaced"]
        assert replaced["pid"] == old_pid
        assert replaced["replacement_pid"] == fresh.pid
        assert replaced["exit_signal"] == signal.SIGKILL
        assert replaced["time_to_replacement"] > 0


async def test_port_crash_close_mode_breaks_the_link() -> None:
    async with demo_pool(size=2) as pool:
        victim = pool.workers[0]
        old_pid = victim.pid
        ctx = ctx_for(PortCrash, pool, [victim], mode="close")
        await PortCrash().inject(ctx)
        await PortCrash().revert(ctx)
        await wait_for(lambda: gone(old_pid), timeout=5)
        assert pool.workers[0].pid != old_pid
        assert evidence(ctx)["replaced"][0]["replacement_pid"] == pool.workers[0].pid
        assert await pool.execute("ping") == "pong"


# --- timeout -----------------------------------------------------------------------------------


async def test_timeout_stop_freezes_the_process_and_a_caller_times_out() -> None:
    async with demo_pool(size=1, request_timeout=0.3) as pool:
        victim = pool.workers[0]
        pid = victim.pid
        ctx = ctx_for(Timeout, pool, [victim], duration=2.0)
        fault = Timeout()
        await fault.inject(ctx)
        assert status(pid) == psutil.STATUS_STOPPED
        with pytest.raises(RequestTimeout):
            await pool.execute("ping")
        await fault.revert(ctx)
        effect = evidence(ctx)
        assert effect["status_seen"] == {"0": "stopped"}
        assert effect["requests_timed_out"] >= 1
        # the pool killed the silent worker (never reused after a timeout): nothing left stopped
        await wait_for(lambda: gone(pid), timeout=5)
        assert await pool.execute("ping") == "pong"


async def test_timeout_stop_revert_resumes_the_same_process() -> None:
    async with demo_pool(size=2) as pool:
        victim = pool.workers[0]
        ctx = ctx_for(Timeout, pool, [victim], duration=1.0)
        await Timeout().inject(ctx)
        assert status(victim.pid) == psutil.STATUS_STOPPED
        await Timeout().revert(ctx)
        assert status(victim.pid) not in (psutil.STATUS_STOPPED, None)
        assert evidence(ctx)["resumed"][0]["resumed"] is True
        assert pool.workers[0].pid == victim.pid


async def test_timeout_block_answers_nothing_while_the_process_runs() -> None:
    async with demo_pool(size=1, request_timeout=0.3) as pool:
        victim = pool.workers[0]
        ctx = ctx_for(Timeout, pool, [victim], duration=3.0, how="block")
        await Timeout().inject(ctx)
        with pytest.raises(RequestTimeout):
            await pool.execute("ping")
        await Timeout().revert(ctx)
        effect = evidence(ctx)
        assert effect["status_seen"]["0"] != "stopped"  # running, just silent
        assert effect["requests_timed_out"] >= 1
        assert await pool.execute("ping") == "pong"


async def test_timeout_block_revert_releases_the_held_reply_from_the_same_process() -> None:
    async with demo_pool(size=1, request_timeout=10.0) as pool:
        victim = pool.workers[0]
        ctx = ctx_for(Timeout, pool, [victim], duration=10.0, how="block")
        await Timeout().inject(ctx)
        replies: list[Any] = []

        async def caller() -> None:
            replies.append(await pool.execute("echo", {"token": "held"}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(caller)
            await wait_for(lambda: pool.stats().busy_workers == 1, timeout=5)
            assert replies == []
            await Timeout().revert(ctx)
        assert replies == [{"token": "held"}]
        assert pool.workers[0].pid == victim.pid
        assert evidence(ctx)["resumed"][0]["resumed"] is True


# --- network_partition -------------------------------------------------------------------------


async def test_partition_hold_delivers_a_held_reply_late_to_its_own_caller() -> None:
    async with demo_pool(size=1, request_timeout=10.0) as pool:
        victim = pool.workers[0]
        ctx = ctx_for(NetworkPartition, pool, [victim], direction="from_worker", mode="hold")
        fault = NetworkPartition()
        await fault.inject(ctx)
        partition = ctx.actions.done[0].memo
        reply: list[Any] = []

        async def caller() -> None:
            reply.append(await pool.execute("echo", {"token": "first"}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(caller)
            await wait_for(lambda: partition.counts["held"] >= 1, timeout=5)
            assert reply == []  # held: the caller is still waiting
            await fault.revert(ctx)
        assert reply == [{"token": "first"}]
        effect = evidence(ctx)
        assert effect["totals"]["held"] >= 1
        assert effect["totals"]["delivered_late"] >= 1
        assert await pool.execute("echo", {"token": "second"}) == {"token": "second"}


async def test_partition_drop_makes_the_caller_time_out_and_heals() -> None:
    async with demo_pool(size=1, request_timeout=0.3) as pool:
        victim = pool.workers[0]
        ctx = ctx_for(NetworkPartition, pool, [victim], direction="to_worker", mode="drop")
        await NetworkPartition().inject(ctx)
        with pytest.raises(RequestTimeout):
            await pool.execute("echo", {"token": "lost"})
        await NetworkPartition().revert(ctx)
        effect = evidence(ctx)
        assert effect["totals"]["dropped"] >= 1
        assert await pool.execute("echo", {"token": "after"}) == {"token": "after"}


async def test_partition_hold_a_late_reply_never_reaches_the_wrong_caller() -> None:
    async with demo_pool(size=1, request_timeout=0.3) as pool:
        victim = pool.workers[0]
        ctx = ctx_for(NetworkPartition, pool, [victim], direction="from_worker", mode="hold")
        await NetworkPartition().inject(ctx)
        with pytest.raises(RequestTimeout):
            await pool.execute("echo", {"token": "stale"})
        await NetworkPartition().revert(ctx)
        assert await pool.execute("echo", {"token": "fresh"}) == {"token": "fresh"}
        effect = evidence(ctx)
        totals = effect["totals"]
        assert totals["held"] >= 1
        assert totals["delivered_late"] + totals["late_discarded"] <= totals["held"]


# --- resource_exhaustion -----------------------------------------------------------------------


async def test_capacity_exhaustion_makes_extra_callers_fail_then_frees() -> None:
    async with demo_pool(size=2, max_overflow=1, checkout_timeout=0.2) as pool:
        ctx = ctx_for(ResourceExhaustion, pool, [], duration=1.5)
        refused: list[BaseException] = []

        async def extra_caller() -> None:
            await wait_for(lambda: pool.stats().busy_workers >= 3, timeout=5)
            try:
                await pool.execute("ping")
            except CheckoutTimeout as exc:
                refused.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(extra_caller)
            await ResourceExhaustion().inject(ctx)
        await ResourceExhaustion().revert(ctx)
        assert len(refused) == 1
        effect = evidence(ctx)
        assert effect["slots_held"] == 3
        assert effect["max_busy_workers"] == 3
        assert effect["others_refused"]["checkout_timeout"] >= 1
        assert await pool.execute("ping") == "pong"


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def test_cpu_exhaustion_burns_cpu_in_the_worker_until_reverted() -> None:
    async with demo_pool(size=1) as pool:
        victim = pool.workers[0]
        threads_before = (await victim.control("info"))["threads"]
        start = cpu_seconds(victim.pid)
        ctx = ctx_for(ResourceExhaustion, pool, [victim], duration=10.0, resource="cpu",
                      amount=1)
        await ResourceExhaustion().inject(ctx)
        await wait_for(lambda: cpu_seconds(victim.pid) - start >= 0.3, timeout=10)
        await ResourceExhaustion().revert(ctx)
        assert (await victim.control("info"))["threads"] == threads_before  # loops stopped
        effect = evidence(ctx)
        assert effect["targets"][0]["cpu_seconds"] >= 0.3


async def test_memory_exhaustion_grows_rss_until_reverted() -> None:
    async with demo_pool(size=1) as pool:
        victim = pool.workers[0]
        before = psutil.Process(victim.pid).memory_info().rss
        ctx = ctx_for(ResourceExhaustion, pool, [victim], resource="memory", amount=64 * MB)
        await ResourceExhaustion().inject(ctx)
        assert psutil.Process(victim.pid).memory_info().rss - before >= 50 * MB
        await ResourceExhaustion().revert(ctx)
        await wait_for(
            lambda: psutil.Process(victim.pid).memory_info().rss - before < 20 * MB, timeout=5
        )
        (target,) = evidence(ctx)["targets"]
        assert target["freed"] >= 64 * MB


async def test_fd_exhaustion_opens_all_but_sixteen_then_closes_them() -> None:
    async with demo_pool(size=1) as pool:
        victim = pool.workers[0]
        proc = psutil.Process(victim.pid)
        before = proc.num_fds()
        soft = proc.rlimit(psutil.RLIMIT_NOFILE)[0]
        ctx = ctx_for(ResourceExhaustion, pool, [victim], resource="fds")
        await ResourceExhaustion().inject(ctx)
        assert proc.num_fds() == soft - 16
        await ResourceExhaustion().revert(ctx)
        assert proc.num_fds() == before
        (target,) = evidence(ctx)["targets"]
        assert target["closed"] == soft - 16 - before


# --- thundering_herd ---------------------------------------------------------------------------


async def test_thundering_herd_counts_add_up_and_the_queue_overflows() -> None:
    async with demo_pool(size=2, max_queue=50, checkout_timeout=5.0) as pool:
        ctx = ctx_for(ThunderingHerd, pool, [], requests=400)
        await ThunderingHerd().inject(ctx)
        await ThunderingHerd().revert(ctx)
        effect = evidence(ctx)
        assert effect["requests"] == 400
        assert effect["succeeded"] + sum(effect["errors_by_kind"].values()) == 400
        assert effect["errors_by_kind"].get("queue_full", 0) > 0  # 400 at once, 50 may wait
        assert effect["succeeded"] >= 50
        assert effect["max_queue_depth"] >= 1
        assert effect["p99_latency"] > 0
        assert await pool.execute("ping") == "pong"


# --- slow_worker -------------------------------------------------------------------------------


async def test_slow_worker_adds_latency_to_its_replies_only() -> None:
    async with demo_pool(size=2, strategy="fifo") as pool:
        slow = pool.workers[0]
        ctx = ctx_for(SlowWorker, pool, [slow], latency=0.2)
        await SlowWorker().inject(ctx)
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(pool.execute, "ping")
        await SlowWorker().revert(ctx)
        effect = evidence(ctx)
        assert effect["requests_on_slowed"] >= 1
        assert effect["service_time_slowed"] >= 0.2  # the delay is a lower bound
        assert effect["added_latency"] > 0.1
        assert effect["restored"][0]["restored"] is True
        # reverted: the same process answers without the delay (a ping takes ~1 ms; the
        # margin to the 200 ms latency is far beyond this machine's timing noise)
        assert pool.workers[0].pid == slow.pid
        before = anyio.current_time()
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(pool.execute, "ping")
        assert anyio.current_time() - before < 0.2


# --- memory_leak -------------------------------------------------------------------------------


async def test_memory_leak_grows_rss_at_a_rate_and_is_released() -> None:
    async with demo_pool(size=1) as pool:
        victim = pool.workers[0]
        proc = psutil.Process(victim.pid)
        start = proc.memory_info().rss
        threads = (await victim.control("info"))["threads"]
        ctx = ctx_for(MemoryLeak, pool, [victim], rate=200 * MB, limit=80 * MB, duration=5.0)
        await MemoryLeak().inject(ctx)
        # grown from what the fault measured at inject (the control op above may have grown
        # the worker a little after ``start``): its evidence then shows the same growth
        (leaking,) = evidence(ctx)["leaking"]
        await wait_for(lambda: proc.memory_info().rss - leaking["rss_start"] >= 70 * MB, timeout=5)
        await MemoryLeak().revert(ctx)
        await wait_for(lambda: proc.memory_info().rss - start < 20 * MB, timeout=5)
        assert (await victim.control("info"))["threads"] == threads  # the leak thread ended
        (leak,) = evidence(ctx)["leaks"]
        assert leak["rss_peak"] - leak["rss_start"] >= 70 * MB
        assert leak["leaked"] >= 70 * MB  # what it had allocated when reverted
        assert leak["recycled"] is None


async def test_memory_leak_ends_when_max_memory_recycles_the_worker() -> None:
    async with demo_pool(size=1, max_memory=150 * MB) as pool:
        victim = pool.workers[0]
        ctx = ctx_for(MemoryLeak, pool, [victim], rate=400 * MB, limit=300 * MB, duration=5.0)
        await MemoryLeak().inject(ctx)
        await wait_for(lambda: (victim.rss() or 0) > 150 * MB, timeout=5)

        async def recycled() -> bool:
            await pool.execute("ping")  # the pool checks RSS between requests
            return pool.workers[0].pid != victim.pid

        await wait_for(recycled, timeout=10)
        await MemoryLeak().revert(ctx)
        (leak,) = evidence(ctx)["leaks"]
        assert leak["recycled"]["reason"] == "max_memory"
        assert leak["rss_peak"] > 150 * MB
        await wait_for(lambda: gone(victim.pid), timeout=5)


async def test_a_cancelled_inject_is_fully_reverted() -> None:
    """Cancelled at whatever await it reached (as on SIGINT), then reverted shielded as the
    engine does: no worker is left stopped, and every slot still serves."""
    async with demo_pool(size=3) as pool:
        victims = pool.workers
        ctx = ctx_for(Timeout, pool, victims, duration=5.0)
        with anyio.CancelScope() as scope:
            scope.cancel()
            await Timeout().inject(ctx)
        assert ctx.actions.done  # it got as far as stopping at least one worker
        with anyio.CancelScope(shield=True):
            await Timeout().revert(ctx)
        assert all(status(v.pid) not in (psutil.STATUS_STOPPED, None) for v in victims)
        assert [h.pid for h in pool.workers] == [v.pid for v in victims]
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(pool.execute, "ping")
