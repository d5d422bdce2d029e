"""``address: HOST:PORT``: a pool in another process connects to an existing cluster (here
the session's, on 127.0.0.1) instead of starting one; it never shuts that cluster down, and a
node fault there adds no node (chaospool did not start that cluster)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from chaospool._ray import cluster as ray_cluster_mod

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

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

CRASH = textwrap.dedent("""
    import json, sys, chaospool

    report = chaospool.run({
        "version": 1, "seed": 3, "duration": "15s",  # recovery takes seconds when loaded
        "pool": {"worker": "chaospool.workers.demo", "size": 2, "backend": "ray",
                 "ray": {"address": sys.argv[1]}},
        "load": {"clients": 2, "retries": 3},
        "method": [{"fault": "node_crash", "at": "1s"}],  # a worker node drawn by seed
    })
    [fault] = report.to_dict()["faults"]
    print(json.dumps({"status": report.status, "fault": fault}))
""")


def _run(script: str, address: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", script, address], capture_output=True,
                         text=True, timeout=200, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    # Ray's own messages go to stdout too (a cluster chaospool did not start keeps Ray's
    # printing): the script's line is the one that holds the JSON
    [line] = [x for x in out.stdout.splitlines() if x.startswith("{")]
    result: dict[str, Any] = json.loads(line)
    return result


def test_a_pool_connects_to_an_existing_cluster(ray_cluster: Any) -> None:
    address = ray_cluster.cluster.address
    assert address.startswith("127.0.0.1:")
    result = _run(SCRIPT, address)
    assert result["echo"] == {"x": 1}
    assert result["replaced"] is True
    assert 0 not in result["nodes"]  # the head is node 0 there too; workers go elsewhere
    assert result["rss"] is None  # not a cluster it started: its pids are not this host's
    assert ray_cluster.ray.is_initialized()  # the session's cluster is still up
    assert len(ray_cluster.refresh()) == 3  # and none of its nodes was shut down


@pytest.mark.spends_node
def test_a_node_crash_on_a_cluster_it_did_not_start_adds_no_node(ray_cluster: Any) -> None:
    """The crash is real (the node's agent kills its raylet tree) and the pool recovers on the
    other node; the node join of the revert is refused with its reason, the cluster stays."""
    before = {n.node_id for n in ray_cluster.refresh()}
    try:
        result = _run(CRASH, ray_cluster.cluster.address)
        effect = result["fault"]["effect"]
        assert result["fault"]["error"] is None, result["fault"]
        assert not effect.get("revert_cut_short"), effect
        assert effect["replacement_node"] is None
        assert "did not start the cluster" in effect["replacement_reason"]
        assert effect["declared_dead_after"] is not None
        assert [r["outcome"] for r in effect["replaced"]] == ["replaced"] * len(effect["workers"])
        assert effect["node"] != 0  # never the head
        assert all(r["serving_node"] != effect["node"] for r in effect["replaced"])
        alive = {n.node_id for n in ray_cluster.refresh()}
        assert alive == before - {effect["node_id"]}  # nothing added, nothing else shut down
        assert len(alive) == 2
    finally:
        _restore(ray_cluster, before)


def _restore(session: Any, before: set[str]) -> None:
    """The session's cluster gets its third node back (and reaps the one crashed here)."""
    def restore() -> None:
        session.refresh()
        for info in list(session.nodes.values()):
            if info.node_id in before and not info.alive and info.node is not None:
                session.remove_node(info)
        session.ensure_nodes(3)

    ray_cluster_mod.on_ray_thread(restore).result(timeout=120)
