"""Long runs: the probe's memory, its summary and its progress tick do not grow with the run.

Work is counted with a profiler (function calls) and memory with tracemalloc -- never with a
wall clock: timings belong to ``benchmarks/bench_soak.py``.
"""

from __future__ import annotations

import random
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType, SimpleNamespace
from typing import Any

import pytest

from chaospool._probe import OUTCOME_KINDS, Aggregator, PhaseClock, Recorder, summarize
from chaospool._probe.phases import AFTER, BEFORE, DURING

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


@contextmanager
def counting_calls() -> Iterator[list[int]]:
    """Counts Python and C function calls made inside the block."""
    calls = [0]

    def profile(_frame: FrameType, event: str, _arg: Any) -> None:
        if event in ("call", "c_call"):
            calls[0] += 1

    sys.setprofile(profile)
    try:
        yield calls
    finally:
        sys.setprofile(None)


def feed(agg: Aggregator, n: int, seconds: float, seed: int = 1) -> None:
    """``n`` operations ending in order over ``seconds`` (a few latencies, a few kinds)."""
    rng = random.Random(seed)
    for i in range(n):
        end = seconds * i / n
        code = 0 if rng.random() < 0.9 else rng.randrange(1, len(OUTCOME_KINDS))
        agg.add(max(0.0, end - rng.choice((0.001, 0.002, 0.005))), end, code,
                rng.choice((1, 1, 2)))


def retained_bytes(make: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = make()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return after - before


def test_recorder_memory_does_not_grow_with_the_operations() -> None:
    def run(n: int) -> Aggregator:
        agg = Aggregator(1.0, PhaseClock.fixed(20.0, 40.0))
        feed(agg, n, 60.0)
        agg.add(60.0, 60.5, 0, 1)  # close the last bucket of the fed ones
        return agg

    small = retained_bytes(lambda: run(20_000))
    large = retained_bytes(lambda: run(200_000))
    # ten times the operations over the same 60 buckets: the same memory, give or take the
    # open bucket's buffer and the histograms' first allocations -- not 10x (0.1.0: ~21 B/op)
    assert large - small < 20_000, (small, large)


def test_a_timeline_bucket_costs_tens_of_bytes_not_a_histogram() -> None:
    def run(seconds: int) -> Aggregator:
        agg = Aggregator(1.0)
        feed(agg, seconds * 5, float(seconds))
        return agg

    short = retained_bytes(lambda: run(1_000))
    long = retained_bytes(lambda: run(11_000))
    per_bucket = (long - short) / 10_000
    # six numbers and the heat map's 13 band counts (~90 B: 8 MB a day of 1 s buckets);
    # 0.1.0 held a ~190 KB histogram per bucket at summary
    assert per_bucket < 128, per_bucket


def test_summary_work_does_not_depend_on_the_number_of_operations() -> None:
    def calls_to_summarize(n: int) -> int:
        agg = Aggregator(1.0, PhaseClock.fixed(20.0, 40.0))
        feed(agg, n, 60.0)
        agg.add(60.0, 60.0, 0, 1)
        with counting_calls() as calls:
            summarize(agg, end=61.0, faults=[("f", 20.0, 40.0)])
        return calls[0]

    small, large = calls_to_summarize(6_000), calls_to_summarize(60_000)
    assert large <= small * 1.05 + 50, (small, large)


def test_the_progress_tick_is_constant_work() -> None:
    from chaospool._engine.run import _progress

    def calls_to_tick(n: int) -> int:
        agg = Aggregator(1.0)
        feed(agg, n, 30.0)
        state = SimpleNamespace(probe=SimpleNamespace(recorder=agg), injections=[],
                                restart_times=[], clock=lambda: 5.0,
                                experiment=SimpleNamespace(duration=30.0))
        with counting_calls() as calls:
            progress = _progress(state)  # type: ignore[arg-type]
        assert progress.ops == n
        return calls[0]

    assert calls_to_tick(100_000) == calls_to_tick(1_000)


# -- live phases agree with phases decided after the run -------------------------------------


def random_run(seed: int) -> tuple[list[tuple[float, str, Any]], list[tuple[float, float]]]:
    """Fault events (time, what, step) and operations (start, end), both on the run clock:
    overlapping steps, gaps without a fault, steps that never inject."""
    rng = random.Random(seed)
    events: list[tuple[float, str, Any]] = []
    for step in range(rng.randrange(0, 5)):
        at = rng.uniform(0, 8)
        if rng.random() < 0.2:  # never injected (its slot never served): settles only
            events.append((at, "settled", step))
            continue
        until = at + rng.choice((0.0, rng.uniform(0.1, 2.0)))
        events += [(at, "injected", step), (until, "reverted", step)]
    events.sort(key=lambda e: (e[0], e[1] != "injected"))
    ops = []
    for _ in range(rng.randrange(50, 400)):
        start = rng.uniform(0, 10)
        ops.append((start, start + rng.expovariate(1 / 0.3)))
    return events, ops


@pytest.mark.parametrize("seed", range(60))
def test_live_phases_agree_with_the_finished_runs_bounds(seed: int) -> None:
    events, ops = random_run(seed)
    steps = len({e[2] for e in events})
    clock = PhaseClock(steps)
    live = Aggregator(0.5, clock)
    rows = Recorder()
    timeline = sorted([(e[0], 0, e) for e in events] + [(end, 1, (s, end)) for s, end in ops],
                      key=lambda x: (x[0], x[1]))
    injected: dict[Any, float] = {}
    reverted: dict[Any, float] = {}
    for t, kind, item in timeline:
        if kind == 1:
            start, end = item
            live.add(start, end, 0, 1)
            rows.record(start, end, "ok")
            continue
        _, what, step = item
        if what == "injected":
            clock.injected(t)
            injected[step] = t
        elif what == "reverted":
            clock.reverted(t)
            reverted[step] = t
            clock.settled()
        else:
            clock.settled()
    faults = [(str(s), injected[s], reverted.get(s)) for s in injected]
    end = 12.0
    a = summarize(live, end=end, faults=faults)
    b = summarize(rows, end=end, faults=faults, bucket=0.5)
    assert [a["phases"][p]["total"] for p in ("before", "during", "after")] == [
        b["phases"][p]["total"] for p in ("before", "during", "after")]
    assert a["timeline"] == b["timeline"]


@pytest.mark.parametrize("seed", range(20))
def test_the_fast_path_for_first_attempt_successes_counts_as_add_does(seed: int) -> None:
    """The live probe records a first-attempt success with ``add_ok`` (counted only when its
    bucket closes) and everything else with ``add``; with phases settled live, the summary is
    the one a replay of the same rows gives -- phases, timeline, percentiles."""
    events, ops = random_run(seed)
    rng = random.Random(seed)
    clock = PhaseClock(len({e[2] for e in events}))
    live = Aggregator(rng.choice((0.1, 0.25, 0.5, 1.0)), clock)
    rows = Recorder()
    feed = [(e[0], 0, e) for e in events] + [(end, 1, (s, end)) for s, end in ops]
    injected: dict[Any, float] = {}
    reverted: dict[Any, float] = {}
    for t, kind, item in sorted(feed, key=lambda x: (x[0], x[1])):
        if kind == 0:
            _, what, step = item
            if what == "injected":
                clock.injected(t)
                injected[step] = t
            elif what == "reverted":
                clock.reverted(t)
                reverted[step] = t
            if what != "injected":
                clock.settled()
            continue
        start, end = item
        code = 0 if rng.random() < 0.8 else rng.randrange(1, len(OUTCOME_KINDS))
        attempts = 1 if rng.random() < 0.8 else rng.randrange(2, 4)
        if code == 0 and attempts == 1:
            live.add_ok(start, end)
        else:
            live.add(start, end, code, attempts, dup=attempts > 2)
        rows.record(start, end, OUTCOME_KINDS[code], attempts, maybe_duplicated=attempts > 2)
        assert len(live) == len(rows)  # live counts include the open bucket's fast ones
    faults = [(str(s), injected[s], reverted.get(s)) for s in injected]
    a = summarize(live, end=12.0, faults=faults)
    b = summarize(rows, end=12.0, faults=faults, bucket=live.width)
    assert a["timeline"] == b["timeline"]
    for name in ("before", "during", "after"):
        pa, pb = a["phases"][name], b["phases"][name]
        assert pa["mean_latency"] == pytest.approx(pb["mean_latency"], abs=2e-6)
        pa["mean_latency"] = pb["mean_latency"] = None  # summed in another order
        assert pa == pb, name
    assert a["metrics"]["total"] == len(ops)


def test_phase_of_follows_the_events() -> None:
    clock = PhaseClock(2)
    assert clock.phase_of(1.0) == BEFORE
    clock.injected(2.0)
    assert clock.phase_of(1.0) == BEFORE
    assert clock.phase_of(2.0) == DURING
    clock.reverted(3.0)
    clock.settled()
    clock.settled()  # the second step never injected
    assert clock.phase_of(2.9) == DURING
    assert clock.phase_of(3.0) == AFTER
