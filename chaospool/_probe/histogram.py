"""A latency histogram with log-spaced bins of 0.1 %, filled in batches.

Why not HdrHistogram here: the aggregator folds a bucket's latencies into its phase's histogram
every bucket during the run, and ``HdrHistogram.record_value`` is a Python call per distinct
value (about a microsecond each, i.e. per operation on the probe's loop). Bins are 0.1 % wide
from 1 µs to one hour (22,006 of them, 176 KB per phase), so a percentile is reported at most
0.1 % above the true value (and never above the maximum).

The live aggregator hands its latencies over *sorted* (it sorts each timeline bucket anyway for
the bucket's exact p99 and latency bands), and ``record_sorted`` then costs a ``log`` and a
``bisect`` per occupied bin instead of a ``log`` per value: at 25k operations a second about
1,500 bins are occupied, so the histogram costs tens of nanoseconds per operation, not hundreds.
Each bin's end is found exactly (to the ulp) once and kept, so both ways give the same bins.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate

__all__ = ("LogHistogram", "bins_between")

_K = 1 / math.log1p(0.001)  # bins per unit of ln(µs)
_BINS = int(math.log(3_600_000_000) * _K) + 1  # 1 µs .. one hour; slower values are clamped
_TOP = _BINS - 1


# where each bin ends: the smallest latency of the next bin, found on first use (176 KB, once)
_ENDS = array("d", bytes(8 * _BINS))


def _bin(x: float) -> int:
    """The bin of a latency ``x`` (seconds)."""
    return min(_TOP, int(math.log(x * 1e6) * _K)) if x > 1e-6 else 0


def bins_between(low: float, high: float) -> float:
    """How many bins lie from latency ``low`` to ``high`` (both in seconds, ``low <= high``)."""
    return math.log(max(high, 1e-6) / max(low, 1e-6)) * _K


def _end_of(b: int) -> float:
    """The smallest float whose bin is past ``b`` (``_bin`` is monotonic): the formula's
    value, then corrected by a few ulps where rounding puts it on the wrong side."""
    end = _ENDS[b]
    if end:
        return end
    end = math.exp((b + 1) / _K) / 1e6
    while _bin(end) <= b:
        end = math.nextafter(end, math.inf)
    while _bin(below := math.nextafter(end, -math.inf)) > b:
        end = below
    _ENDS[b] = end
    return end


class LogHistogram:
    """Counts of latencies (seconds) in log-spaced bins."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = array("q", bytes(8 * _BINS))
        self.total = 0

    def record(self, latencies: Iterable[float]) -> None:
        """Add a batch of latencies in seconds (in any order)."""
        self.record_sorted(sorted(latencies))

    def record_sorted(self, values: Sequence[float]) -> None:
        """Add latencies in ascending order: one bin at a time, each found by a bisection
        (the same bins ``record`` gives)."""
        counts, n, ends, log = self.counts, len(values), _ENDS, math.log
        i = bisect_right(values, 1e-6)  # 1 µs and below: bin 0
        counts[0] += i
        while i < n:
            b = int(log(values[i] * 1e6) * _K)  # _bin, inlined: values[i] > 1 µs
            if b >= _TOP:
                counts[_TOP] += n - i
                break
            j = bisect_left(values, ends[b] or _end_of(b), i + 1)
            counts[b] += j - i
            i = j
        self.total += n

    def add(self, other: LogHistogram) -> None:
        """Merge ``other`` into this histogram."""
        self.counts = array("q", map(int.__add__, self.counts, other.counts))
        self.total += other.total

    def percentiles(self, ps: Sequence[float]) -> list[float]:
        """The value (seconds, a bin's upper edge) at each percentile in ``ps``; empty: []."""
        if not self.total:
            return []
        cumulative = list(accumulate(self.counts))
        out = []
        for p in ps:
            rank = max(1, math.ceil(p * self.total / 100 - 1e-9))  # 99.9 % of 20000: 19980
            index = bisect_left(cumulative, rank)
            out.append(math.exp((index + 1) / _K) / 1e6)
        return out
