"""Benchmark: the whole engine on the baseline experiment, and a 100,000-caller herd.

Runs ``experiments/baseline.yaml`` through ``chaospool.run`` (probe, histograms, timeline and
journal included) with no think time, once with the seed's command mix and once with a noop
mix, and prints the throughput the probe sustained; then a thundering herd of ``--herd``
simultaneous callers that completes (every outcome accounted for), and one that the run's end
cancels while most of it still waits in the queue (a caller who gives up leaves the queue in
O(1); quadratic bookkeeping would show here). Each run prints the parent's peak RSS so far.
The engine runs on the loop ``CHAOSPOOL_LOOP`` chooses (uvloop where installed).

Targets (docs/design.md, "Performance"): >= 25,000 ops/s on the noop baseline on a 2-core
machine; the herd completes with ``requests = succeeded + sum(errors_by_kind)``.

    python benchmarks/bench_engine.py [--seconds 5] [--clients 50] [--size 2] [--herd 100000]
                                      [--profile]     # cProfile of the noop baseline only

``--herd 0`` skips the herds.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import time
from pathlib import Path
from typing import Any

import chaospool
from chaospool._engine import loop

BASELINE = Path(__file__).resolve().parents[1] / "experiments" / "baseline.yaml"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _run(overrides: dict[str, Any]) -> Any:
    return chaospool.run(BASELINE, seed=1, overrides=overrides)


def _row(label: str, report: Any) -> None:
    m = report.metrics
    print(f"{label:<28} {m.total:>9} ops  {m.throughput:>9.0f} ops/s  "
          f"p50 {m.p50_latency * 1e3:6.2f} ms  p99 {m.p99_latency * 1e3:6.2f} ms  "
          f"success {m.success_rate:.4f}  peak RSS {_peak_rss_mb():.0f} MB")


def _herd(requests: int, size: int, duration: float) -> dict[str, Any]:
    report = chaospool.run({
        "version": 1, "duration": f"{duration}s", "seed": 1, "load": {"clients": 1},
        "pool": {"worker": "chaospool.workers.demo", "size": size, "max_queue": requests,
                 "checkout_timeout": "120s", "request_timeout": "120s"},
        "method": [{"fault": "thundering_herd", "at": "0.5s", "requests": requests}],
    })
    effect: dict[str, Any] = report.faults[0].effect
    return effect


def _herd_row(label: str, effect: dict[str, Any], wall: float) -> None:
    accounted = effect["succeeded"] + sum(effect["errors_by_kind"].values())
    p99 = effect["p99_latency"]
    print(f"{label}: {effect['requests']} callers, succeeded {effect['succeeded']}, "
          f"errors {effect['errors_by_kind']}, accounted {accounted == effect['requests']}, "
          f"p99 {p99 * 1e3 if p99 is not None else float('nan'):.0f} ms, "
          f"max queue depth {effect['max_queue_depth']}, run {wall:.1f} s, "
          f"peak RSS {_peak_rss_mb():.0f} MB")


def _profile(overrides: dict[str, Any]) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    report = _run(overrides)
    profiler.disable()
    _row("baseline, noop (ping) mix, profiled", report)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--size", type=int, default=2)
    parser.add_argument("--herd", type=int, default=100_000)
    parser.add_argument("--herd-seconds", type=float, default=30.0,
                        help="the herd run's duration: long enough for the herd to finish")
    parser.add_argument("--profile", action="store_true",
                        help="run the noop baseline under cProfile and print the top entries")
    ns = parser.parse_args()
    print(f"event loop: {loop.choose()}")
    common = {"duration": f"{ns.seconds}s", "load.think": "0ms",
              "load.clients": ns.clients, "pool.size": ns.size, "pool.max_overflow": 0}
    noop = {**common, "load.mix": [{"command": "ping"}], "load.sessions": None}
    if ns.profile:
        _profile(noop)
        return
    _row("baseline, seed's mix", _run(common))
    _row("baseline, noop (ping) mix", _run(noop))
    _row("baseline, noop, load.consistency", _run({**noop, "load.consistency": True}))
    if ns.herd <= 0:
        return
    start = time.perf_counter()
    effect = _herd(ns.herd, ns.size, ns.herd_seconds)
    _herd_row("herd, completed", effect, time.perf_counter() - start)
    start = time.perf_counter()
    # the run ends 0.5 s after the release: most callers are still queued and are cancelled
    effect = _herd(ns.herd, ns.size, 1.0)
    _herd_row("herd, cancelled by the run's end", effect, time.perf_counter() - start)


if __name__ == "__main__":
    main()
