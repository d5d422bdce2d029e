"""A cancelled caller still gets every worker reaped (the pool's own tasks are shielded)."""

from __future__ import annotations

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
