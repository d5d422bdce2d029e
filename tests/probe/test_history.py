"""``run --history`` and ``chaospool report HISTORY.jsonl`` (docs/reports.md, "Histories")."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chaospool._engine.history import journal_from_history

EXPERIMENT = """\
version: 1
title: history round trip
seed: 3
duration: 3s
pool:
  worker: chaospool.workers.demo
  size: 3
  request_timeout: 500ms
load:
  clients: 4
  sessions: 4
  retries: 1
  consistency: true
  mix:
    - {command: echo, weight: 1, args: {text: hi}}
steady_state:
  lost_updates: "== 0"
  stale_reads: "== 0"
method:
  - {fault: port_crash, name: kill, at: 500ms, target: {worker: 0}}
  - {fault: network_partition, name: cut, at: 1s, duration: 600ms, target: {worker: 1},
     mode: drop}
"""


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "chaospool"
    command = [str(script)] if script.exists() else [shutil.which("chaospool") or "chaospool"]
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("history")
    (d / "exp.yaml").write_text(EXPERIMENT, encoding="utf-8")
    done = cli("run", "exp.yaml", "--history", "h.jsonl", "--journal", "j.json", "-q", cwd=d)
    assert done.returncode == 0, done.stdout + done.stderr
    return d


@pytest.mark.system
@pytest.mark.timeout(90)
def test_the_history_is_well_formed(run_dir: Path) -> None:
    history = lines(run_dir / "h.jsonl")
    journal = json.loads((run_dir / "j.json").read_text(encoding="utf-8"))
    open_ops: dict[Any, dict[str, Any]] = {}
    retired: set[Any] = set()
    completions = 0
    for line in history:
        assert {"process", "type", "f", "value", "time", "pid"} <= line.keys()
        process = line["process"]
        if process == "nemesis":
            continue
        assert process not in retired, "a process with an info operation invoked again"
        if line["type"] == "invoke":
            assert process not in open_ops, "a process holds two open operations"
            open_ops[process] = line
            continue
        assert line["type"] in ("ok", "fail", "info")
        invoke = open_ops.pop(process)
        assert invoke["f"] == line["f"]
        assert invoke["time"] <= line["time"]
        completions += 1
        if line["type"] == "info":
            retired.add(process)
        if line["f"] in ("chaospool.incr", "chaospool.read") and line["type"] == "ok":
            assert isinstance(line["pid"], int)
    assert not open_ops
    assert completions == journal["metrics"]["total"]
    nemesis = [(x["f"], x["value"]["name"]) for x in history if x["process"] == "nemesis"]
    assert nemesis.count(("start", "kill")) == 1
    assert nemesis.count(("stop", "cut")) == 1
    assert journal["consistency"]["increments_acknowledged"] > 0


@pytest.mark.system
@pytest.mark.timeout(90)
def test_a_history_round_trips_through_report(run_dir: Path) -> None:
    journal = json.loads((run_dir / "j.json").read_text(encoding="utf-8"))
    done = cli("report", "h.jsonl", "--html", "h.html", cwd=run_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    html = (run_dir / "h.html").read_text(encoding="utf-8")
    assert "kill" in html
    assert "cut" in html
    rebuilt = journal_from_history(str(run_dir / "h.jsonl")).to_dict()
    for key in ("total", "succeeded", "errors", "recovered", "outcomes", "errors_by_kind"):
        assert rebuilt["metrics"][key] == journal["metrics"][key], key
    for phase in ("before", "during", "after"):
        assert rebuilt["phases"][phase]["total"] == journal["phases"][phase]["total"], phase
    assert sum(b["info"] for b in rebuilt["timeline"]) == journal["metrics"]["outcomes"]["info"]
    for key in ("lost_updates", "stale_reads", "reads"):
        assert rebuilt["consistency"][key] == journal["consistency"][key], key
    assert [f["name"] for f in rebuilt["faults"]] == [f["name"] for f in journal["faults"]]


@pytest.mark.system
@pytest.mark.timeout(30)
def test_a_malformed_history_is_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text(
        '{"process": 0, "type": "invoke", "f": "ping", "value": null, "time": 1, "pid": null}\n'
        '{"process": 0, "type": "invoke", "f": "ping", "value": null, "time": 2, "pid": null}\n',
        encoding="utf-8")
    done = cli("report", "bad.jsonl", "--html", "x.html", cwd=tmp_path)
    assert done.returncode == 2
    assert "bad.jsonl:2:1: process 0 invokes while its previous operation is open" in done.stderr
    assert not (tmp_path / "x.html").exists()


@pytest.mark.system
@pytest.mark.timeout(90)
def test_a_report_from_a_history_prints_no_false_reproduce_line(run_dir: Path) -> None:
    """A history records neither the seed nor the experiment: 0.1.0 printed ``seed None
    reproduce: chaospool run h.jsonl``, a command that cannot work."""
    done = cli("report", "h.jsonl", "--html", "h2.html", "--junit", "h2.xml", cwd=run_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "seed None" not in done.stdout
    assert "reproduce" not in done.stdout
    assert "chaospool run" not in done.stdout
    assert "rebuilt from the history h.jsonl" in done.stdout
    assert "chaospool run" not in (run_dir / "h2.html").read_text(encoding="utf-8")
    assert 'name="reproduce"' not in (run_dir / "h2.xml").read_text(encoding="utf-8")
