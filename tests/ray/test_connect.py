"""``address: HOST:PORT``: a pool in another process connects to an existing cluster (here
the session's, on 127.0.0.1) instead of starting one; it never shuts that cluster down."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SCRIPT = textwrap.dedent("""
    import json, signal, sys, anyio, chaospool

    async def main():
        async with chaospool.Pool(worker="chaospool.workers.demo", size=2, backend="ray",
                                  ray={"address": sys.argv[1]}, start_timeout=60) as pool:
            first = pool.workers[0]
            echoed = await pool.execute("echo", {"x": 1})
            first.signal(signal.SIGKILL)  # through the agent on the worker's node
            fresh = await pool.wait_serving(0, not_pid=first.pid, timeout=60)
            print(json.dumps({"echo": echoed, "nodes": [h.node for h in pool.workers],
                              "rss": first.rss(), "replaced": fresh.pid != first.pid}))

    anyio.run(main)
""")


def test_a_pool_connects_to_an_existing_cluster(ray_cluster: Any) -> None:
    address = ray_cluster.cluster.address
    assert address.startswith("127.0.0.1:")
    out = subprocess.run([sys.executable, "-c", SCRIPT, address], capture_output=True,
                         text=True, timeout=150, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    # Ray's own messages go to stdout too: the script's line is the one that starts the JSON
    [line] = [x for x in out.stdout.splitlines() if x.startswith('{"echo"')]
    result = json.loads(line)
    assert result["echo"] == {"x": 1}
    assert result["replaced"] is True
    assert 0 not in result["nodes"]  # the head is node 0 there too; workers go elsewhere
    assert result["rss"] is None  # not a cluster it started: its pids are not this host's
    assert ray_cluster.ray.is_initialized()  # the session's cluster is still up
