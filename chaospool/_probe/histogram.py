"""A latency histogram with log-spaced bins of 0.1 %, filled in batches.

Why not HdrHistogram here: the aggregator folds a bucket's latencies into its phase's histogram
every bucket during the run, and ``HdrHistogram.record_value`` is a Python call per distinct
value (about a microsecond each, i.e. per operation on the probe's loop). Here a batch is a
list comprehension (one ``log`` per value), a C ``Counter`` and one array update per distinct
bin. Bins are 0.1 % wide from 1 µs to one hour (22,006 of them, 176 KB per phase), so a
percentile is reported at most 0.1 % above the true value (and never above the maximum).
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import accumulate

__all__ = ("LogHistogram",)

_K = 1 / math.log1p(0.001)  # bins per unit of ln(µs)
_BINS = int(math.log(3_600_000_000) * _K) + 1  # 1 µs .. one hour; slower values are clamped


class LogHistogram:
    """Counts of latencies (seconds) in log-spaced bins."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = array("q", bytes(8 * _BINS))
        self.total = 0

    def record(self, latencies: Iterable[float]) -> None:
        """Add a batch of latencies in seconds."""
        top, log, k = _BINS - 1, math.log, _K
        bins = Counter([min(top, int(log(x * 1e6) * k)) if x > 1e-6 else 0 for x in latencies])
        counts = self.counts
        for index, n in bins.items():
            counts[index] += n
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
