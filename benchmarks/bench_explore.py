"""Benchmark: explore and shrink against the planted weakness of experiments/fragile_worker.py.

For each root seed, explore the short planted experiment (one fault on one slot breaks it) and
shrink what it finds; print the schedules tried until found, the shrink runs used, the steps
before and after, and the wall time of each part. No assertions: figures are for reading.

    python benchmarks/bench_explore.py [--seeds 24,41,73 | --seeds 1..10] [--budget 6]
                                       [--runs 1 --min-fails 1] [--max-runs 60]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# The planted experiment is the explore tests' own (tests/explore/explore_helpers.py), so the
# figures are for exactly what the tests check, not a copy that drifts from it.
sys.path.insert(0, str(REPO / "tests" / "explore"))
from explore_helpers import PLANTED, PLANTED_PAUSE  # noqa: E402 -- found through the line above

os.environ.setdefault("FRAGILE_WORKER_PAUSE", PLANTED_PAUSE)  # workers inherit: a shorter pause


async def _one(seed: int, ns: argparse.Namespace) -> dict[str, Any]:
    from chaospool._explore.session import ShrinkOptions, explore_source
    from chaospool._explore.steps import schedule_text
    from chaospool._plugins import fault_registry, plugin_manager

    started = time.monotonic()
    options = ShrinkOptions(ns.runs, ns.min_fails, ns.time_limit, ns.max_runs)
    finding = await explore_source(PLANTED, seed=seed, budget=ns.budget, shrink_options=options)
    total = time.monotonic() - started
    shrunk = finding.shrunk
    row = {"seed": seed, "tried": finding.explored.tried, "found": finding.explored.found,
           "total": total, "shrink_runs": 0, "shrink_time": 0.0, "minimal": "-"}
    if shrunk is not None and shrunk.best is not None:
        registry = fault_registry(plugin_manager())
        row.update(shrink_runs=shrunk.runs_used, shrink_time=shrunk.elapsed,
                   steps=(len(shrunk.initial.steps), len(shrunk.best.steps)),
                   minimal=schedule_text(shrunk.best.steps, registry),
                   rate=f"{shrunk.confirmed}/{ns.runs}")
    return row


def _print(row: dict[str, Any]) -> None:
    if row["found"] is None:
        print(f"seed {row['seed']:>4}: nothing found in {row['tried']} schedules "
              f"({row['total']:.1f}s)")
        return
    explore_time = row["total"] - row["shrink_time"]
    if "steps" not in row:  # the schedule did not fail again when shrink re-ran it
        print(f"seed {row['seed']:>4}: found at schedule {row['found'].number} "
              f"({row['tried']} tried, {explore_time:.1f}s); it did not fail again: not shrunk")
        return
    print(f"seed {row['seed']:>4}: found at schedule {row['found'].number} "
          f"({row['tried']} tried, {explore_time:.1f}s); shrink {row['shrink_runs']} runs, "
          f"steps {row['steps'][0]} -> {row['steps'][1]}, {row['shrink_time']:.1f}s, "
          f"reproduced {row['rate']}; wall {row['total']:.1f}s")
    print(f"           minimal: {row['minimal']}")


def _seeds(text: str) -> list[int]:
    if ".." in text:
        low, high = (int(part) for part in text.split(".."))
        return list(range(low, high + 1))
    return [int(part) for part in text.split(",")]


def main() -> None:
    import anyio

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="24,41,73",
                        help="root seeds: comma-separated, or a range A..B (every seed in it)")
    parser.add_argument("--budget", type=int, default=6)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--min-fails", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--max-runs", type=int, default=60)
    ns = parser.parse_args()
    rows = []
    for seed in _seeds(ns.seeds):
        rows.append(anyio.run(_one, seed, ns))
        _print(rows[-1])
    found = [r for r in rows if r["found"] is not None]
    if found:
        print(f"found {len(found)}/{len(rows)}; mean schedules tried "
              f"{sum(r['tried'] for r in found) / len(found):.1f}, mean shrink runs "
              f"{sum(r['shrink_runs'] for r in found) / len(found):.1f}, total wall "
              f"{sum(r['total'] for r in rows):.1f}s")


if __name__ == "__main__":
    main()
