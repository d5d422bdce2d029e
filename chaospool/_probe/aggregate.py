"""The live aggregator: per phase and per timeline bucket, as the operations end.

Memory does not grow with the number of operations (docs/design.md, "Long runs"): each phase
keeps counters and one latency histogram (``LogHistogram``); each closed timeline bucket keeps
six numbers (ok, fail, info, recovered, p99, max) and 13 latency-band counts (about 90 bytes).
Only the bucket being filled holds its latencies (at most one bucket width of operations), so
its p99 is exact; when the clock moves on they are folded into the phase histograms in one
batch and dropped.

An operation counts in the phase in which it *started* (``PhaseClock``) and in the bucket in
which it *ended*. Operations are recorded when they end, so ends arrive in order on the live
probe; a replay sorts its rows by end first. An end earlier than the open bucket counts in it.
"""

from __future__ import annotations

import heapq
import math
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from itertools import chain

from chaospool._probe.histogram import LogHistogram
from chaospool._probe.phases import PENDING, PhaseClock
from chaospool._probe.recorder import KIND_OUTCOMES, OK, OUTCOME_KINDS

__all__ = ("BAND_EDGES", "N_BANDS", "Aggregator", "PhaseTally")

_EPS = 1e-9


class PhaseTally:
    """Counts, latency sum/max and a latency histogram for one phase.

    ``counts[code * 3 + outcome]``: one list element per (kind, outcome) pair, so recording
    an operation is one increment. ``counts`` and ``buffer`` keep their identity for the
    tally's life (the aggregator binds them once); they are emptied in place.
    """

    __slots__ = ("buffer", "counts", "dups", "histogram", "latency_max", "latency_sum",
                 "recovered")

    def __init__(self) -> None:
        self.counts = [0] * (len(OUTCOME_KINDS) * 3)
        self.buffer = array("d")  # latencies of the open bucket, not yet in the histogram
        self.reset()

    def reset(self) -> None:
        self.counts[:] = [0] * len(self.counts)
        del self.buffer[:]
        self.recovered = 0
        self.dups = 0
        self.latency_sum = 0.0
        self.latency_max = 0.0
        self.histogram: LogHistogram | None = None

    @property
    def codes(self) -> list[int]:
        """Operations per kind (index = code)."""
        c = self.counts
        return [c[i] + c[i + 1] + c[i + 2] for i in range(0, len(c), 3)]

    @property
    def outcomes(self) -> list[int]:
        """Operations per outcome: ok, fail, info."""
        return [sum(self.counts[k::3]) for k in range(3)]

    @property
    def total(self) -> int:
        return sum(self.counts)

    def flush(self) -> None:
        """Move the buffered latencies into the histogram (one batch)."""
        buffer = self.buffer
        if not buffer:
            return
        self.latency_sum += math.fsum(buffer)
        self.latency_max = max(self.latency_max, max(buffer))
        if self.histogram is None:
            self.histogram = LogHistogram()
        self.histogram.record(buffer)
        del buffer[:]

    def absorb(self, other: PhaseTally) -> None:
        """Add ``other``'s operations to this tally and empty ``other``."""
        self.absorb_copy(other)
        other.reset()

    def absorb_copy(self, other: PhaseTally) -> None:
        """Add ``other``'s operations to this tally (``other``'s buffer is flushed first)."""
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


# Upper edges (seconds) of the latency bands each timeline bucket counts, for the report's
# latency heat map (docs/reports.md); the last band is everything slower.
BAND_EDGES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
N_BANDS = len(BAND_EDGES) + 1
_NO_BANDS = (0,) * N_BANDS


def _band_counts(latencies: Iterable[float]) -> list[int]:
    counts = [0] * N_BANDS
    for value in latencies:
        counts[bisect_left(BAND_EDGES, value)] += 1
    return counts


class Aggregator:
    """Tallies per phase (before, during, after, pending) and per bucket of ``width`` seconds.

    ``add`` is the probe's hot path: a handful of list and array operations, no allocation
    per operation beyond a float in the open bucket's buffer.
    """

    def __init__(self, width: float, phases: PhaseClock | None = None) -> None:
        if not 0 < width <= 1.0:
            raise ValueError(f"timeline bucket width must be in (0, 1] seconds, not {width}")
        self.width = width
        self.phases = phases or PhaseClock(0)
        self.slots = [PhaseTally() for _ in range(4)]
        # bound once: the hot path does no attribute chains
        self._phase_of = self.phases.phase_of
        self._appends = [slot.buffer.append for slot in self.slots]
        self._counts = [slot.counts for slot in self.slots]
        # closed buckets, index = bucket number
        self.ok, self.fail, self.info, self.recovered = (array("I") for _ in range(4))
        self.p99 = array("d")
        self.max = array("d")
        # per closed bucket, operations per latency band (BAND_EDGES): the report's heat map
        self.bands = array("I")
        self._bucket = 0
        self._current = [0, 0, 0, 0]  # ok, fail, info, recovered of the open bucket
        self.phases.on_fold = self._fold
        self.last_end = 0.0
        self.cancelled = 0
        self._finished = False

    def __len__(self) -> int:
        return sum(map(sum, self._counts))

    @property
    def succeeded(self) -> int:
        return sum(counts[OK * 3 + OK] for counts in self._counts)

    def add(self, start: float, end: float, code: int, attempts: int,
            outcome: int = -1, dup: bool = False) -> None:
        """One operation: ``code`` its kind, ``outcome`` ok/fail/info (-1: the kind's usual)."""
        if outcome < 0:
            outcome = KIND_OUTCOMES[code]
        bucket = int(end / self.width + _EPS)
        if bucket > self._bucket:
            self._roll(bucket)
        slot = self._phase_of(start)
        self._appends[slot](end - start if end > start else 0.0)
        self._counts[slot][code * 3 + outcome] += 1
        self._current[outcome] += 1
        if attempts > 1 and code == OK:
            self._recovered(slot, dup)
        self.last_end = end

    def _recovered(self, slot: int, dup: bool) -> None:
        tally = self.slots[slot]
        tally.recovered += 1
        tally.dups += dup
        self._current[3] += 1

    def _roll(self, bucket: int) -> None:
        """Close the open bucket (and any empty ones up to ``bucket``)."""
        self._close_bucket()
        for _ in range(self._bucket + 1, bucket):
            self._append_bucket(0, 0, 0, 0, math.nan)
            self.max.append(math.nan)
            self.bands.extend(_NO_BANDS)
        self._bucket = bucket

    def _close_bucket(self) -> None:
        n = sum(len(s.buffer) for s in self.slots)
        # the exact p99: the (n - ceil(0.99 n) + 1)-th largest, without sorting the bucket
        top = heapq.nlargest(n - math.ceil(0.99 * n) + 1,
                             chain.from_iterable(s.buffer for s in self.slots))
        p99 = top[-1] if n else math.nan
        self.max.append(top[0] if n else math.nan)
        self.bands.extend(_band_counts(chain.from_iterable(s.buffer for s in self.slots)))
        ok, fail, info, recovered = self._current
        self._append_bucket(ok, fail, info, recovered, p99)
        self._current = [0, 0, 0, 0]
        for slot in self.slots:
            slot.flush()

    def _append_bucket(self, ok: int, fail: int, info: int, recovered: int, p99: float) -> None:
        self.ok.append(ok)
        self.fail.append(fail)
        self.info.append(info)
        self.recovered.append(recovered)
        self.p99.append(p99)

    def _fold(self, phase: int) -> None:
        """The phase clock settled the provisional slot: move it to ``phase``."""
        target, pending = self.slots[phase], self.slots[PENDING]
        target.buffer.extend(pending.buffer)  # the open bucket's latencies move with them
        del pending.buffer[:]
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
