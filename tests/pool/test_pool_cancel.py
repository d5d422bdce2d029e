"""A cancelled caller still gets every worker reaped (the pool's own tasks are shielded)."""

from __future__ import annotations

import signal

import anyio
import psutil
import pytest

from chaospool import Pool

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.mark.timeout(30)
async def test_cancelling_the_callers_scope_reaps_every_worker() -> None:
    pids: list[int] = []
    started = anyio.Event()
    with anyio.CancelScope() as scope:
        async with Pool(worker="chaospool.workers.demo", size=2, request_timeout=60) as pool:
            pids = [w.pid for w in pool.workers if w.pid is not None]

            async def busy() -> None:
                started.set()
                await pool.execute("sleep", {"duration": 30})

            async with anyio.create_task_group() as tg:
                tg.start_soon(busy)
                await started.wait()
                scope.cancel()  # e.g. an aborted run or a timeout around the pool
    assert scope.cancelled_caught
    assert len(pids) == 2
    assert not [pid for pid in pids if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


@pytest.mark.timeout(30)
async def test_workers_index_matches_the_slot_while_a_slot_restarts() -> None:
    from chaospool.testing import wait_for

    async with Pool(worker="chaospool.workers.demo", size=3) as pool:
        old = pool.workers[1].pid
        assert old is not None
        pool.workers[1].signal(signal.SIGKILL)
        # at every instant the list is ordered by slot: slot 1 shows its dead incarnation
        # until the replacement serves, never slot 2's worker
        def replaced() -> bool:
            handles = pool.workers
            assert [h.index for h in handles] == [0, 1, 2]
            return handles[1].pid != old and handles[1].state in ("ready", "busy")

        await wait_for(replaced, timeout=10, interval=0.001)
        assert await pool.execute("ping") == "pong"
