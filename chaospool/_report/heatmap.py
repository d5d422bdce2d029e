"""A latency heat map: one column per timeline bucket, one row per latency band.

Each cell's darkness is the share of that bucket's operations whose latency fell in the band
(the journal's ``latency_bands`` with ``latency_band_edges``), so the whole distribution shows,
as in Jepsen's latency plots, not only the p99. Plain SVG written here (pygal has no heat map);
every cell has an SVG ``<title>`` for hover text without script. Layout matches the timeline
charts' width (docs/reports.md, "Charts").
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from chaospool._journal import Bucket, Journal, as_journal

__all__ = ("latency_heatmap",)

_WIDTH = 800
# the plot area lines up with the timeline charts' plots above it (pygal's margins at 800 px)
_LEFT, _RIGHT, _TOP, _ROW = 100, 8, 34, 16
_FAULT = "#d62728"


def _band_names(edges: Sequence[float]) -> list[str]:
    def ms(value: float) -> str:
        return f"{value * 1000:g} ms" if value < 1 else f"{value:g} s"

    def span(a: float, b: float) -> str:
        if b < 1:
            return f"{a * 1000:g}–{b * 1000:g} ms"
        return f"{a:g}–{b:g} s" if a >= 1 else f"{ms(a)}–{ms(b)}"

    names = [f"≤ {ms(edges[0])}"]
    names += [span(a, b) for a, b in itertools.pairwise(edges)]
    names.append(f"> {ms(edges[-1])}")
    return names


def _shade(share: float) -> str:
    # white (none) to deep orange (all of the bucket); any operation at all is visible
    if share <= 0:
        return "#ffffff"
    level = 0.15 + 0.85 * min(1.0, share)
    r, g, b = (255 - round(level * (255 - c)) for c in (122, 46, 0))
    return f"#{r:02x}{g:02x}{b:02x}"


def latency_heatmap(journal: Journal | Mapping[str, Any]) -> str | None:
    """The heat map SVG, or None when the journal has no latency bands (an older journal)."""
    journal = as_journal(journal)
    edges, timeline = journal.latency_band_edges, journal.timeline
    if not edges or not timeline or not all("latency_bands" in b for b in timeline):
        return None
    names = _band_names(edges)
    rows = len(names)
    end = max(float(journal.elapsed or 0.0), timeline[-1].t + _width(timeline))
    plot_w = _WIDTH - _LEFT - _RIGHT
    height = _TOP + rows * _ROW + 40
    x = lambda t: _LEFT + plot_w * (t / end if end else 0.0)  # noqa: E731 -- one-line scale
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {height}" '
             f'class="heatmap" font-family="system-ui, sans-serif" font-size="11">',
             f'<text x="{_WIDTH / 2}" y="18" text-anchor="middle" font-size="15" '
             'fill="#111">Latency distribution per bucket</text>']
    parts += _windows(journal, x, rows)
    parts += _cells(timeline, names, x, _width(timeline))
    parts += _axes(names, end, x, rows)
    parts.append("</svg>")
    return "".join(parts)


def _width(timeline: Sequence[Bucket]) -> float:
    gaps = [b.t - a.t for a, b in itertools.pairwise(timeline)]
    return min([g for g in gaps if g > 0], default=1.0)


def _row_y(band: int, rows: int) -> float:
    return _TOP + (rows - 1 - band) * _ROW  # slow bands on top, as on the latency chart


def _cells(timeline: Sequence[Bucket], names: Sequence[str], x: Any,
           width: float) -> list[str]:
    out = []
    for bucket in timeline:
        counts = list(bucket.latency_bands or [])
        total = sum(counts)
        if not total:
            continue
        x0, x1 = x(bucket.t), x(bucket.t + width)
        for band, count in enumerate(counts[: len(names)]):
            if not count:
                continue
            y = _row_y(band, len(names))
            tip = (f"{bucket.t:g} s, {names[band]}: {count} of {total} operations "
                   f"({100 * count / total:.1f}%)")
            out.append(f'<rect x="{x0:.2f}" y="{y}" width="{max(x1 - x0, 1.0):.2f}" '
                       f'height="{_ROW}" fill="{_shade(count / total)}">'
                       f"<title>{escape(tip)}</title></rect>")
    return out


def _windows(journal: Journal, x: Any, rows: int) -> list[str]:
    out = []
    for fault in journal.faults:
        start, stop = fault.injected_at, fault.reverted_at
        if start is None:
            continue
        x0 = x(start)
        x1 = max(x(stop if stop is not None else start), x0 + 2)
        name = escape(str(fault.name or fault.fault))
        out.append(f'<rect x="{x0:.2f}" y="{_TOP}" width="{x1 - x0:.2f}" height="{rows * _ROW}" '
                   f'fill="none" stroke="{_FAULT}" stroke-width="1.5">'
                   f"<title>{name}</title></rect>")
    return out


def _axes(names: Sequence[str], end: float, x: Any, rows: int) -> list[str]:
    out = [f'<rect x="{_LEFT}" y="{_TOP}" width="{_WIDTH - _LEFT - _RIGHT}" '
           f'height="{rows * _ROW}" fill="none" stroke="#bbb"/>']
    for band, name in enumerate(names):
        y = _row_y(band, rows) + _ROW * 0.72
        out.append(f'<text x="{_LEFT - 4}" y="{y:.1f}" text-anchor="end" '
                   f'fill="#333">{escape(name)}</text>')
    step = next(s for s in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 1e9)
                if end / s <= 10)
    base = _TOP + rows * _ROW
    tick = 0.0
    while tick <= end + 1e-9:
        out.append(f'<text x="{x(tick):.1f}" y="{base + 14}" text-anchor="middle" '
                   f'fill="#333">{tick:g}</text>')
        tick += step
    out.append(f'<text x="{_LEFT + (_WIDTH - _LEFT - _RIGHT) / 2}" y="{base + 32}" '
               'text-anchor="middle" fill="#333">seconds since start (darker: more of the '
               "bucket's operations)</text>")
    return out
