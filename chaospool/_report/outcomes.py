"""Outcomes and consistency in the reports (docs/reports.md, "Outcomes", "Consistency").

The HTML section: ok / fail / info stacked per timeline bucket with the fault windows behind
them (a small hand-written SVG: stacked series and shaded windows in one plot), and the
consistency checker's findings with the operations involved. The terminal: one line.
Everything is read from the journal, so a re-rendered journal or a history shows the same.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from chaospool._journal import Bucket, Consistency, Journal, Operation, Outcomes, as_journal
from chaospool._report._format import fault_label

__all__ = ("consistency_html", "outcome_chart_svg", "outcomes_line", "outcomes_section")

_W, _H = 1100, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 14, 44
_COLOURS = {"ok": "#2e8540", "info": "#e0a100", "fail": "#c0262d"}
_STACK = ("ok", "info", "fail")  # bottom to top


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _x(t: float, x_end: float) -> float:
    return _LEFT + (_W - _LEFT - _RIGHT) * t / x_end


def _y(count: float, top: float) -> float:
    return _TOP + (_H - _TOP - _BOTTOM) * (1 - count / top)


def _width(timeline: Sequence[Bucket]) -> float:
    gaps = [b.t - a.t for a, b in itertools.pairwise(timeline) if b.t > a.t]
    return min(gaps) if gaps else 1.0


def _bars(timeline: Sequence[Bucket], width: float, x_end: float,
          top: float) -> list[str]:
    parts = []
    bar = max(0.5, _x(width, x_end) - _x(0, x_end) - 0.6)
    for bucket in timeline:
        base = 0
        for key in _STACK:
            count = _count(bucket, key)
            if count:
                y0, y1 = _y(base + count, top), _y(base, top)
                parts.append(f'<rect x="{_x(bucket.t, x_end):.1f}" y="{y0:.1f}" '
                             f'width="{bar:.1f}" height="{y1 - y0:.1f}" '
                             f'fill="{_COLOURS[key]}"/>')
            base += count
    return parts


def _count(bucket: Bucket, key: str) -> int:
    return int(bucket.get(key, 0))


def _windows(journal: Journal, x_end: float) -> list[str]:
    parts = []
    for i, fault in enumerate(journal.faults):
        start = fault.injected_at
        if start is None:
            continue
        end = x_end if fault.reverted_at is None else fault.reverted_at
        x0, x1 = _x(start, x_end), max(_x(end, x_end), _x(start, x_end) + 3)
        label = fault_label(i, fault)
        parts.append(f'<rect x="{x0:.1f}" y="{_TOP}" width="{x1 - x0:.1f}" '
                     f'height="{_H - _TOP - _BOTTOM}" fill="#5b6bbf" fill-opacity=".13">'
                     f"<title>{_e(label)}</title></rect>")
        parts.append(f'<text x="{x0 + 2:.1f}" y="{_TOP + 12 + 12 * (i % 4)}" font-size="11" '
                     f'fill="#3b4a9f">{_e(label)}</text>')
    return parts


def _axes(x_end: float, top: float) -> list[str]:
    base = _H - _BOTTOM
    parts = [f'<line x1="{_LEFT}" y1="{base}" x2="{_W - _RIGHT}" y2="{base}" stroke="#888"/>',
             f'<text x="{_LEFT - 6}" y="{_TOP + 4}" font-size="11" text-anchor="end">'
             f"{top:g}</text>",
             f'<text x="{_LEFT - 6}" y="{base}" font-size="11" text-anchor="end">0</text>']
    step = _tick_step(x_end)
    t = 0.0
    while t <= x_end + 1e-9:
        parts.append(f'<text x="{_x(t, x_end):.1f}" y="{base + 14}" font-size="11" '
                     f'text-anchor="middle">{t:g}</text>')
        t += step
    parts.append(f'<text x="{(_LEFT + _W) / 2}" y="{base + 30}" font-size="12" '
                 'text-anchor="middle">seconds since start (operations per bucket, by the '
                 "bucket they ended in)</text>")
    return parts


def _tick_step(x_end: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if x_end / step <= 12:
            return float(step)
    return 7200.0


def outcome_chart_svg(journal: Journal | Mapping[str, Any]) -> str | None:
    """ok / info / fail stacked per timeline bucket, fault windows shaded; None if the
    journal's timeline has no outcome counts (a journal from before outcomes existed)."""
    journal = as_journal(journal)
    timeline = sorted(journal.timeline, key=lambda b: b.t)
    if not timeline or "ok" not in timeline[0]:
        return None
    width = _width(timeline)
    x_end = max(timeline[-1].t + width, float(journal.elapsed or 0.0), 1.0)
    totals = [sum(_count(b, k) for k in _STACK) for b in timeline]
    top = float(max(max(totals), 1))
    legend = "".join(
        f'<rect x="{_W - 250 + 80 * i}" y="{_H - 14}" width="10" height="10" '
        f'fill="{_COLOURS[k]}"/><text x="{_W - 236 + 80 * i}" y="{_H - 5}" font-size="12">'
        f"{k}</text>" for i, k in enumerate(_STACK))
    body = "".join([*_windows(journal, x_end), *_bars(timeline, width, x_end, top),
                    *_axes(x_end, top), legend])
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" '
            f'width="100%" role="img" aria-label="operations by outcome over time" '
            f'font-family="system-ui, sans-serif">{body}</svg>')


def _op_cell(op: Operation) -> str:
    return (f"<code>{_e(op.f)}</code> → {_e(op.value)} · invoked {_e(op.invoke)} s, "
            f"completed {_e(op.complete)} s · worker pid {_e(op.pid)}")


_COUNTS = ("sessions", "increments_acknowledged", "increments_indeterminate", "reads",
           "lost_updates", "stale_reads", "overcounts")


def consistency_html(journal: Journal | Mapping[str, Any]) -> str:
    """The checker's counts and first findings (with the operations involved), or ''."""
    found = as_journal(journal).consistency
    if not isinstance(found, Consistency):
        return ""
    cards = "".join(f'<div class="card"><b>{_e(found[k])}</b>'
                    f"<span>{_e(k.replace('_', ' '))}</span></div>" for k in _COUNTS)
    rows = []
    for f in found.findings:
        ops = "<br>".join(_op_cell(op) for op in f.operations)
        rows.append(f'<tr class="fail"><td>{_e(f.kind)}</td><td>{_e(f.session)}</td>'
                    f'<td>{_e(f.expected)}</td><td class="num">{_e(f.observed)}</td>'
                    f"<td>{ops}</td></tr>")
    table = ("<table><tr><th>finding</th><th>session</th><th>expected</th>"
             f'<th class="num">observed</th><th>operations</th></tr>{"".join(rows)}</table>'
             if rows else '<p class="muted">No finding: every read saw every acknowledged '
             "increment and never went backwards.</p>")
    return (f'<h2>Consistency</h2><div class="cards">{cards}</div>{table}')


def outcomes_section(journal: Journal | Mapping[str, Any]) -> str:
    """The HTML section: the outcome chart and the consistency findings ('' if neither)."""
    journal = as_journal(journal)
    svg = outcome_chart_svg(journal)
    consistency = consistency_html(journal)
    if svg is None and not consistency:
        return ""
    note = ('<p class="muted small"><b>ok</b>: happened · <b>fail</b>: certainly had no effect'
            " · <b>info</b>: indeterminate (the worker crashed, was cut off or timed out while"
            " holding it). Shaded bands are fault windows.</p>")
    chart = f'<h2>Outcomes</h2>{note}<div class="chart">{svg}</div>' if svg else ""
    return f"<section>{chart}{consistency}</section>"


def outcomes_line(journal: Journal | Mapping[str, Any]) -> str | None:
    """One line for the terminal: outcomes, and the consistency verdict when checked."""
    journal = as_journal(journal)
    outcomes = journal.metrics.outcomes
    if not isinstance(outcomes, Outcomes):
        return None
    dup = journal.metrics.maybe_duplicated or 0
    line = (f"outcomes ok {outcomes.ok} · fail {outcomes.fail} · info {outcomes.info}"
            + (f" · maybe duplicated {dup}" if dup else ""))
    found = journal.consistency
    if isinstance(found, Consistency):
        line += (f" · lost updates {found.lost_updates} · stale reads {found.stale_reads} "
                 f"(of {found.increments_acknowledged} increments)")
    return line
