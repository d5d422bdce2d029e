"""Every built-in fault against the local 3-node cluster, with the process backend's
bookkeeping identities; node faults with their evidence; the cascade on Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ray_helpers import RAY, assert_adds_up

import chaospool

pytestmark = [pytest.mark.chaos, pytest.mark.anyio, pytest.mark.timeout(240)]

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
WORKER_FAULTS = [
    {"fault": "port_crash", "at": "0.5s"},
    {"fault": "port_crash", "at": "1s", "mode": "close", "target": {"worker": 1}},
    {"fault": "timeout", "at": "1.5s", "duration": "1s", "target": {"worker": 2}},
    {"fault": "timeout", "at": "1.5s", "duration": "1s", "how": "block", "target": {"worker": 3}},
    {"fault": "network_partition", "at": "3s", "duration": "500ms", "mode": "hold"},
    {"fault": "slow_worker", "at": "3s", "duration": "1s", "latency": "50ms"},
    {"fault": "memory_leak", "at": "4s", "duration": "1s", "rate": "40MB/s", "limit": "40MB"},
    {"fault": "resource_exhaustion", "at": "5s", "duration": "1s", "resource": "cpu"},
    # capacity on Ray: long enough that the actors' call latency under load (the first sleep
    # calls reach their actors late) still leaves most of the window held (its own proof)
    {"fault": "resource_exhaustion", "at": "5s", "duration": "1.5s"},
    {"fault": "resource_exhaustion", "at": "6s", "duration": "500ms", "resource": "fds"},
    {"fault": "resource_exhaustion", "at": "6s", "duration": "500ms", "resource": "memory",
     "amount": "20MB"},
    {"fault": "thundering_herd", "at": "6.5s", "requests": 200},
]


def experiment(method: list[dict[str, Any]], duration: str, **pool: Any) -> dict[str, Any]:
    return {
        "version": 1, "seed": 11, "duration": duration,
        "pool": {"worker": "chaospool.workers.demo", "size": 4, "request_timeout": "2s",
                 "checkout_timeout": "3s", "backend": "ray", "ray": dict(RAY), **pool},
        "load": {"clients": 6, "think": "5ms", "retries": 3, "sessions": 10,
                 "mix": [{"command": "echo", "weight": 3, "args": {"t": 1}},
                         {"command": "create_program", "weight": 1,
                          "args": {"signature": {"inputs": ["q"]}}}]},
        "method": method,
    }


async def test_every_worker_fault_runs_on_the_cluster_and_adds_up(ray_cluster: Any) -> None:
    # 10 s, not 8: a worker stopped at 1.5 s is killed at its request timeout (~3.5 s) and
    # its actor replaced; under CI load an actor start took over 4 s, and resource_exhaustion
    # (at 5 s) waits for its slot only until the run ends
    report = await chaospool.run_async(experiment(WORKER_FAULTS, "10s"))
    journal = report.to_dict()
    assert journal["status"] == "completed", (
        journal.get("error"), [(f["name"], f["error"]) for f in journal["faults"] if f["error"]])
    assert_adds_up(journal)
    assert {f["fault"] for f in journal["faults"]} == {s["fault"] for s in WORKER_FAULTS}
    assert journal["metrics"]["total"] > 100
    assert journal["metrics"]["worker_restarts"] >= 2  # the kill and the closed channel
    by_name = {f["name"]: f["effect"] for f in journal["faults"]}
    assert all(r["replacement_pid"] for r in by_name["port_crash#1"]["replaced"])
    assert by_name["timeout#1"]["status_seen"] == {"2": "stopped"}  # SIGSTOP via the agent


async def test_a_node_target_acts_on_every_worker_of_that_node(ray_cluster: Any) -> None:
    method = [{"fault": "port_crash", "at": "1s", "target": {"node": 2}}]
    report = await chaospool.run_async(experiment(method, "3s"))
    journal = report.to_dict()
    assert_adds_up(journal)
    [fault] = journal["faults"]
    assert len(fault["targets"]) == 2  # spread: two of the four workers run on node 2
    assert {k["index"] for k in fault["effect"]["killed"]} == {t["index"] for t in fault["targets"]}


async def test_the_cascade_on_ray_with_a_node_crash(ray_cluster: Any) -> None:
    # 5 s more than the file's 15 s: on a loaded 2-core machine the node's replacement actors
    # take several seconds to start, and the `after` phase must not be empty
    report = await chaospool.run_async(EXPERIMENTS / "ray_cascade.yaml",
                                       overrides={"duration": "20s"})
    journal = report.to_dict()
    assert_adds_up(journal)
    crash = next(f for f in journal["faults"] if f["fault"] == "node_crash")["effect"]
    failed = [c for c in journal["checks"] if not c["ok"]]
    timing = {k: v for k, v in crash.items() if "after" in k or "time" in k}
    assert report.ok, (failed, timing, [r.get("serving_after") for r in crash["replaced"]])
    assert crash["node"] == 1
    assert crash["workers"]
    assert crash["declared_dead_after"] is not None  # Ray's health checks saw it
    assert [r["outcome"] for r in crash["replaced"]] == ["replaced"] * len(crash["workers"])
    assert all(r["serving_node"] != 1 for r in crash["replaced"])
    assert crash["every_worker_serving_after"] is not None
    assert crash["replacement_node"] is not None
    assert crash["replacement_join_time"] > 0


async def test_a_frozen_node_is_declared_dead_and_its_workers_replaced(ray_cluster: Any) -> None:
    report = await chaospool.run_async(EXPERIMENTS / "node_freeze.yaml")
    journal = report.to_dict()
    assert_adds_up(journal)
    effect = journal["faults"][0]["effect"]
    assert effect["raylet_status"] == "stopped"
    assert effect["frozen_pids"] >= 2  # the raylet and at least the node's workers
    # what Ray does (docs/ray.md): a raylet silent past the health checks is declared dead,
    # and once continued it exits instead of rejoining; the pool replaced the node's workers
    assert effect["declared_dead"] is True
    assert 0 < effect["declared_dead_after"] < effect["continued_after"]
    assert effect["raylet_exited_after_continue"] is True
    assert effect["helper_pid"] is not None
    assert effect["helper_reaped"] is True  # no zombie helper left behind
    assert {w["outcome"] for w in effect["workers_after"]} == {"replaced"}
    assert effect["replacement_node"] is not None
