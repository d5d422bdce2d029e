"""The probe benchmark runs and prints every figure it promises (no timing assertions: the
figures themselves belong to benchmarks/bench_probe.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.performance, pytest.mark.timeout(90)]

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_probe.py"


def test_bench_probe_interleaves_rounds_and_prints_both_verdicts() -> None:
    args = ["--seconds", "0.1", "--rounds", "2", "--clients", "5", "--backend", "memory",
            "--loop", "asyncio"]
    out = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True,
                         timeout=80, check=True).stdout
    for row in ("1. the probe's own cost", "with load.consistency", "summarize:",
                "2. pool noop throughput", "2b. the same, load.consistency on",
                "ratio probe/direct per round", "parent CPU",
                "plain probe overhead", "probe overhead with load.consistency on"):
        assert row in out, out
    # two interleaved pairs per mode: two ratios on each ratio line
    ratios = [line for line in out.splitlines() if "ratio probe/direct per round" in line]
    assert len(ratios) == 4, out
    assert all(line.count(",") == 1 for line in ratios), ratios


def test_bench_probe_rounds_check_fresh_sessions() -> None:
    """Each probed round checks sessions of its own: a counter an earlier round on the same
    pool left behind made every checked operation an overcount, so the rounds measured the
    checker's slow path (a finding each) instead of the probe's usual cost."""
    args = ["--seconds", "0.1", "--rounds", "2", "--clients", "5", "--backend", "memory",
            "--loop", "asyncio"]
    out = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True,
                         timeout=80, check=True).stdout
    checked = [line for line in out.splitlines() if line.strip().startswith("checked:")]
    assert len(checked) == 2, out  # the instant pool's and the real pool's last round
    assert all(line.endswith("lost 0, stale 0, overcounts 0") for line in checked), checked
