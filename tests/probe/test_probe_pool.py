"""The probe against the real ``chaospool.Pool``: the memory backend (in-process fake workers)
and, in one small test, real worker processes."""

from __future__ import annotations

import random
import signal
from collections import Counter
from typing import Any

import anyio
import pytest
from probe_fakes import Load, Mix, RealClock

from chaospool._probe import Probe, Recorder, summarize
from chaospool.testing import wait_for

pytestmark = [pytest.mark.anyio]

pool_module = pytest.importorskip("chaospool.pool")
Pool = pool_module.Pool
WORKER = "chaospool.workers.demo"
MIX = (Mix("ping", 2), Mix("echo", 2, {"x": [1, 2]}), Mix("list_programs", 1))


def assert_sums(s: dict[str, Any], rec: Recorder) -> None:
    m = s["metrics"]
    assert m["total"] == len(rec) == m["succeeded"] + m["errors"]
    assert sum(m["errors_by_kind"].values()) == m["errors"]
    assert sum(p["total"] for p in s["phases"].values()) == m["total"]
    assert sum(b["succeeded"] + b["errors"] for b in s["timeline"]) == m["total"]


@pytest.mark.unit
@pytest.mark.timeout(20)
async def test_probe_on_the_memory_pool_gets_every_reply_right() -> None:
    async with Pool(WORKER, size=3, backend="memory") as pool:
        probe = Probe(pool, Load(clients=6, sessions=4, mix=MIX), random.Random(5), RealClock())
        await probe.run(0.3)
        restarts = pool.stats().restarts
    rec = probe.recorder
    assert len(rec) > 0
    assert len(rec) == probe.launched
    assert rec.cancelled == 0
    assert Counter(o.kind for o in rec) == {"ok": len(rec)}
    s = summarize(rec, end=0.3, bucket=0.1, worker_restarts=restarts)
    assert s["metrics"]["success_rate"] == 1.0
    assert s["metrics"]["worker_restarts"] == 0
    assert_sums(s, rec)


@pytest.mark.unit
@pytest.mark.timeout(20)
async def test_a_killed_worker_is_retried_and_counts_as_recovered_on_the_memory_pool() -> None:
    async with Pool(WORKER, size=2, backend="memory") as pool:
        load = Load(clients=2, retries=2, mix=(Mix("sleep", 1, {"duration": 0.2}),))
        probe = Probe(pool, load, random.Random(1), RealClock())
        async with anyio.create_task_group() as tg:
            tg.start_soon(probe.run, 0.05)
            await wait_for(lambda: pool.stats().busy_workers == 2, timeout=5.0, interval=0.005)
            pool.workers[0].signal(signal.SIGKILL)  # one in-flight call loses its worker
        restarts = pool.stats().restarts
    outcomes = list(probe.recorder)
    assert len(outcomes) == probe.launched
    assert all(o.kind == "ok" for o in outcomes)
    assert sum(o.recovered for o in outcomes) >= 1
    s = summarize(probe.recorder, end=0.5, bucket=0.1, worker_restarts=restarts)
    assert s["metrics"]["recovered"] >= 1
    assert s["metrics"]["worker_restarts"] >= 1


@pytest.mark.unit
@pytest.mark.timeout(20)
async def test_without_retries_the_crash_is_the_operations_outcome() -> None:
    async with Pool(WORKER, size=2, backend="memory") as pool:
        load = Load(clients=2, retries=0, mix=(Mix("sleep", 1, {"duration": 0.2}),))
        probe = Probe(pool, load, random.Random(1), RealClock())
        async with anyio.create_task_group() as tg:
            tg.start_soon(probe.run, 0.05)
            await wait_for(lambda: pool.stats().busy_workers == 2, timeout=5.0, interval=0.005)
            pool.workers[1].signal(signal.SIGKILL)
    kinds = Counter(o.kind for o in probe.recorder)
    assert kinds["worker_crashed"] >= 1
    assert sum(kinds.values()) == probe.launched


@pytest.mark.unit
@pytest.mark.timeout(20)
async def test_open_loop_on_the_memory_pool() -> None:
    async with Pool(WORKER, size=2, backend="memory") as pool:
        probe = Probe(pool, Load(rate=400.0, mix=MIX), random.Random(3), RealClock())
        await probe.run(0.25)
    assert probe.info()["shed"] == 0
    # every slot due before stop_at was launched and answered
    assert len(probe.recorder) == probe.launched == 100
    assert Counter(o.kind for o in probe.recorder) == {"ok": 100}


@pytest.mark.integration
@pytest.mark.timeout(30)
async def test_probe_on_real_worker_processes_with_a_crash() -> None:
    async with Pool(WORKER, size=2, backend="process") as pool:
        load = Load(clients=4, sessions=3, retries=3, mix=(*MIX, Mix("sleep", 1, {"duration":
                                                                                0.05})))
        clock = RealClock()
        probe = Probe(pool, load, random.Random(9), clock)
        async with anyio.create_task_group() as tg:
            tg.start_soon(probe.run, 0.6)
            await wait_for(lambda: len(probe.recorder) >= 20, timeout=10.0, interval=0.01)
            victim = pool.workers[0]
            injected = clock()
            victim.signal(signal.SIGKILL)
            await pool.wait_serving(0, not_pid=victim.pid, timeout=10.0)
            reverted = clock()
        restarts = pool.stats().restarts
    rec = probe.recorder
    assert len(rec) == probe.launched
    kinds = Counter(o.kind for o in rec)
    assert set(kinds) <= {"ok", "worker_crashed"}
    assert kinds["ok"] > 0
    end = max(0.6, max(rec.ends))
    s = summarize(rec, end=end, bucket=0.1, worker_restarts=restarts,
                  faults=[("kill", injected, reverted)])
    assert s["metrics"]["worker_restarts"] >= 1
    assert s["metrics"]["errors_by_kind"]["wrong_reply"] == 0
    assert_sums(s, rec)
    assert any("kill" in b["faults_active"] for b in s["timeline"])
