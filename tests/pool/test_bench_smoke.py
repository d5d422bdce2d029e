"""The pool benchmark runs and prints every row (no timing assertions: see benchmarks/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.performance, pytest.mark.timeout(60)]

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_pool.py"


def _bench(*args: str) -> str:
    """The benchmark's output for ``args`` (it must exit 0)."""
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True,
                          timeout=50, check=True).stdout


def test_bench_pool_prints_all_rows() -> None:
    args = ["--rounds", "1", "--ops", "300", "--clients", "10", "--kills", "3", "--starts", "1",
            "--cancel", "200"]
    out = _bench(*args)
    for row in ("== asyncio ==", "== uvloop ==", "chaospool", "bare loop", "ProcessPoolExecutor",
                "multiprocessing.Pool", "asyncio: replacement after SIGKILL",
                "uvloop: replacement after SIGKILL", "start 16 workers", "cancel queued callers"):
        assert row in out, out


def test_bench_pool_replacement_quick_mode_traces_each_step() -> None:
    args = ["--replacement", "--trace", "--kills", "3", "--repeat", "1", "--loops", "asyncio"]
    out = _bench(*args)
    for row in ("asyncio: replacement after SIGKILL, fork on demand (0.1): medians per run",
                "asyncio: replacement after SIGKILL, spare worker: medians per run",
                "EOF (data socket)", "death certain (status read)",
                "spare taken at once (Start sent)", "serving (start event)",
                "wait_serving returned"):
        assert row in out, out
    assert "== asyncio ==" not in out  # quick mode: the throughput rounds are not run


def test_bench_pool_profile_counts_python_calls_per_request() -> None:
    args = ["--profile", "asyncio", "--ops", "300", "--clients", "10", "--top", "5"]
    out = _bench(*args)
    line = next(x for x in out.splitlines() if x.startswith("Python calls per request"))
    ours, bare = (float(part.split()[-1]) for part in line.split(":", 1)[1].split(","))
    # counts, not times (cProfile's, load-independent): the bare loop does less per request
    assert bare > 0, line
    assert ours > bare, line


def test_bench_pool_counts_bytecodes_per_request() -> None:
    args = ["--bytecodes", "uvloop", "--ops", "300", "--clients", "10", "--top", "5"]
    out = _bench(*args)
    line = next(x for x in out.splitlines() if x.startswith("bytecodes per request"))
    ours, bare = (float(part.split()[-1]) for part in line.split(":", 1)[1].split(","))
    assert 0 < bare < ours, line  # a count: the bare loop does less per request
    assert "requests.py:" in out, out  # the request path's own functions are listed


def test_bench_pool_times_the_reply_callbacks_path() -> None:
    args = ["--reaction", "--ops", "300", "--clients", "10", "--loops", "asyncio"]
    out = _bench(*args)
    line = next(x for x in out.splitlines() if "reply read -> next request written" in x)
    figures = [float(x) for x in line.replace(",", " ").split() if x[0].isdigit()]
    assert len(figures) == 6, line  # p10 / p50 / p90, chaospool and the bare loop
    assert all(f > 0 for f in figures), line
