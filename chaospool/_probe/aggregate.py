"""The live aggregator: per phase and per timeline bucket, as the operations end.

Memory does not grow with the number of operations (docs/design.md, "Long runs"): each phase
keeps counters and one HdrHistogram of latencies; each closed timeline bucket keeps five numbers
(ok, fail, info, recovered, p99 -- about 24 bytes). Only the bucket being filled holds its
latencies (at most one bucket width of operations), so its p99 is exact; when the clock moves
on they are folded into the phase histograms in one batch and dropped.

An operation counts in the phase in which it *started* (``PhaseClock``) and in the bucket in
which it *ended*. Operations are recorded when they end, so ends arrive in order on the live
probe; a replay sorts its rows by end first. An end earlier than the open bucket counts in it.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from itertools import chain
from typing import Any

from hdrh.histogram import HdrHistogram

from chaospool._probe.phases import PENDING, PhaseClock
from chaospool._probe.recorder import KIND_OUTCOMES, OK, OUTCOME_KINDS

__all__ = ("Aggregator", "PhaseTally")

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour; slower operations are clamped to it
SIGNIFICANT = 3
_EPS = 1e-9


class PhaseTally:
    """Counts, latency sum/max and a latency histogram (µs) for one phase."""

    __slots__ = ("buffer", "codes", "dups", "histogram", "latency_max", "latency_sum",
                 "outcomes", "recovered")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.codes = [0] * len(OUTCOME_KINDS)
        self.outcomes = [0, 0, 0]
        self.recovered = 0
        self.dups = 0
        self.latency_sum = 0.0
        self.latency_max = 0.0
        self.histogram: Any = None
        self.buffer = array("d")  # latencies of the open bucket, not yet in the histogram

    @property
    def total(self) -> int:
        return sum(self.outcomes)

    def flush(self) -> None:
        """Move the buffered latencies into the histogram. Equal microsecond values are
        recorded once, with their count: far fewer histogram calls than operations."""
        buffer = self.buffer
        if not buffer:
            return
        self.latency_sum += math.fsum(buffer)
        self.latency_max = max(self.latency_max, max(buffer))
        if self.histogram is None:
            self.histogram = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT)
        record = self.histogram.record_value
        for value, count in Counter([round(x * 1e6) for x in buffer]).items():
            record(min(HIGHEST_US, value), count)
        self.buffer = array("d")

    def absorb(self, other: PhaseTally) -> None:
        """Add ``other``'s operations to this tally and empty ``other``."""
        self.absorb_copy(other)
        other.reset()

    def absorb_copy(self, other: PhaseTally) -> None:
        """Add ``other``'s operations to this tally (``other``'s buffer is flushed first)."""
        other.flush()
        self.codes = [a + b for a, b in zip(self.codes, other.codes, strict=True)]
        self.outcomes = [a + b for a, b in zip(self.outcomes, other.outcomes, strict=True)]
        self.recovered += other.recovered
        self.dups += other.dups
        self.latency_sum += other.latency_sum
        self.latency_max = max(self.latency_max, other.latency_max)
        if other.histogram is not None:
            if self.histogram is None:
                self.histogram = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT)
            self.histogram.add(other.histogram)


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
        # closed buckets, index = bucket number
        self.ok, self.fail, self.info, self.recovered = (array("I") for _ in range(4))
        self.p99 = array("d")
        self._bucket = 0
        self._current = [0, 0, 0, 0]  # ok, fail, info, recovered of the open bucket
        self.phases.on_fold = self._fold
        self.last_end = 0.0
        self.cancelled = 0
        self._finished = False

    def __len__(self) -> int:
        return sum(sum(s.outcomes) for s in self.slots)

    @property
    def succeeded(self) -> int:
        return sum(s.outcomes[OK] for s in self.slots)

    def add(self, start: float, end: float, code: int, attempts: int,
            outcome: int = -1, dup: bool = False) -> None:
        """One operation: ``code`` its kind, ``outcome`` ok/fail/info (-1: the kind's usual)."""
        if outcome < 0:
            outcome = KIND_OUTCOMES[code]
        bucket = int(end / self.width + _EPS)
        if bucket > self._bucket:
            self._roll(bucket)
        tally = self.slots[self.phases.phase_of(start)]
        tally.buffer.append(end - start if end > start else 0.0)
        tally.codes[code] += 1
        tally.outcomes[outcome] += 1
        current = self._current
        current[outcome] += 1
        if attempts > 1 and code == OK:
            tally.recovered += 1
            current[3] += 1
            tally.dups += dup
        self.last_end = end

    def _roll(self, bucket: int) -> None:
        """Close the open bucket (and any empty ones up to ``bucket``)."""
        self._close_bucket()
        for _ in range(self._bucket + 1, bucket):
            self._append_bucket(0, 0, 0, 0, math.nan)
        self._bucket = bucket

    def _close_bucket(self) -> None:
        latencies = sorted(chain.from_iterable(s.buffer for s in self.slots))
        p99 = latencies[math.ceil(0.99 * len(latencies)) - 1] if latencies else math.nan
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
        target = self.slots[phase]
        target.buffer.extend(self.slots[PENDING].buffer)
        self.slots[PENDING].buffer = array("d")
        target.absorb(self.slots[PENDING])

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
