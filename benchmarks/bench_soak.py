"""Benchmark: a soak run -- the parent's memory, the summary and the progress tick against run
length (docs/design.md, "Long runs").

Drives the probe as a run does (the live aggregator, one-second timeline buckets, phases fed by
a fault window, ``load.consistency`` on) at full speed against a pool, and every ``--every``
seconds prints: operations so far, the parent's RSS, the bytes it grew per operation, how long
the summary takes (on a copy of the tallies, as at the end of a run or on SIGINT) and what a
progress tick costs. Then it extrapolates the RSS to a 1-hour and a 24-hour run from the measured
growth, and builds the tallies of a 24-hour run directly (86,400 one-second buckets) to time its
summary and measure its bytes per bucket.

Targets: RSS < 150 MB for 1 h and < 500 MB for 24 h at full speed; summary < 1 s whatever the
length; the progress tick O(1).

    python benchmarks/bench_soak.py [--minutes 5] [--every 30] [--backend process|memory|instant]
                                    [--size 2] [--clients 50]
"""

from __future__ import annotations

import argparse
import copy
import gc
import random
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any

import anyio
import psutil
from bench_probe import InstantPool, _Load

from chaospool._probe import Aggregator, PhaseClock, Probe, summarize

MB = 1024 * 1024


@dataclass
class Point:
    elapsed: float
    ops: int
    rss: int
    summary_s: float
    tick_us: float


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def _summary_time(probe: Probe, end: float) -> float:
    """The summary on a copy of the tallies (the run goes on): what an end or SIGINT costs."""
    snapshot = copy.deepcopy(probe.recorder)
    checker = probe.checker.to_dict() if probe.checker is not None else None
    t = time.perf_counter()
    summarize(snapshot, end=end, faults=[("window", end * 0.1, end * 0.2)],
              consistency=checker)
    return time.perf_counter() - t


def _tick_us(agg: Aggregator) -> float:
    t = time.perf_counter()
    for _ in range(1000):
        ops, ok = len(agg), agg.succeeded
        _ = ok / ops if ops else None
    return (time.perf_counter() - t) * 1000


async def _faults(clock: PhaseClock, now: Any, seconds: float) -> None:
    await anyio.sleep(seconds * 0.1)
    clock.injected(now())
    await anyio.sleep(seconds * 0.1)
    clock.reverted(now())
    clock.settled()


async def soak(pool: Any, args: argparse.Namespace) -> list[Point]:
    seconds = args.minutes * 60
    start = time.monotonic()

    def now() -> float:
        return time.monotonic() - start

    phases = PhaseClock(1)
    load = _Load(clients=args.clients, sessions=64, retries=2, consistency=True)
    probe = Probe(pool, load, random.Random(1), now, recorder=Aggregator(1.0, phases))
    points: list[Point] = []

    async def watch() -> None:
        while now() < seconds:
            await anyio.sleep(args.every)
            agg = probe.recorder
            assert isinstance(agg, Aggregator)
            point = Point(now(), len(agg), _rss(), _summary_time(probe, now()), _tick_us(agg))
            points.append(point)
            _print(point, points[0])

    print(f"{'elapsed':>8} {'ops':>11} {'ops/s':>8} {'RSS MB':>8} {'B/op':>7} "
          f"{'summary':>9} {'tick':>8}")
    async with anyio.create_task_group() as tg:
        tg.start_soon(_faults, phases, now, seconds)
        tg.start_soon(watch)
        await probe.run(seconds)
    return points


def _print(p: Point, first: Point) -> None:
    grown = (p.rss - first.rss) / (p.ops - first.ops) if p.ops > first.ops else 0.0
    print(f"{p.elapsed:>7.0f}s {p.ops:>11,} {p.ops / p.elapsed:>8,.0f} {p.rss / MB:>8.1f} "
          f"{grown:>7.2f} {p.summary_s * 1e3:>7.1f}ms {p.tick_us:>6.2f}µs")


def extrapolate(points: list[Point]) -> None:
    if len(points) < 2:
        print("too few checkpoints to extrapolate (run longer or check more often)")
        return
    # the first checkpoint still sees the start-up's allocations: fit the growth after it
    steady = points[1:] if len(points) > 2 else points
    per_second = _slope([p.elapsed for p in steady], [float(p.rss) for p in steady])
    last = points[-1]
    rate = last.ops / last.elapsed
    print(f"RSS growth after warm-up: {per_second / 1024:,.1f} KB/s = "
          f"{per_second / rate:.2f} B per operation")
    for label, length, limit in (("1 h", 3600, 150), ("24 h", 86_400, 500)):
        projected = (last.rss + per_second * (length - last.elapsed)) / MB
        verdict = "met" if projected < limit else "NOT met"
        print(f"RSS projected for {label} at {rate:,.0f} ops/s: {projected:,.0f} MB "
              f"(limit {limit} MB) -> {verdict}")
    worst = max(p.summary_s for p in points)
    print(f"summary: at most {worst * 1e3:.0f} ms over the run "
          f"(limit 1 s) -> {'met' if worst < 1 else 'NOT met'}")
    print(f"progress tick: {points[0].tick_us:.2f} µs at {points[0].ops:,} ops, "
          f"{last.tick_us:.2f} µs at {last.ops:,} ops")


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def day_of_buckets() -> None:
    """The tallies of a 24-hour run (86,400 one-second buckets), built directly."""
    tracemalloc.start()
    agg = Aggregator(1.0, PhaseClock.fixed(3600.0, 7200.0))
    rng = random.Random(1)
    for second in range(86_400):
        for k in range(5):
            end = second + k / 5
            agg.add(end - rng.expovariate(500), end, 0, 1, 0, False)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    t = time.perf_counter()
    out = summarize(agg, end=86_400.0, faults=[("window", 3600.0, 7200.0)])
    took = time.perf_counter() - t
    print(f"24 h of buckets: {len(out['timeline']):,} buckets, tallies {held / MB:.1f} MB "
          f"({held / 86_400:.0f} B per bucket, histograms included); summary {took * 1e3:.0f} ms"
          f" -> {'met' if took < 1 else 'NOT met'}")


async def main(args: argparse.Namespace) -> None:
    day_of_buckets()
    if args.backend == "instant":
        points = await soak(InstantPool(), args)
    else:
        from chaospool.pool import Pool

        async with Pool("chaospool.workers.demo", size=args.size, backend=args.backend) as pool:
            points = await soak(pool, args)
    extrapolate(points)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--every", type=float, default=30.0)
    parser.add_argument("--backend", default="process", choices=("process", "memory", "instant"))
    parser.add_argument("--size", type=int, default=2)
    parser.add_argument("--clients", type=int, default=50)
    anyio.run(main, parser.parse_args())
