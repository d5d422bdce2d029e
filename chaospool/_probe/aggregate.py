"""The live aggregator: per phase and per timeline bucket, as the operations end.

Memory does not grow with the number of operations (docs/design.md, "Long runs"): each phase
keeps counters and one latency histogram (``LogHistogram``); each closed timeline bucket keeps
six numbers (ok, fail, info, recovered, p99, max) and 13 latency-band counts (about 90 bytes).
Only the bucket being filled holds its latencies (at most one bucket width of operations), so
its p99 is exact; when the clock moves on they are sorted once (the p99, the maximum and the
bands are then read off) and go into the phase histograms -- at once when they are dense, else
with the other sorted buckets of the second, in one batch (``PhaseTally.take``): at most about
a second of latencies is ever held.

An operation counts in the phase in which it *started* (``PhaseClock``) and in the bucket in
which it *ended*. Operations are recorded when they end, so ends arrive in order on the live
probe; a replay sorts its rows by end first. An end earlier than the open bucket counts in it.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import chain

from chaospool._probe.histogram import LogHistogram, bins_between
from chaospool._probe.phases import PENDING, PhaseClock
from chaospool._probe.recorder import KIND_OUTCOMES, OK, OUTCOME_KINDS

__all__ = ("BAND_EDGES", "N_BANDS", "Aggregator", "PhaseTally")

_EPS = 1e-9


class PhaseTally:
    """Counts, latency sum/max and a latency histogram for one phase.

    ``counts[code * 3 + outcome]``: one list element per (kind, outcome) pair. An operation
    that succeeded at its first attempt -- nearly all of them -- is not counted one by one: its
    latency goes to ``fast`` and the list's length is added to ``counts[0]`` when the bucket
    closes (``take``). Every other operation is counted at once and its latency goes to
    ``buffer``. Both lists belong to the open bucket and keep their identity for the tally's
    life (the aggregator binds their ``append`` once). A closing bucket's latencies are sorted
    once (``take``); they go into the histogram at once when they are dense, else they wait in
    ``waiting``, each bucket's sorted, to go in with the rest of the second (``flush``).
    """

    __slots__ = ("buffer", "counts", "dups", "fast", "histogram", "latency_max", "latency_sum",
                 "recovered", "waiting")

    def __init__(self) -> None:
        self.counts = [0] * (len(OUTCOME_KINDS) * 3)
        self.fast: list[float] = []
        self.buffer: list[float] = []
        self.waiting: list[list[float]] = []
        self.reset()

    def reset(self) -> None:
        self.counts[:] = [0] * len(self.counts)
        self.fast.clear()
        self.buffer.clear()
        self.waiting.clear()
        self.recovered = 0
        self.dups = 0
        self.latency_sum = 0.0
        self.latency_max = 0.0
        self.histogram: LogHistogram | None = None

    @property
    def codes(self) -> list[int]:
        """Operations per kind (index = code)."""
        c = self.counts
        codes = [c[i] + c[i + 1] + c[i + 2] for i in range(0, len(c), 3)]
        codes[OK] += len(self.fast)
        return codes

    @property
    def outcomes(self) -> list[int]:
        """Operations per outcome: ok, fail, info."""
        outcomes = [sum(self.counts[k::3]) for k in range(3)]
        outcomes[OK] += len(self.fast)
        return outcomes

    @property
    def total(self) -> int:
        return sum(self.counts) + len(self.fast)

    def take(self) -> list[float]:
        """Close the open bucket: count ``fast``, sort its latencies (negative ones, from a
        clock that went back, as 0) and hand them over; into the histogram now if dense.

        Why not always now, nor always a second later: the histogram's walk costs a ``log``
        and a bisection (~0.7 µs) per occupied bin. A bucket of 40,000 calls to a fast pool
        occupies a few hundred bins: at once is cheapest, while merging ten such buckets
        would cost ~170 ns a value. A bucket of the process pool's ~5,000 noop calls spans
        ~600-2,000 bins (more on a loaded machine): walking a second's merged buckets, where
        the bins are shared, costs ~60 ns a value instead of 100-300 (docs/design.md,
        "Performance").
        """
        fast, buffer = self.fast, self.buffer
        self.counts[0] += len(fast)
        values = fast + buffer if buffer else fast[:]
        fast.clear()
        buffer.clear()
        if not values:
            return values
        values.sort()
        if values[0] < 0:
            values[:bisect_left(values, 0.0)] = [0.0] * bisect_left(values, 0.0)
        self.latency_sum += sum(values)
        self.latency_max = max(self.latency_max, values[-1])
        if _dense(values):
            self._record(values)
        else:
            self.waiting.append(values)
        return values

    def flush(self) -> None:
        """Move the open bucket and the waiting latencies into the histogram (one batch)."""
        self.take()
        waiting = self.waiting
        if not waiting:
            return
        # sorted runs: one merge pass (timsort finds the runs)
        self._record(waiting[0] if len(waiting) == 1 else sorted(chain.from_iterable(waiting)))
        waiting.clear()

    def _record(self, ordered: list[float]) -> None:
        if self.histogram is None:
            self.histogram = LogHistogram()
        self.histogram.record_sorted(ordered)

    def move_open(self, other: PhaseTally) -> None:
        """Take over ``other``'s open bucket (its latencies and what they count)."""
        self.fast.extend(other.fast)
        other.fast.clear()
        self.buffer.extend(other.buffer)
        other.buffer.clear()

    def absorb(self, other: PhaseTally) -> None:
        """Add ``other``'s operations to this tally and empty ``other``."""
        self.absorb_copy(other)
        other.reset()

    def absorb_copy(self, other: PhaseTally) -> None:
        """Add ``other``'s operations to this tally (``other`` is flushed first)."""
        other.flush()
        self.counts[:] = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.recovered += other.recovered
        self.dups += other.dups
        self.latency_sum += other.latency_sum
        self.latency_max = max(self.latency_max, other.latency_max)
        if other.histogram is not None:
            if self.histogram is None:
                self.histogram = LogHistogram()
            self.histogram.add(other.histogram)


def _dense(ordered: Sequence[float]) -> bool:
    """Whether ascending latencies occupy at most one histogram bin per 16 values: estimated
    as the bins their middle spans, plus one for each value outside it (outliers spread)."""
    n = len(ordered)
    cut = n // 64
    return bins_between(ordered[cut], ordered[n - 1 - cut]) + 2 * cut <= n / 16


# Upper edges (seconds) of the latency bands each timeline bucket counts, for the report's
# latency heat map (docs/reports.md); the last band is everything slower.
BAND_EDGES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
N_BANDS = len(BAND_EDGES) + 1
_NO_BANDS = (0,) * N_BANDS


def _band_counts(ordered: Sequence[float]) -> list[int]:
    """Operations per latency band of ascending latencies (a band holds the values up to and
    including its edge)."""
    cumulative = [bisect_right(ordered, edge) for edge in BAND_EDGES]
    cumulative.append(len(ordered))
    return [b - a for a, b in zip([0, *cumulative], cumulative, strict=False)]


class Aggregator:
    """Tallies per phase (before, during, after, pending) and per bucket of ``width`` seconds.

    The probe's hot path is ``add_ok`` (an operation that succeeded at its first attempt): a
    comparison with the open bucket's end, one with the start of the *lane* -- past the latest
    phase boundary every start has one phase (``PhaseClock.lane``), whose open list is bound
    when the phase clock changes -- and an append of the latency to it: no per-operation
    counter, no phase lookup, no allocation beyond the float. ``add`` records any other
    operation. The per-bucket work (sort, exact p99, bands, histogram, counts derived from the
    phases' totals) happens when a bucket closes (docs/design.md, "Long runs").
    """

    def __init__(self, width: float, phases: PhaseClock | None = None) -> None:
        if not 0 < width <= 1.0:
            raise ValueError(f"timeline bucket width must be in (0, 1] seconds, not {width}")
        self.width = width
        self.phases = phases or PhaseClock(0)
        self.slots = [PhaseTally() for _ in range(4)]
        # bound once: the hot path does no attribute chains
        self._phase_of = self.phases.phase_of
        self._fast = [slot.fast.append for slot in self.slots]
        self._appends = [slot.buffer.append for slot in self.slots]
        self._counts = [slot.counts for slot in self.slots]
        # closed buckets, index = bucket number
        self.ok, self.fail, self.info, self.recovered = (array("I") for _ in range(4))
        self.p99 = array("d")
        self.max = array("d")
        # per closed bucket, operations per latency band (BAND_EDGES): the report's heat map
        self.bands = array("I")
        self._bucket = 0
        self.edge = self._edge_of(0)
        self._totals = [0, 0, 0, 0]  # ok, fail, info, recovered when the open bucket opened
        self._per_flush = max(1, round(1.0 / width))  # buckets between histogram fills
        self.phases.on_fold = self._fold
        self.phases.on_change = self._relane
        self._relane()
        self.last_end = 0.0
        self.cancelled = 0
        self._finished = False

    def __len__(self) -> int:
        return sum(slot.total for slot in self.slots)

    @property
    def succeeded(self) -> int:
        # an ok outcome is always kind ok: cell OK * 3 + OK, plus the fast ones
        return sum(slot.counts[OK * 3 + OK] + len(slot.fast) for slot in self.slots)

    def add_ok(self, start: float, end: float) -> None:
        """One operation that succeeded at its first attempt (``add(start, end, OK, 1)``)."""
        if end < self.edge and start >= self.lo:
            self.lane.append(end - start)
            return
        if end >= self.edge:
            self._roll(end)
        self._fast[self._phase_of(start)](end - start)

    def _relane(self) -> None:
        """The phase clock changed: the lane's start and its phase's open list (the list, not
        its bound ``append``: an attribute holding a bound method is not specialised by
        CPython 3.11, a list's ``append`` is)."""
        self.lo, phase = self.phases.lane()
        self.lane = self.slots[phase].fast

    def add(self, start: float, end: float, code: int, attempts: int,
            outcome: int = -1, dup: bool = False) -> None:
        """One operation: ``code`` its kind, ``outcome`` ok/fail/info (-1: the kind's usual)."""
        if outcome < 0:
            outcome = KIND_OUTCOMES[code]
        if end >= self.edge:
            self._roll(end)
        slot = self._phase_of(start)
        self._appends[slot](end - start)
        self._counts[slot][code * 3 + outcome] += 1
        if attempts > 1 and code == OK:
            tally = self.slots[slot]
            tally.recovered += 1
            tally.dups += dup
        self.last_end = max(self.last_end, end)

    def _edge_of(self, bucket: int) -> float:
        """Where bucket ``bucket + 1`` starts, a hair early: ``_roll`` decides exactly."""
        return (bucket + 1 - 2 * _EPS) * self.width

    def _roll(self, end: float) -> None:
        """Close the open bucket (and any empty ones) if ``end`` lies beyond it."""
        self.last_end = max(self.last_end, end)
        bucket = int(end / self.width + _EPS)
        if bucket <= self._bucket:
            return
        self._close_bucket()
        for _ in range(self._bucket + 1, bucket):
            self._append_bucket(0, 0, 0, 0, math.nan)
            self.max.append(math.nan)
            self.bands.extend(_NO_BANDS)
        if bucket // self._per_flush != self._bucket // self._per_flush:
            for slot in self.slots:
                slot.flush()
        self._bucket = bucket
        self.edge = self._edge_of(bucket)

    def _close_bucket(self) -> None:
        runs = [run for run in (slot.take() for slot in self.slots) if run]
        values = runs[0] if len(runs) == 1 else sorted(chain.from_iterable(runs))
        n = len(values)
        self.max.append(values[-1] if n else math.nan)
        self.bands.extend(_band_counts(values))
        totals = self._outcome_totals()
        ok, fail, info, recovered = (now - then for now, then in zip(totals, self._totals,
                                                                      strict=True))
        self._totals = totals
        # the exact p99: the ceil(0.99 n)-th smallest
        self._append_bucket(ok, fail, info, recovered,
                            values[math.ceil(0.99 * n) - 1] if n else math.nan)

    def _outcome_totals(self) -> list[int]:
        """ok, fail, info and recovered over every phase, the open bucket's fast ones taken."""
        totals = [0, 0, 0, 0]
        for slot in self.slots:
            counts = slot.counts
            for k in range(3):
                totals[k] += sum(counts[k::3])
            totals[3] += slot.recovered
        return totals

    def _append_bucket(self, ok: int, fail: int, info: int, recovered: int, p99: float) -> None:
        self.ok.append(ok)
        self.fail.append(fail)
        self.info.append(info)
        self.recovered.append(recovered)
        self.p99.append(p99)

    def _fold(self, phase: int) -> None:
        """The phase clock settled the provisional slot: move it to ``phase``."""
        target, pending = self.slots[phase], self.slots[PENDING]
        target.move_open(pending)  # the open bucket's latencies move with their counts
        target.absorb(pending)

    def finish(self, inject: float | None, revert: float | None) -> None:
        """The run is over: close the open bucket and settle the provisional phase (once)."""
        if self._finished:
            return
        self._finished = True
        self.phases.close(inject, revert)
        self._close_bucket()
        self._bucket += 1
        for slot in self.slots:
            slot.flush()

    def buckets(self) -> int:
        return len(self.ok)
