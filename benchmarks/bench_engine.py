"""Benchmark: the whole engine on the baseline experiment, and a 10,000-caller herd.

Runs ``experiments/baseline.yaml`` through ``chaospool.run`` (probe, histograms, timeline and
journal included) with no think time, once with the seed's command mix and once with a noop
mix, and prints the throughput the probe sustained; then a thundering herd of 10,000
simultaneous callers. Target: >= 10,000 ops/s on the noop baseline on a 2-core machine.

    python benchmarks/bench_engine.py [--seconds 5] [--clients 50] [--size 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import chaospool

BASELINE = Path(__file__).resolve().parents[1] / "experiments" / "baseline.yaml"


def _run(overrides: dict[str, Any]) -> Any:
    return chaospool.run(BASELINE, seed=1, overrides=overrides)


def _row(label: str, report: Any) -> None:
    m = report.metrics
    print(f"{label:<28} {m.total:>9} ops  {m.throughput:>9.0f} ops/s  "
          f"p50 {m.p50_latency * 1e3:6.2f} ms  p99 {m.p99_latency * 1e3:6.2f} ms  "
          f"success {m.success_rate:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--size", type=int, default=2)
    ns = parser.parse_args()
    common = {"duration": f"{ns.seconds}s", "load.think": "0ms",
              "load.clients": ns.clients, "pool.size": ns.size, "pool.max_overflow": 0}
    _row("baseline, seed's mix", _run(common))
    _row("baseline, noop (ping) mix", _run({**common, "load.mix": [{"command": "ping"}],
                                            "load.sessions": None}))
    herd = chaospool.run({
        "version": 1, "duration": "3s", "seed": 1, "load": {"clients": 1},
        "pool": {"worker": "chaospool.workers.demo", "size": ns.size, "max_queue": 20_000,
                 "checkout_timeout": "30s"},
        "method": [{"fault": "thundering_herd", "at": "0.5s", "requests": 10_000}],
    })
    effect = herd.faults[0].effect
    print(f"herd of {effect['requests']}: succeeded {effect['succeeded']}, "
          f"errors {effect['errors_by_kind']}, p99 {effect['p99_latency'] * 1e3:.0f} ms, "
          f"max queue depth {effect['max_queue_depth']}")


if __name__ == "__main__":
    main()
