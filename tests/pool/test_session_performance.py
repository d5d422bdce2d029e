"""Session-state cost does not grow with the state, and the seed scenario stays flat.

Performance tier: the figures themselves are the benchmarks' (benchmarks/bench_session.py);
here the benchmark must run and print both sizes, and the cascade without faults must not
decay (docs/design.md, Pool, "Sessions").
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import chaospool

pytestmark = [pytest.mark.performance, pytest.mark.timeout(90)]

ROOT = Path(__file__).parents[2]
BENCH = ROOT / "benchmarks" / "bench_session.py"
CASCADE = ROOT / "experiments" / "cascade.yaml"


def test_bench_session_prints_both_sizes() -> None:
    args = ["--calls", "100", "--rounds", "1", "--sizes", "10,10000"]
    out = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True,
                         timeout=80, check=True).stdout
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["10"], ["10000"])]
    assert [row[0] for row in rows] == ["10", "10000"], out
    assert "change cost, 10000 entries / 10 entries" in out, out


def _rate(timeline: Sequence[Mapping[str, Any]], start: float, end: float) -> float:
    """Operations per second in the buckets starting within [start, end): the median of the
    buckets' rates, so that a stall of the shared machine does not decide alone."""
    width = timeline[1]["t"] - timeline[0]["t"]
    rates = [(b["succeeded"] + b["errors"]) / width for b in timeline if start <= b["t"] < end]
    return statistics.median(rates)


def _first_and_last(duration: float) -> tuple[float, float]:
    report = chaospool.run(CASCADE, overrides={"method": [], "duration": f"{duration}s"})
    assert report.metrics["total"] > 0
    timeline = report.timeline
    first, last = _rate(timeline, 0.0, 3.0), _rate(timeline, duration - 3.0, duration)
    print(f"cascade without faults: first 3 s {first:.0f} ops/s, last 3 s {last:.0f} ops/s")
    return first, last


def test_the_seed_scenario_without_faults_is_flat() -> None:
    # 0.1.0: every create_program grew its session for good, and the whole state crossed the
    # channel on every change: throughput fell from ~16k to ~2k ops/s over 15 s.
    # A second run only when the first looks decayed: on a shared machine another process can
    # take the last seconds of one run, but a real decay shows in both.
    runs = [_first_and_last(8.0)]
    if runs[0][1] < 0.8 * runs[0][0]:
        runs.append(_first_and_last(8.0))
    assert any(last >= 0.8 * first for first, last in runs), runs
