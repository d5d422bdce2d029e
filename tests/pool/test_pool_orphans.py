"""No orphans: a SIGKILLed parent leaves no worker alive -- busy, stopped or idle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from pool_procs import gone

from chaospool.testing import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

HELPER = """
import json, signal, sys
import anyio
from chaospool.pool import Pool

async def main():
    async with Pool("pool_test_workers", size=3, health_check=False) as pool:
        busy, stopped, idle = pool.workers
        grandchild = await pool.execute("spawn_child")
        async with anyio.create_task_group() as tg:
            tg.start_soon(pool.execute, "hang", {"duration": 60})
            while pool.stats().busy_workers == 0:
                await anyio.sleep(0.01)
            busy_pid = next(w.pid for w in pool.workers if w.state == "busy")
            stopped = next(w for w in pool.workers if w.state == "ready")
            stopped.signal(signal.SIGSTOP)
            while pool._backend._spare is None:  # the spare worker must die with us too
                await anyio.sleep(0.01)
            pids = {"workers": [w.pid for w in pool.workers], "busy": busy_pid,
                    "stopped": stopped.pid, "grandchild": grandchild,
                    "zygote": pool._backend._proc.pid, "spare": pool._backend._spare.pid}
            print(json.dumps(pids), flush=True)
            await anyio.sleep_forever()

anyio.run(main)
"""




def test_sigkilled_parent_leaves_no_worker_alive() -> None:
    here = Path(__file__).parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(here), *sys.path]))
    helper = subprocess.Popen([sys.executable, "-c", HELPER], stdout=subprocess.PIPE, env=env)
    try:
        assert helper.stdout is not None
        line = helper.stdout.readline()
        pids = json.loads(line)
        everyone = [*pids["workers"], pids["grandchild"], pids["zygote"], pids["spare"]]
        stopped = psutil.Process(pids["stopped"])
        wait_for(lambda: stopped.status() == psutil.STATUS_STOPPED)
        assert not any(gone(pid) for pid in everyone)
    finally:
        helper.send_signal(signal.SIGKILL)
        helper.wait()
        if helper.stdout is not None:
            helper.stdout.close()
    try:
        wait_for(lambda: all(gone(pid) for pid in everyone), timeout=10)
    except TimeoutError:
        alive = {pid: psutil.Process(pid).status() for pid in everyone if not gone(pid)}
        raise AssertionError(f"still alive: {alive} of {pids}") from None
