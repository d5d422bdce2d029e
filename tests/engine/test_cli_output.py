"""The small things of the CLI's output, read as a user reads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from engine_helpers import EXPERIMENTS, cli

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]


def test_dry_run_has_column_headers_and_parameters_in_their_units() -> None:
    out = cli("run", "--dry-run", str(EXPERIMENTS / "slow_worker.yaml"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header = next(line for line in lines if line.split()[:2] == ["at", "fault"])
    assert header.split() == ["at", "fault", "name", "targets", "held", "parameters"]
    step = lines[lines.index(header) + 1]
    assert "latency=200ms jitter=50ms duration=4s" in step  # never latency=0.2 duration=4.0
    assert step.split()[0] == "3s"


def test_set_takes_a_list_index_in_brackets_too() -> None:
    path = str(EXPERIMENTS / "cascade.yaml")
    dotted = cli("run", "--dry-run", path, "--set", "method.0.at=1s")
    bracket = cli("run", "--dry-run", path, "--set", "method[0].at=1s")
    assert bracket.returncode == 0, bracket.stderr
    assert bracket.stdout == dotted.stdout
    assert any(line.split()[:2] == ["1s", "port_crash"] for line in bracket.stdout.splitlines())


def test_help_explains_set_quiet_and_verbose() -> None:
    text = " ".join(cli("run", "--help").stdout.split())
    assert "method.0.at=9s (or method[0].at=9s)" in text
    assert "--set pool.size=8" in text
    assert "-q, --quiet print only the verdict, where an aborted run stopped, and the failed " \
           "checks" in text
    assert "every fault's evidence as a table" in text


def test_a_choice_error_lists_the_choices_once(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("version: 1\npool: {worker: chaospool.workers.demo}\n"
                    "method:\n  - {fault: timeout, at: 1s, how: zzz}\n", encoding="utf-8")
    out = cli("validate", str(path))
    assert out.returncode == 2
    assert out.stderr.strip() == (f"{path}:4:35: method[0].how: expected one of 'stop', "
                                  "'block', got 'zzz'")


def test_faults_shows_allowed_values_and_what_acts_on_the_whole_pool() -> None:
    out = cli("faults")
    assert out.returncode == 0
    text = out.stdout
    assert "mode: kill  (kill | close)" in text
    assert "how: stop  (stop | block)" in text
    herd = text[text.index("thundering_herd"):]
    assert "acts on: the whole pool (target ignored)" in herd.splitlines()[1]
    assert ("acts on: the whole pool with resource: capacity (target ignored); the target "
            "workers otherwise") in text


def test_faults_json_adds_types_units_and_pool_level() -> None:
    entries = {e["name"]: e for e in json.loads(cli("faults", "--json").stdout)}
    slow = entries["slow_worker"]
    assert slow["params"] == {"latency": 0.2, "jitter": 0.0, "duration": 5.0}  # the contract's
    assert slow["units"] == {"latency": "seconds", "jitter": "seconds", "duration": "seconds"}
    assert slow["types"]["latency"] == "duration"
    assert slow["pool_level"] is False
    assert entries["memory_leak"]["units"]["limit"] == "bytes"
    assert entries["memory_leak"]["units"]["rate"] == "bytes/s"
    assert entries["port_crash"]["choices"]["mode"] == ["kill", "close"]
    assert entries["thundering_herd"]["pool_level"] is True
    assert entries["resource_exhaustion"]["pool_level_when"] == {"resource": ["capacity"]}
    assert entries["node_crash"]["backends"] == ["ray"]  # refused on a process pool
    assert entries["slow_worker"]["backends"] is None  # any backend


def test_faults_says_node_faults_need_ray_and_act_on_a_node() -> None:
    text = cli("faults").stdout
    line = text[text.index("node_crash"):].splitlines()[1]
    assert "one cluster node (target {node: N}" in line
    assert "needs pool.backend: ray" in line
    assert "target ignored" not in line


FAILING_IN_POOL = ("import sys\nfrom chaospool.workers.demo import *\n"
                   "if sys.argv[0] != '-c':\n    raise RuntimeError('down')\n")


def test_a_reader_that_leaves_early_does_not_change_the_exit_code(tmp_path: Path) -> None:
    """`chaospool run x.yaml | head -1`: the run failed (3), whatever the pipe did."""
    (tmp_path / "down_worker.py").write_text(FAILING_IN_POOL, encoding="utf-8")
    argv = [sys.executable, "-m", "chaospool.cli", "run", str(EXPERIMENTS / "baseline.yaml"),
            "--set", "duration=1s", "--set", "pool.worker=down_worker", "--journal", "j.json"]
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    try:
        done = subprocess.run(argv, cwd=tmp_path, stdout=write, stderr=subprocess.PIPE,
                              timeout=90, check=False)
    finally:
        os.close(write)
    assert done.returncode == 3, done.stderr
    assert b"Traceback" not in done.stderr
