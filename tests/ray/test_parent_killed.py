"""A parent SIGKILLed while its pool runs on a local cluster leaves no Ray process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.own_cluster, pytest.mark.timeout(180)]

SCRIPT = textwrap.dedent("""
    import sys, anyio, chaospool

    async def main():
        async with chaospool.Pool(worker="chaospool.workers.demo", size=2, backend="ray",
                                  ray={"address": "local", "nodes": 3},
                                  start_timeout=60) as pool:
            await pool.execute("ping")
            print(" ".join(str(h.pid) for h in pool.workers), flush=True)
            await anyio.sleep(120)

    anyio.run(main)
""")
GONE_WITHIN = 20.0  # Ray's processes share the parent's fate through the kernel (and a reaper)


def test_no_actor_and_no_cluster_process_outlives_a_killed_parent() -> None:
    from chaospool._ray.cluster import current

    assert current() is None, "this test must run before the session's shared cluster starts"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=dict(os.environ))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # bounded by the test's timeout
        actors = [int(pid) for pid in line.split()]
        assert len(actors) == 2, line
        cluster = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in cluster)
        assert "gcs_server" in names
        assert "raylet" in names
        assert set(actors) <= {p.pid for p in cluster}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        _gone, alive = psutil.wait_procs(cluster, timeout=GONE_WITHIN)
        assert not alive, [(p.pid, p.cmdline()[:2]) for p in alive if p.is_running()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
        for p in psutil.Process(proc.pid).children(recursive=True) if psutil.pid_exists(
                proc.pid) else []:
            p.kill()
