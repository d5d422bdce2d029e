"""From the aggregated operations to the journal's ``metrics``, ``phases`` and ``timeline``.

The probe aggregates as it goes (:mod:`chaospool._probe.aggregate`): a tally per phase (by the
operation's *start*) and per timeline bucket (by its *end*). Summarizing only reads those
tallies, so it takes the same time after a minute or a day (docs/design.md, "Long runs").
Percentiles come from each phase's histogram (0.1 % bins); a bucket's p99, the mean and the
maximum are exact.

Empty sets: a phase or bucket without operations has ``success_rate``, ``error_rate`` and every
latency ``null`` (there is nothing to measure), counts 0 and ``throughput`` 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaospool._probe.aggregate import BAND_EDGES, N_BANDS, Aggregator, PhaseTally
from chaospool._probe.phases import PhaseClock
from chaospool._probe.recorder import ERROR_KINDS, FAIL, INFO, OK, Recorder

__all__ = (
    "LATENCY_BAND_EDGES", "PHASES", "FaultWindow", "accounting_errors", "bucket_width",
    "fault_bounds", "fault_windows", "recovery_time", "replay", "summarize",
)

PHASES = ("before", "during", "after")
FaultWindow = tuple[str, float | None, float | None]  # (name, injected_at, reverted_at)

_PERCENTILES = {"p50_latency": 50.0, "p90_latency": 90.0, "p95_latency": 95.0,
                "p99_latency": 99.0, "p999_latency": 99.9}
LATENCY_BAND_EDGES = BAND_EDGES  # of each timeline bucket's latency_bands
_RECOVERY_SLACK = 0.01  # "within 0.01 of the before phase's success rate"
_EPS = 1e-9


def bucket_width(duration: float) -> float:
    """A timeline bucket width (at most 1 s) giving at most ~120 buckets for ``duration``."""
    for width in (0.1, 0.25, 0.5):
        if duration / width <= 120:
            return width
    return 1.0


def _percentiles(tally: PhaseTally) -> dict[str, float | None]:
    if not tally.total or tally.histogram is None:
        return dict.fromkeys(_PERCENTILES)
    values = tally.histogram.percentiles(list(_PERCENTILES.values()))
    # The histogram answers with its bin's upper edge; never report above the true max.
    return {key: round(min(value, tally.latency_max), 6)
            for key, value in zip(_PERCENTILES, values, strict=True)}


def _metrics(tally: PhaseTally, length: float, restarts: int | None,
             recovery: float | None,
             consistency: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One metrics block. The consistency findings belong to the whole run: a phase's
    ``lost_updates``/``stale_reads`` are null."""
    total = tally.total
    succeeded = tally.outcomes[OK]
    errors = total - succeeded
    return {
        "total": total,
        "succeeded": succeeded,
        "errors": errors,
        "recovered": tally.recovered,
        "success_rate": succeeded / total if total else None,
        "error_rate": errors / total if total else None,
        "throughput": total / length if total and length > 0 else 0.0,
        "mean_latency": round(tally.latency_sum / total, 6) if total else None,
        **_percentiles(tally),
        "max_latency": round(tally.latency_max, 6) if total else None,
        "worker_restarts": restarts,
        "recovery_time": recovery,
        "errors_by_kind": {kind: tally.codes[i + 1] for i, kind in enumerate(ERROR_KINDS)},
        "outcomes": _outcomes(tally.outcomes),
        "indeterminate": tally.outcomes[INFO],
        "maybe_duplicated": tally.dups,
        "lost_updates": None if consistency is None else consistency["lost_updates"],
        "stale_reads": None if consistency is None else consistency["stale_reads"],
    }


def _outcomes(counts: Sequence[int]) -> dict[str, int]:
    return {"ok": counts[OK], "fail": counts[FAIL], "info": counts[INFO]}


def fault_windows(faults: Iterable[FaultWindow | Mapping[str, Any]]) -> list[FaultWindow]:
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


def _active_lists(windows: Sequence[FaultWindow], n: int, width: float,
                  end: float) -> list[list[str]]:
    """Per bucket, the faults whose closed window [injected_at, reverted_at] overlaps bucket
    [t, t + width): one pass per window over the buckets it covers, not per bucket and fault."""
    active: list[list[str]] = [[] for _ in range(n)]
    for name, injected, reverted in windows:
        assert injected is not None  # filtered by fault_windows
        until = end if reverted is None else reverted
        first = max(0, math.floor(injected / width + _EPS))
        while first > 0 and injected < first * width:
            first -= 1
        i = first
        while i < n and i * width <= until:
            if injected < (i + 1) * width:
                active[i].append(name)
            i += 1
    return active


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


def _phase_restarts(restart_times: Sequence[float] | None,
                    bounds: _Bounds) -> list[int | None]:
    if restart_times is None:
        return [None, None, None]
    counts: list[int | None] = [0, 0, 0]
    for t in restart_times:
        i = bounds.phase_of(t)
        counts[i] = (counts[i] or 0) + 1
    return counts


def replay(recorder: Recorder | None, *, width: float, first_inject: float | None,
           last_revert: float | None) -> Aggregator:
    """An aggregator fed with a recorder's rows (ordered by end), with known phase bounds."""
    aggregator = Aggregator(width, PhaseClock.fixed(first_inject, last_revert))
    if recorder is None:  # the run failed before the probe started: no operation at all
        return aggregator
    rows = sorted(zip(recorder.ends, recorder.starts, recorder.codes, recorder.attempts,
                      recorder.outcomes, recorder.dups, strict=True))
    add = aggregator.add
    for end, start, code, attempts, outcome, dup in rows:
        add(start, end, code, attempts, outcome, bool(dup))
    aggregator.cancelled = recorder.cancelled
    return aggregator


def fault_bounds(windows: Sequence[FaultWindow], first_inject: float | None,
                  last_revert: float | None) -> tuple[float | None, float | None]:
    """``first_inject``/``last_revert`` unless given: the earliest ``injected_at``; the latest
    ``reverted_at``, or ``None`` if any fault was never reverted."""
    if first_inject is None and windows:
        first_inject = min(w[1] for w in windows if w[1] is not None)
    if last_revert is None and windows and all(w[2] is not None for w in windows):
        last_revert = max(w[2] for w in windows if w[2] is not None)
    return first_inject, last_revert


def _column(values: Any, n: int, fill: Any) -> list[Any]:
    """A bucket column padded (or cut) to ``n`` buckets."""
    column = list(values[:n])
    return column + [fill] * (n - len(column))


def _timeline(agg: Aggregator, n: int, windows: Sequence[FaultWindow],
              end: float) -> list[dict[str, Any]]:
    """One row per bucket; column-wise, since a day has 86,400 of them."""
    width = agg.width
    exact = (width * 4).is_integer()  # multiples of 1/4 s are exact in binary: no rounding
    times = [i * width for i in range(n)] if exact else [round(i * width, 6) for i in range(n)]
    p99s = [None if x != x else round(x, 6) for x in _column(agg.p99, n, math.nan)]
    maxes = [None if x != x else round(x, 6) for x in _column(agg.max, n, math.nan)]
    columns = zip(times, _column(agg.ok, n, 0), _column(agg.fail, n, 0),
                  _column(agg.info, n, 0), _column(agg.recovered, n, 0), p99s, maxes,
                  _band_rows(agg, n), _active_lists(windows, n, width, end), strict=True)
    return [{"t": t, "succeeded": ok, "errors": fail + info, "recovered": rec,
             "p99_latency": p99, "max_latency": top, "latency_bands": bands,
             "faults_active": active, "ok": ok, "fail": fail, "info": info}
            for t, ok, fail, info, rec, p99, top, bands, active in columns]


def _band_rows(agg: Aggregator, n: int) -> list[list[int]]:
    """Each bucket's operations per latency band (``LATENCY_BAND_EDGES``)."""
    flat = agg.bands
    rows = [flat[i * N_BANDS:(i + 1) * N_BANDS].tolist() for i in range(min(n, agg.buckets()))]
    return rows + [[0] * N_BANDS for _ in range(n - len(rows))]


def summarize(
    recorder: Recorder | Aggregator | None,
    *,
    first_inject: float | None = None,
    last_revert: float | None = None,
    end: float,
    worker_restarts: int | None = None,
    bucket: float = 1.0,
    faults: Iterable[FaultWindow | Mapping[str, Any]] = (),
    restart_times: Sequence[float] | None = None,
    consistency: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The journal's ``metrics``, ``phases`` and ``timeline`` from the recorded outcomes.

    ``first_inject``/``last_revert`` default to what ``faults`` says (the earliest
    ``injected_at``; the latest ``reverted_at``, or ``None`` if any fault was never reverted).
    A live ``Aggregator`` already holds its phases and its bucket width (``bucket`` is then
    ignored); a ``Recorder``'s rows are replayed with these bounds.
    ``worker_restarts`` is the pool's total; ``restart_times`` (run clock) lets each phase count
    its own -- without them a phase's ``worker_restarts`` is ``None``. ``recovery_time`` is a
    property of the whole run and of its ``after`` phase; ``before``/``during`` carry ``None``.
    ``consistency``: the checker's findings (``Checker.to_dict()``), or None without
    ``load.consistency`` -- then ``lost_updates``/``stale_reads`` are null.
    """
    if not 0 < bucket <= 1.0:
        raise ValueError(f"timeline bucket width must be in (0, 1] seconds, not {bucket}")
    windows = fault_windows(faults)
    first_inject, last_revert = fault_bounds(windows, first_inject, last_revert)
    if isinstance(recorder, Aggregator):
        agg = recorder
    else:
        agg = replay(recorder, width=bucket, first_inject=first_inject, last_revert=last_revert)
    agg.finish(first_inject, last_revert)
    width = agg.width
    bounds = _bounds(first_inject, last_revert, end)
    span = max(bounds.end, agg.last_end)
    n_buckets = max(1, math.ceil(span / width - _EPS), agg.buckets() if len(agg) else 0)
    phases = agg.slots[:3]
    overall = PhaseTally()
    for tally in phases:
        overall.absorb_copy(tally)
    timeline = _timeline(agg, n_buckets, windows, bounds.end)
    recovery = recovery_time(
        [(b["t"], b["succeeded"], b["succeeded"] + b["errors"]) for b in timeline],
        baseline=_rate(phases[0]) if first_inject is not None else None,
        first_inject=first_inject, last_revert=last_revert, width=width,
    )
    if worker_restarts is None:
        worker_restarts = len(restart_times) if restart_times is not None else 0
    restarts = _phase_restarts(restart_times, bounds)
    lengths = bounds.lengths() if first_inject is not None else (bounds.end, 0.0, 0.0)
    summary = {
        "metrics": _metrics(overall, bounds.end, worker_restarts, recovery, consistency),
        "phases": {
            name: _metrics(phases[i], lengths[i], restarts[i], recovery if i == 2 else None)
            for i, name in enumerate(PHASES)
        },
        "timeline": timeline,
    }
    if consistency is not None:
        summary["consistency"] = dict(consistency)
    return summary


def accounting_errors(summary: Mapping[str, Any]) -> list[str]:
    """Where ``ok + fail + info = total`` does not hold (overall, a phase, a bucket): a bug
    in the accounting, never a property of the pool (docs/reports.md, "Outcomes")."""
    blocks = [("overall", summary["metrics"]), *summary["phases"].items()]
    errors = [f"{name}: outcomes {m['outcomes']} do not add up to total {m['total']}"
              for name, m in blocks if sum(m["outcomes"].values()) != m["total"]]
    errors += [f"timeline bucket t={b['t']}: ok + fail + info != succeeded + errors"
               for b in summary["timeline"]
               if b["ok"] + b["fail"] + b["info"] != b["succeeded"] + b["errors"]]
    return errors


def _rate(tally: PhaseTally) -> float | None:
    total = tally.total
    return tally.outcomes[OK] / total if total else None
