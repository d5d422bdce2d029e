"""A parent SIGKILLed while its pool runs on a local cluster leaves no Ray process behind; and
Ray's own messages (a worker killed, its log lines) stay off that parent's terminal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.own_cluster, pytest.mark.timeout(180)]

SCRIPT = textwrap.dedent("""
    import signal, sys, anyio, chaospool

    async def main():
        async with chaospool.Pool(worker="chaospool.workers.demo", size=2, backend="ray",
                                  ray={"address": "local", "nodes": 3},
                                  start_timeout=60) as pool:
            await pool.execute("ping")
            victim = pool.workers[0]
            victim.signal(signal.SIGKILL)
            await pool.wait_serving(0, not_pid=victim.pid, timeout=60)
            # Ray's "a worker died" message reaches the killed worker's log, not the terminal
            with anyio.fail_after(60):
                while not any("Worker PID: %d" % victim.pid in x for x in victim.log):
                    await anyio.sleep(0.05)
            print(" ".join(str(h.pid) for h in pool.workers), flush=True)
            print("RAY-LOG " + " | ".join(victim.log)[-300:], flush=True)
            await anyio.sleep(120)

    anyio.run(main)
""")
GONE_WITHIN = 20.0  # Ray's processes share the parent's fate through the kernel (and a reaper)


def test_no_actor_and_no_cluster_process_outlives_a_killed_parent(tmp_path: Path) -> None:
    from chaospool._ray.cluster import current

    assert current() is None, "this test must run before the session's shared cluster starts"
    err = tmp_path / "stderr"
    with err.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE,
                                stderr=stderr, text=True, env=dict(os.environ))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # bounded by the test's timeout
        actors = [int(pid) for pid in line.split()]
        assert len(actors) == 2, (line, err.read_text()[-3000:])
        assert proc.stdout.readline().startswith("RAY-LOG ")
        cluster = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in cluster)
        assert "gcs_server" in names
        assert "raylet" in names
        assert set(actors) <= {p.pid for p in cluster}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        _gone, alive = psutil.wait_procs(cluster, timeout=GONE_WITHIN)
        assert not alive, [(p.pid, p.cmdline()[:2]) for p in alive if p.is_running()]
        # nothing of Ray's on the terminal: no "(raylet) A worker died...", no INFO/WARNING
        assert proc.stdout.read() == ""
        assert err.read_text() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
        for p in psutil.Process(proc.pid).children(recursive=True) if psutil.pid_exists(
                proc.pid) else []:
            p.kill()
