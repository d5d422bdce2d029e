"""From recorded outcomes to the journal's ``metrics``, ``phases`` and ``timeline``.

Everything is computed here, once, after the run: a column-wise pass over the recorder's arrays
fills a tally per phase (by the operation's *start*) and per timeline bucket (by its *end*), each
with its own HdrHistogram of latencies in microseconds. Percentiles come from those histograms; the
mean and the maximum are exact.

Empty sets: a phase or bucket without operations has ``success_rate``, ``error_rate`` and every
latency ``null`` (there is nothing to measure), counts 0 and ``throughput`` 0.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from chaospool._probe.recorder import ERROR_KINDS, OK, OUTCOME_KINDS, Recorder

__all__ = (
    "LATENCY_BAND_EDGES", "PHASES", "FaultWindow", "bucket_width", "recovery_time", "summarize",
)

PHASES = ("before", "during", "after")
FaultWindow = tuple[str, float | None, float | None]  # (name, injected_at, reverted_at)

_LOWEST_US = 1
_HIGHEST_US = 3_600_000_000  # one hour; slower operations are clamped to it
_SIGNIFICANT = 3
_PERCENTILES = {"p50_latency": 50.0, "p90_latency": 90.0, "p95_latency": 95.0,
                "p99_latency": 99.0, "p999_latency": 99.9}
# Upper edges (seconds) of the latency bands each timeline bucket counts, for the report's
# latency heat map (docs/reports.md); the last band is everything slower.
LATENCY_BAND_EDGES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
_BAND_EDGES_US = tuple(round(edge * 1e6) for edge in LATENCY_BAND_EDGES)
_RECOVERY_SLACK = 0.01  # "within 0.01 of the before phase's success rate"
_EPS = 1e-9


def bucket_width(duration: float) -> float:
    """A timeline bucket width (at most 1 s) giving at most ~120 buckets for ``duration``."""
    for width in (0.1, 0.25, 0.5):
        if duration / width <= 120:
            return width
    return 1.0


@dataclass
class _Tally:
    """Counts and a latency histogram for one phase or one bucket."""

    total: int = 0
    succeeded: int = 0
    recovered: int = 0
    latency_sum: float = 0.0
    latency_max: float = 0.0
    by_code: list[int] = field(default_factory=lambda: [0] * len(OUTCOME_KINDS))
    histogram: Any = None
    bands: list[int] | None = None

    def fill(self, latencies: Sequence[float]) -> None:
        """Total, latency sum/max and histogram from this group's latencies (``by_code`` and
        ``recovered`` are counted already). Equal microsecond values are recorded once, with
        their count: far fewer histogram calls than operations."""
        self.total = len(latencies)
        self.succeeded = self.by_code[OK]
        self.latency_sum = math.fsum(latencies)
        self.latency_max = max(latencies)
        self.histogram = histogram = HdrHistogram(_LOWEST_US, _HIGHEST_US, _SIGNIFICANT)
        self.bands = bands = [0] * (len(LATENCY_BAND_EDGES) + 1)
        for value, count in Counter([round(x * 1e6) for x in latencies]).items():
            histogram.record_value(min(_HIGHEST_US, value), count)
            bands[bisect_left(_BAND_EDGES_US, value)] += count

    @property
    def errors(self) -> int:
        return self.total - self.succeeded

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.total if self.total else None

    def max_latency(self) -> float | None:
        return round(self.latency_max, 6) if self.total else None

    def latency_bands(self) -> list[int]:
        """Operations per latency band (``LATENCY_BAND_EDGES``)."""
        return self.bands or [0] * (len(LATENCY_BAND_EDGES) + 1)

    def p99(self) -> float | None:
        if not self.total:
            return None
        value: int = self.histogram.get_value_at_percentile(99.0)
        return round(min(value / 1e6, self.latency_max), 6)

    def percentiles(self) -> dict[str, float | None]:
        if not self.total:
            return dict.fromkeys(_PERCENTILES)
        values = self.histogram.get_percentile_to_value_dict(list(_PERCENTILES.values()))
        # The histogram answers with its bucket's upper bound; never report above the true max.
        return {key: round(min(values[p] / 1e6, self.latency_max), 6)
                for key, p in _PERCENTILES.items()}


def _metrics(tally: _Tally, length: float, restarts: int | None,
             recovery: float | None) -> dict[str, Any]:
    total = tally.total
    mean = round(tally.latency_sum / total, 6) if total else None
    return {
        "total": total,
        "succeeded": tally.succeeded,
        "errors": tally.errors,
        "recovered": tally.recovered,
        "success_rate": tally.success_rate,
        "error_rate": tally.errors / total if total else None,
        "throughput": total / length if total and length > 0 else 0.0,
        "mean_latency": mean,
        **tally.percentiles(),
        "max_latency": round(tally.latency_max, 6) if total else None,
        "worker_restarts": restarts,
        "recovery_time": recovery,
        "errors_by_kind": {kind: tally.by_code[i + 1] for i, kind in enumerate(ERROR_KINDS)},
    }


def _windows(faults: Iterable[FaultWindow | Mapping[str, Any]]) -> list[FaultWindow]:
    """Fault windows from ``(name, injected_at, reverted_at)`` tuples or journal fault dicts."""
    windows: list[FaultWindow] = []
    for fault in faults:
        if isinstance(fault, Mapping):
            name = fault.get("name") or fault.get("fault") or "?"
            windows.append((str(name), fault.get("injected_at"), fault.get("reverted_at")))
        else:
            windows.append(fault)
    return [w for w in windows if w[1] is not None]


@dataclass(frozen=True)
class _Bounds:
    """Phase boundaries on the run clock: before = [0, inject), during = [inject, revert)."""

    inject: float
    revert: float
    end: float

    def phase_of(self, start: float) -> int:
        return 0 if start < self.inject else 1 if start < self.revert else 2

    def lengths(self) -> tuple[float, float, float]:
        return (self.inject, self.revert - self.inject, self.end - self.revert)


def _bounds(first_inject: float | None, last_revert: float | None, end: float) -> _Bounds:
    if first_inject is None:
        # No fault: every operation is "before", even one that started after ``end``.
        return _Bounds(math.inf, math.inf, end)
    inject = max(0.0, first_inject)
    revert = end if last_revert is None else max(inject, last_revert)
    end = max(end, revert)
    return _Bounds(inject, revert, end)


def _active(windows: Sequence[FaultWindow], t: float, width: float, end: float) -> list[str]:
    """Faults whose closed window [injected_at, reverted_at] overlaps bucket [t, t + width)."""
    names = []
    for name, injected, reverted in windows:
        assert injected is not None  # filtered by _windows
        until = end if reverted is None else reverted
        if injected < t + width and until >= t:
            names.append(name)
    return names


def recovery_time(
    buckets: Sequence[tuple[float, int, int]],
    *,
    baseline: float | None,
    first_inject: float | None,
    last_revert: float | None,
    width: float,
) -> float | None:
    """Seconds from the last revert to the first bucket back at baseline.

    ``buckets`` are ``(t, succeeded, total)``; a bucket without operations has no success rate
    and is skipped. "Back at baseline" means a success rate >= ``baseline - 0.01`` (a rate above
    the baseline counts as recovered). "Never dropped" means no bucket overlapping
    ``[first_inject, end)`` fell below that line; then the answer is 0. It is ``None`` when the
    rate never came back, when a fault was never reverted, or when there is no baseline (no
    operation started before the first fault). With no fault at all it is 0.
    """
    if first_inject is None:
        return 0.0
    if last_revert is None or baseline is None:
        return None
    floor = baseline - _RECOVERY_SLACK - _EPS

    def low(succeeded: int, total: int) -> bool:
        return total > 0 and succeeded / total < floor

    if not any(low(s, n) for t, s, n in buckets if t + width > first_inject):
        return 0.0
    for t, s, n in buckets:
        if t >= last_revert - _EPS and n and not low(s, n):
            return round(max(0.0, t - last_revert), 6)
    return None


def _group(index: Sequence[int], n: int, recorder: Recorder,
           latencies: Sequence[float]) -> list[_Tally]:
    """One tally per group, ``index[i]`` being operation i's group (a phase or a bucket)."""
    tallies = [_Tally() for _ in range(n)]
    codes, attempts = recorder.codes, recorder.attempts
    for (group, code), count in Counter(zip(index, codes, strict=True)).items():
        tallies[group].by_code[code] += count
    recovered = Counter(g for g, c, a in zip(index, codes, attempts, strict=True)
                        if c == OK and a > 1)
    for group, count in recovered.items():
        tallies[group].recovered = count
    members: list[list[float]] = [[] for _ in range(n)]
    for group, latency in zip(index, latencies, strict=True):
        members[group].append(latency)
    for tally, values in zip(tallies, members, strict=True):
        if values:
            tally.fill(values)
    return tallies


def _tally_all(recorder: Recorder, bounds: _Bounds, width: float,
               n_buckets: int) -> tuple[list[_Tally], list[_Tally]]:
    """Phases by each operation's start, buckets by its end (column-wise: this runs once per
    recorded operation, so the per-operation work is list comprehensions and C counters)."""
    starts, ends = recorder.starts, recorder.ends
    latencies = [max(0.0, e - s) for s, e in zip(starts, ends, strict=True)]
    edges = (bounds.inject, bounds.revert)
    phase_index = [bisect_right(edges, s) for s in starts]
    last = n_buckets - 1
    bucket_index = [min(last, int(e / width + _EPS)) for e in ends]
    return (_group(phase_index, len(PHASES), recorder, latencies),
            _group(bucket_index, n_buckets, recorder, latencies))


def _merge(tallies: Sequence[_Tally]) -> _Tally:
    merged = _Tally()
    for tally in tallies:
        merged.total += tally.total
        merged.succeeded += tally.succeeded
        merged.recovered += tally.recovered
        merged.latency_sum += tally.latency_sum
        merged.latency_max = max(merged.latency_max, tally.latency_max)
        merged.by_code = [a + b for a, b in zip(merged.by_code, tally.by_code, strict=True)]
        if tally.histogram is not None:
            if merged.histogram is None:
                merged.histogram = HdrHistogram(_LOWEST_US, _HIGHEST_US, _SIGNIFICANT)
            merged.histogram.add(tally.histogram)
    return merged


def _phase_restarts(restart_times: Sequence[float] | None,
                    bounds: _Bounds) -> list[int | None]:
    if restart_times is None:
        return [None, None, None]
    counts: list[int | None] = [0, 0, 0]
    for t in restart_times:
        i = bounds.phase_of(t)
        counts[i] = (counts[i] or 0) + 1
    return counts


def summarize(
    recorder: Recorder | None,
    *,
    first_inject: float | None = None,
    last_revert: float | None = None,
    end: float,
    worker_restarts: int | None = None,
    bucket: float = 1.0,
    faults: Iterable[FaultWindow | Mapping[str, Any]] = (),
    restart_times: Sequence[float] | None = None,
) -> dict[str, Any]:
    """The journal's ``metrics``, ``phases`` and ``timeline`` from the recorded outcomes.

    ``first_inject``/``last_revert`` default to what ``faults`` says (the earliest
    ``injected_at``; the latest ``reverted_at``, or ``None`` if any fault was never reverted).
    ``worker_restarts`` is the pool's total; ``restart_times`` (run clock) lets each phase count
    its own -- without them a phase's ``worker_restarts`` is ``None``. ``recovery_time`` is a
    property of the whole run and of its ``after`` phase; ``before``/``during`` carry ``None``.
    """
    if not 0 < bucket <= 1.0:
        raise ValueError(f"timeline bucket width must be in (0, 1] seconds, not {bucket}")
    if recorder is None:  # the run failed before the probe started: no operation at all
        recorder = Recorder()
    windows = _windows(faults)
    if first_inject is None and windows:
        first_inject = min(w[1] for w in windows if w[1] is not None)
    if last_revert is None and windows and all(w[2] is not None for w in windows):
        last_revert = max(w[2] for w in windows if w[2] is not None)
    bounds = _bounds(first_inject, last_revert, end)
    span = max([bounds.end, *([max(recorder.ends)] if len(recorder) else [])])
    n_buckets = max(1, math.ceil(span / bucket - _EPS))
    phases, buckets = _tally_all(recorder, bounds, bucket, n_buckets)
    overall = _merge(phases)
    times = [round(i * bucket, 6) for i in range(n_buckets)]
    recovery = recovery_time(
        [(t, b.succeeded, b.total) for t, b in zip(times, buckets, strict=True)],
        baseline=phases[0].success_rate if first_inject is not None else None,
        first_inject=first_inject, last_revert=last_revert, width=bucket,
    )
    if worker_restarts is None:
        worker_restarts = len(restart_times) if restart_times is not None else 0
    restarts = _phase_restarts(restart_times, bounds)
    lengths = bounds.lengths() if first_inject is not None else (bounds.end, 0.0, 0.0)
    return {
        "metrics": _metrics(overall, bounds.end, worker_restarts, recovery),
        "phases": {
            name: _metrics(phases[i], lengths[i], restarts[i], recovery if i == 2 else None)
            for i, name in enumerate(PHASES)
        },
        "timeline": [
            {"t": t, "succeeded": b.succeeded, "errors": b.errors, "recovered": b.recovered,
             "p99_latency": b.p99(), "max_latency": b.max_latency(),
             "latency_bands": b.latency_bands(),
             "faults_active": _active(windows, t, bucket, bounds.end)}
            for t, b in zip(times, buckets, strict=True)
        ],
    }
