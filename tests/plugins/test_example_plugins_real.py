"""The example plugins against real pools: a byzantine worker is replaced and the probe recovers
every call; the event stream tells the same story as the journal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import chaospool

pytestmark = [pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("chaospool"))


def tiny(plugin: str | Path, method: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A small experiment; ``plugin``: an example's name, or a path."""
    path = plugin if isinstance(plugin, Path) else ROOT / "plugins" / f"{plugin}.py"
    return {
        "version": 1,
        "title": f"{path.stem} example",
        "duration": "2s",
        "plugins": [str(path)],
        "pool": {"worker": "chaospool.workers.demo", "size": 2},
        "load": {"clients": 3, "retries": 2, "mix": [{"command": "echo", "args": {"a": 1}}]},
        "method": method,
        **extra,
    }


@pytest.mark.system
@pytest.mark.parametrize("name", ["byzantine", "events_jsonl"])
def test_shipped_experiment_is_valid(name: str) -> None:
    done = subprocess.run(
        [CLI, "validate", str(ROOT / "experiments" / f"{name}.yaml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.chaos
@pytest.mark.integration
def test_a_byzantine_worker_is_replaced_and_every_call_recovers() -> None:
    method = [
        {"fault": "byzantine_reply", "name": mode, "at": at, "duration": "300ms", "mode": mode,
         "target": {"worker": worker}}
        for mode, at, worker in (("garbage", "400ms", 0), ("truncate", "1200ms", 1))
    ]  # fmt: skip
    report = chaospool.run(tiny("byzantine", method), seed=3)
    journal = report.to_dict()
    assert journal["status"] == "completed", [f["error"] for f in journal["faults"]]
    metrics = journal["metrics"]
    assert metrics["errors"] == 0  # every failed attempt was retried on a healthy worker
    assert metrics["errors_by_kind"]["wrong_reply"] == 0  # no corrupt bytes reached a caller
    assert metrics["recovered"] >= 1  # ... and there were failed attempts to recover
    assert metrics["worker_restarts"] >= 2
    for fault in journal["faults"]:
        assert fault["error"] is None
        [outcome] = fault["effect"]["outcomes"]
        assert outcome["replaced_by"] not in (None, outcome["pid"])
        [crash] = fault["effect"]["crashes"]
        assert crash["pid"] == outcome["pid"]
    assert [f["effect"]["mode"] for f in journal["faults"]] == ["garbage", "truncate"]


@pytest.mark.chaos
@pytest.mark.integration
def test_events_jsonl_streams_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "events.jsonl"
    monkeypatch.setenv("CHAOSPOOL_EVENTS_PATH", str(out))
    method = [{"fault": "port_crash", "name": "kill-one", "at": "500ms", "target": {"worker": 0}}]
    journal = chaospool.run(tiny("events_jsonl", method), seed=4).to_dict()
    assert journal["plugin_errors"] == []
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    kinds = [line["type"] for line in lines]
    assert kinds[0] == "experiment_start"
    assert kinds[-1] == "experiment_end"
    assert lines[-1]["ok"] == journal["ok"]
    assert kinds.count("fault_start") == kinds.count("fault_end") == 1
    [victim] = journal["faults"][0]["targets"]
    events = [line for line in lines if line["type"] == "pool_event"]
    crashes = [e for e in events if e["kind"] == "crash"]
    assert [e["pid"] for e in crashes] == [victim["pid"]]
    assert any(e["kind"] == "start" and e["index"] == victim["index"] for e in events)
    checkouts = sum(e["kind"] == "checkout" for e in events)
    assert checkouts >= journal["metrics"]["total"]  # every operation took a worker at least once
    times = [line["t"] for line in lines]
    assert times == sorted(times)


RAISING_PLUGIN = """
from chaospool.hookspecs import hookimpl

@hookimpl
def chaospool_before_fault(step):
    raise RuntimeError("observer broke before " + step.fault)

@hookimpl
def chaospool_pool_event(event):
    if event.kind == "crash":
        raise ValueError("cannot log a crash")
"""


@pytest.mark.chaos
@pytest.mark.integration
def test_a_raising_plugin_is_named_and_the_fault_still_reverted(tmp_path: Path) -> None:
    plugin = tmp_path / "grumpy.py"
    plugin.write_text(RAISING_PLUGIN)
    experiment = tiny(
        "byzantine", [{"fault": "port_crash", "at": "300ms", "target": {"worker": 0}}]
    )
    experiment["plugins"] = [str(plugin)]
    experiment["duration"] = "1500ms"
    experiment["steady_state"] = {"worker_restarts": ">= 1"}
    journal = chaospool.run(experiment, seed=1).to_dict()
    assert journal["status"] == "completed"
    assert journal["ok"] is True  # the killed worker was replaced: port_crash ran and reverted
    [fault] = journal["faults"]
    assert fault["error"] is None
    assert fault["reverted_at"] is not None
    errors = {e["hook"]: e for e in journal["plugin_errors"]}
    assert errors["chaospool_before_fault"]["plugin"] == "chaospool_plugins.grumpy"
    assert errors["chaospool_before_fault"]["error"] == (
        "RuntimeError: observer broke before port_crash"
    )
    assert errors["chaospool_pool_event"]["error"] == "ValueError: cannot log a crash"
