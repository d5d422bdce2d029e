"""summarize(): metrics, phases, timeline and recovery_time from recorded outcomes."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from typing import Any

import pytest

from chaospool._probe import ERROR_KINDS, OUTCOME_KINDS, Recorder, bucket_width, summarize
from chaospool._probe.summary import recovery_time

pytestmark = [pytest.mark.unit, pytest.mark.timeout(20)]

METRIC_KEYS = {
    "total", "succeeded", "errors", "recovered", "success_rate", "error_rate", "throughput",
    "mean_latency", "p50_latency", "p90_latency", "p95_latency", "p99_latency", "p999_latency",
    "max_latency", "worker_restarts", "recovery_time", "errors_by_kind",
    "outcomes", "indeterminate", "maybe_duplicated", "lost_updates", "stale_reads",
}
COUNTS = ("total", "succeeded", "errors", "recovered")


def random_recorder(seed: int, n: int = 3000, duration: float = 10.0) -> Recorder:
    rng = random.Random(seed)
    rec = Recorder()
    for _ in range(n):
        start = rng.uniform(0, duration)
        end = start + rng.expovariate(1 / 0.05)
        kind = rng.choice(OUTCOME_KINDS) if rng.random() < 0.3 else "ok"
        rec.record(start, end, kind, attempts=rng.choice((1, 1, 1, 2, 3)))
    return rec


def summary_of(rec: Recorder, **kw: Any) -> dict[str, Any]:
    kw.setdefault("end", 10.0)
    kw.setdefault("bucket", 0.5)
    return summarize(rec, **kw)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "faults",
    [{}, {"first_inject": 3.0, "last_revert": 6.0}, {"first_inject": 0.0, "last_revert": 10.0},
     {"first_inject": 2.5, "last_revert": None}],
)
def test_every_sum_adds_up(seed: int, faults: dict[str, Any]) -> None:
    rec = random_recorder(seed)
    s = summary_of(rec, **faults)
    m = s["metrics"]
    assert m["total"] == len(rec) == m["succeeded"] + m["errors"]
    assert sum(m["errors_by_kind"].values()) == m["errors"]
    assert m["recovered"] <= m["succeeded"]
    for key in COUNTS:
        assert sum(p[key] for p in s["phases"].values()) == m[key], key
    for key in ("succeeded", "errors", "recovered"):
        assert sum(b[key] for b in s["timeline"]) == m[key], key
    assert sum(b["succeeded"] + b["errors"] for b in s["timeline"]) == m["total"]
    for kind in ERROR_KINDS:
        assert sum(p["errors_by_kind"][kind] for p in s["phases"].values()) == (
            m["errors_by_kind"][kind])
    for phase in s["phases"].values():
        assert phase["total"] == phase["succeeded"] + phase["errors"]
        assert sum(phase["errors_by_kind"].values()) == phase["errors"]


def test_keys_are_exactly_the_contracts() -> None:
    s = summary_of(random_recorder(1), first_inject=3.0, last_revert=6.0)
    assert set(s) == {"metrics", "phases", "timeline"}
    assert set(s["metrics"]) == METRIC_KEYS
    assert set(s["phases"]) == {"before", "during", "after"}
    assert all(set(p) == METRIC_KEYS for p in s["phases"].values())
    assert set(s["metrics"]["errors_by_kind"]) == set(ERROR_KINDS)
    assert all(
        set(b) == {"t", "succeeded", "errors", "recovered", "p99_latency", "faults_active",
                   "ok", "fail", "info",
                   "max_latency", "latency_bands"}  # the last two for the report's charts
        for b in s["timeline"]
    )
    json.dumps(s, allow_nan=False)  # JSON-able, no NaN or infinity


def test_each_bucket_has_its_max_and_latency_bands_that_add_up() -> None:
    s = summary_of(random_recorder(2), first_inject=3.0, last_revert=6.0)
    for b in s["timeline"]:
        total = b["succeeded"] + b["errors"]
        assert sum(b["latency_bands"]) == total
        if total:
            assert b["max_latency"] >= b["p99_latency"]
        else:
            assert b["max_latency"] is None


def test_counts_and_kinds_match_the_rows() -> None:
    rec = random_recorder(3)
    m = summary_of(rec)["metrics"]
    outcomes = list(rec)
    by_kind = Counter(o.kind for o in outcomes if o.kind != "ok")
    assert m["errors_by_kind"] == {k: by_kind.get(k, 0) for k in ERROR_KINDS}
    assert m["recovered"] == sum(o.recovered for o in outcomes)
    assert m["success_rate"] == pytest.approx(m["succeeded"] / m["total"])
    assert m["error_rate"] == pytest.approx(1 - m["success_rate"])


def test_latencies_come_from_the_histogram_and_agree_with_the_samples() -> None:
    rec = random_recorder(4, n=20_000)
    m = summary_of(rec)["metrics"]
    latencies = sorted(o.latency for o in rec)
    n = len(latencies)
    for key, q in (("p50_latency", 0.50), ("p90_latency", 0.90), ("p99_latency", 0.99),
                   ("p999_latency", 0.999)):
        exact = latencies[math.ceil(q * n) - 1]
        assert m[key] == pytest.approx(exact, rel=2e-3, abs=2e-6), key
    assert m["max_latency"] == pytest.approx(latencies[-1], abs=1e-6)
    assert m["mean_latency"] == pytest.approx(sum(latencies) / n, abs=1e-6)
    ordered = [m[k] for k in ("p50_latency", "p90_latency", "p95_latency", "p99_latency",
                              "p999_latency", "max_latency")]
    assert ordered == sorted(ordered)


def test_an_operation_belongs_to_the_phase_it_started_in_and_the_bucket_it_ended_in() -> None:
    rec = Recorder()
    rec.record(2.9, 3.2, "ok")  # starts before the fault, ends during it
    rec.record(5.9, 6.4, "worker_crashed")  # starts during, ends after the revert
    rec.record(6.0, 6.1, "ok", attempts=2)  # starts exactly at the revert: after
    s = summarize(rec, first_inject=3.0, last_revert=6.0, end=8.0, bucket=1.0)
    phases = s["phases"]
    assert (phases["before"]["total"], phases["during"]["total"], phases["after"]["total"]) == (
        1, 1, 1)
    assert phases["during"]["errors_by_kind"]["worker_crashed"] == 1
    assert phases["after"]["recovered"] == 1
    by_t = {b["t"]: b for b in s["timeline"]}
    assert by_t[3.0]["succeeded"] == 1
    assert (by_t[6.0]["succeeded"], by_t[6.0]["errors"], by_t[6.0]["recovered"]) == (1, 1, 1)
    assert [b["t"] for b in s["timeline"]] == [float(i) for i in range(8)]


def test_latency_includes_retries_and_throughput_uses_the_phase_length() -> None:
    rec = Recorder()
    for i in range(10):
        rec.record(i * 0.1, i * 0.1 + 0.25, "ok", attempts=3)
    s = summarize(rec, first_inject=2.0, last_revert=3.0, end=4.0, bucket=0.5)
    before = s["phases"]["before"]
    assert before["max_latency"] == pytest.approx(0.25)
    assert before["mean_latency"] == pytest.approx(0.25)
    assert before["throughput"] == pytest.approx(10 / 2.0)
    assert s["metrics"]["throughput"] == pytest.approx(10 / 4.0)
    assert s["phases"]["during"]["throughput"] == 0.0


def test_no_fault_puts_everything_before_and_empty_phases_have_null_rates() -> None:
    rec = random_recorder(5)
    s = summary_of(rec)
    assert s["phases"]["before"]["total"] == len(rec)
    for name in ("during", "after"):
        phase = s["phases"][name]
        assert all(phase[k] == 0 for k in COUNTS)
        assert phase["success_rate"] is None
        assert phase["error_rate"] is None
        assert phase["p99_latency"] is None
        assert phase["mean_latency"] is None
        assert phase["throughput"] == 0.0
    assert s["metrics"]["recovery_time"] == 0.0
    assert all(b["faults_active"] == [] for b in s["timeline"])


def test_an_empty_run_has_zero_counts_and_empty_buckets() -> None:
    s = summarize(Recorder(), end=2.0, bucket=0.5)
    assert s["metrics"]["total"] == 0
    assert s["metrics"]["success_rate"] is None
    assert s["metrics"]["max_latency"] is None
    assert [b["t"] for b in s["timeline"]] == [0.0, 0.5, 1.0, 1.5]
    assert all(b["p99_latency"] is None and b["succeeded"] == 0 for b in s["timeline"])


def test_no_recorder_is_an_empty_run() -> None:
    s = summarize(None, end=1.0, bucket=1.0, faults=[("kill", 0.2, 0.4)])
    assert s["metrics"]["total"] == 0
    assert s["metrics"]["recovery_time"] is None  # no baseline to come back to
    assert s["timeline"][0]["faults_active"] == ["kill"]


def test_operations_ending_after_end_extend_the_timeline() -> None:
    rec = Recorder()
    rec.record(1.9, 2.7, "ok")  # drained after the run's end
    s = summarize(rec, end=2.0, bucket=0.5)
    assert s["timeline"][-1]["t"] == 2.5
    assert s["timeline"][-1]["succeeded"] == 1


def test_faults_active_follow_the_fault_windows() -> None:
    rec = Recorder()
    faults = [
        ("kill", 1.2, 1.2),  # instantaneous: active in its own bucket only
        ("slow", 2.0, 3.0),  # closed window: the bucket starting at 3.0 overlaps
        {"fault": "timeout", "name": "hang", "injected_at": 3.6, "reverted_at": None},
        ("never", None, None),  # never injected
    ]
    s = summarize(rec, end=5.0, bucket=1.0, faults=faults)
    active = [b["faults_active"] for b in s["timeline"]]
    assert active == [[], ["kill"], ["slow"], ["slow", "hang"], ["hang"]]


def test_phase_bounds_default_to_the_fault_windows() -> None:
    rec = Recorder()
    rec.record(1.0, 1.1, "ok")
    rec.record(2.5, 2.6, "ok")
    rec.record(4.5, 4.6, "ok")
    s = summarize(rec, end=5.0, bucket=1.0, faults=[("a", 2.0, 3.0), ("b", 2.2, 4.0)])
    assert [s["phases"][p]["total"] for p in ("before", "during", "after")] == [1, 1, 1]
    # a fault never reverted: "during" lasts to the end
    s = summarize(rec, end=5.0, bucket=1.0, faults=[("a", 2.0, 3.0), ("b", 2.2, None)])
    assert [s["phases"][p]["total"] for p in ("before", "during", "after")] == [1, 2, 0]
    assert s["metrics"]["recovery_time"] is None


def test_worker_restarts_overall_and_per_phase() -> None:
    rec = random_recorder(6)
    s = summary_of(rec, first_inject=3.0, last_revert=6.0, worker_restarts=4,
                   restart_times=[3.1, 3.5, 6.2, 7.0])
    assert s["metrics"]["worker_restarts"] == 4
    assert [s["phases"][p]["worker_restarts"] for p in ("before", "during", "after")] == [
        0, 2, 2]
    s = summary_of(rec, first_inject=3.0, last_revert=6.0, worker_restarts=4)
    assert s["metrics"]["worker_restarts"] == 4
    assert s["phases"]["during"]["worker_restarts"] is None


def test_bucket_width_is_at_most_one_second() -> None:
    assert bucket_width(5) == 0.1
    assert bucket_width(30) == 0.25
    assert bucket_width(3600) == 1.0
    with pytest.raises(ValueError, match="bucket"):
        summarize(Recorder(), end=1.0, bucket=2.0)


# -- recovery_time -------------------------------------------------------------------------


def run_with_rates(rates: list[float | None], *, inject: float, revert: float) -> dict[str, Any]:
    """One bucket per second; ``rates[i]`` is bucket i's success rate from 100 operations
    (None = no operation in that bucket)."""
    rec = Recorder()
    for i, rate in enumerate(rates):
        if rate is None:
            continue
        ok = round(rate * 100)
        for j in range(100):
            t = i + j / 100
            rec.record(t, t + 0.001, "ok" if j < ok else "request_timeout")
    return summarize(rec, first_inject=inject, last_revert=revert, end=float(len(rates)),
                     bucket=1.0)


def test_recovery_time_is_zero_when_the_rate_never_dropped() -> None:
    s = run_with_rates([1.0, 1.0, 1.0, 0.99, 1.0, 1.0], inject=2.0, revert=3.0)
    assert s["metrics"]["recovery_time"] == 0.0


def test_recovery_time_runs_from_the_revert_to_the_first_good_bucket() -> None:
    s = run_with_rates([1.0, 1.0, 0.5, 0.5, 0.8, 0.99, 1.0], inject=2.0, revert=3.5)
    # buckets at or after 3.5: t=4 (0.80, low), t=5 (0.99, within 0.01) -> 5 - 3.5
    assert s["metrics"]["recovery_time"] == pytest.approx(1.5)
    assert s["phases"]["after"]["recovery_time"] == pytest.approx(1.5)
    assert s["phases"]["before"]["recovery_time"] is None


def test_recovery_time_is_null_when_the_rate_never_came_back() -> None:
    s = run_with_rates([1.0, 1.0, 0.5, 0.9, 0.9, 0.9], inject=2.0, revert=3.0)
    assert s["metrics"]["recovery_time"] is None


def test_recovery_bucket_may_start_exactly_at_the_revert_and_empty_buckets_are_skipped() -> None:
    s = run_with_rates([1.0, 1.0, 0.0, 1.0], inject=2.0, revert=3.0)
    assert s["metrics"]["recovery_time"] == 0.0  # dropped, back in the very bucket at 3.0
    s = run_with_rates([1.0, 1.0, 0.0, None, 1.0], inject=2.0, revert=3.0)
    assert s["metrics"]["recovery_time"] == pytest.approx(1.0)


def test_recovery_against_an_imperfect_baseline_and_better_than_baseline() -> None:
    buckets = [(0.0, 90, 100), (1.0, 50, 100), (2.0, 100, 100)]
    assert recovery_time(buckets, baseline=0.9, first_inject=1.0, last_revert=1.5,
                         width=1.0) == pytest.approx(0.5)
    # 0.89 is within 0.01 of a 0.90 baseline: it never dropped
    buckets = [(0.0, 90, 100), (1.0, 89, 100), (2.0, 90, 100)]
    assert recovery_time(buckets, baseline=0.9, first_inject=1.0, last_revert=1.5,
                         width=1.0) == 0.0


def test_recovery_time_without_a_baseline_or_a_fault() -> None:
    buckets = [(0.0, 0, 10), (1.0, 10, 10)]
    assert recovery_time(buckets, baseline=None, first_inject=0.0, last_revert=0.5,
                         width=1.0) is None
    assert recovery_time(buckets, baseline=1.0, first_inject=None, last_revert=None,
                         width=1.0) == 0.0
    assert recovery_time(buckets, baseline=1.0, first_inject=0.5, last_revert=None,
                         width=1.0) is None


def test_a_drop_before_the_first_injection_does_not_count() -> None:
    # bucket 0 is bad but lies wholly before the injection at 1.0: the baseline absorbs it
    buckets = [(0.0, 0, 10), (1.0, 10, 10), (2.0, 10, 10)]
    assert recovery_time(buckets, baseline=0.5, first_inject=1.0, last_revert=1.5,
                         width=1.0) == 0.0
