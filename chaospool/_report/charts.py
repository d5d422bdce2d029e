"""Timeline charts of a journal as inline SVG (pygal), with every fault window shaded.

pygal has no shaded spans, so each fault window is an extra ``XY`` series: a filled rectangle
from the x axis to the top of the plot, drawn with the series' own colour. Its label is printed
on the chart (pygal's ``print_labels`` on one invisible dot of the rectangle's left edge, staggered
so that close windows stay readable) and named in the legend.

Nothing external is referenced: pygal's tooltip script is disabled (``js=[]``), its CSS is
inlined by pygal itself, and its generator comments are stripped.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

import pygal
from pygal.style import Style

from chaospool._journal import Bucket, Journal, as_journal
from chaospool._report._format import fault_label

__all__ = ("Window", "event_marks", "fault_windows", "timeline_charts")


def _drop_pygal_import_hook() -> None:
    """Remove the legacy ``sys.meta_path`` finder pygal installs at import (for pygal.maps).

    It has no ``find_spec``, so on Python 3.11 every *failed* import anywhere in the process
    afterwards (``try: import x`` probes in the stdlib included) emits an ImportWarning, an
    error under ``-W error``. We never use pygal.maps; Python 3.12 ignores such finders anyway.
    """
    sys.meta_path[:] = [
        f for f in sys.meta_path
        if not (type(f).__name__ == "PluginImportFixer" and type(f).__module__ == "pygal")
    ]


_drop_pygal_import_hook()

_LINE_COLOURS = {"throughput": "#1f6fb4", "success": "#2a9d3f", "latency": "#e07b00"}
_MAX_COLOUR = "#7a3e00"
_WIDTH = 800
_SUCCESS_TOP = 104.0
_FAULT_COLOURS = ("#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
# A white halo keeps a window's label legible where it crosses a line.
_LABEL_CSS = (
    "inline:.text-overlay text.label{paint-order:stroke;stroke:#fff;stroke-width:3px;"
    "font-weight:600;fill:#222}"
)
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.S)
_PLOT_WIDTH = re.compile(r'class="plot"><rect x="0" y="0" width="([0-9.]+)"')
_LABEL = re.compile(r'<text x="([0-9.]+)" (y="[0-9.]+") class="label">([^<]*)</text>')
_LABEL_PX = 12


@dataclass(frozen=True)
class Window:
    """One fault's shaded span on the time axis (seconds since the run's start)."""

    label: str
    start: float
    end: float
    instant: bool  # the fault had no measurable duration (a kill): drawn at a minimum width


@dataclass(frozen=True)
class _Series:
    times: list[float]
    throughput: list[float | None]
    success: list[float | None]
    p99_ms: list[float | None]
    end: float
    max_ms: list[float | None] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)  # each bucket's start (hover text)
    counts: list[tuple[int, int]] = field(default_factory=list)  # (succeeded, errors)


def fault_windows(journal: Journal | Mapping[str, Any], run_end: float) -> list[Window]:
    """The fault windows, each at least 1% of the run wide so that a kill stays visible."""
    min_width = max(run_end * 0.01, 0.05)
    windows = []
    for i, fault in enumerate(as_journal(journal).faults):
        start = fault.injected_at
        if start is None:
            continue  # never injected (inject raised before recording a time)
        end = run_end if fault.reverted_at is None else fault.reverted_at
        instant = end - start < min_width
        windows.append(Window(fault_label(i, fault), start, max(end, start + min_width), instant))
    return windows


def _bucket_width(timeline: Sequence[Bucket]) -> float:
    gaps = [b.t - a.t for a, b in itertools.pairwise(timeline) if b.t > a.t]
    return min(gaps) if gaps else 1.0


def _covered(t: float, width: float, elapsed: object) -> float:
    """How much of a bucket the run lasted: the last one is usually cut short."""
    if isinstance(elapsed, int | float) and elapsed > t:
        return min(width, float(elapsed) - t)
    return width


def _series(journal: Journal) -> _Series:
    timeline = sorted(journal.timeline, key=lambda b: b.t)
    width = _bucket_width(timeline)
    s = _Series([], [], [], [], 0.0)
    for bucket in timeline:
        ok, err = bucket.succeeded, bucket.errors
        done = ok + err
        covered = _covered(bucket.t, width, journal.elapsed)
        # Plot each bucket at its middle: its operations ended anywhere within it.
        s.times.append(bucket.t + covered / 2)
        # A sliver of a bucket (the run's last instants) gives no meaningful rate.
        s.throughput.append(done / covered if covered >= width / 4 else None)
        s.success.append(100.0 * ok / done if done else None)
        p99, peak = bucket.p99_latency, bucket.get("max_latency")
        s.p99_ms.append(None if p99 is None else p99 * 1000.0)
        s.max_ms.append(None if peak is None else peak * 1000.0)
        s.starts.append(bucket.t)
        s.counts.append((ok, err))
    last = timeline[-1].t + width if timeline else 0.0
    return _Series(s.times, s.throughput, s.success, s.p99_ms, last, s.max_ms, s.starts,
                   s.counts)


def _nice_top(values: Sequence[float | None]) -> float:
    peak = max((v for v in values if v is not None), default=0.0)
    if peak <= 0:
        return 1.0
    magnitude = 10.0 ** (len(str(int(peak))) - 1)
    for step in (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if step * magnitude >= peak * 1.08:
            return step * magnitude
    return peak * 1.1


def _style(colours: Sequence[str]) -> Style:
    return Style(
        background="white",
        plot_background="white",
        foreground="#333",
        foreground_strong="#111",
        foreground_subtle="#888",
        font_family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif",
        label_font_size=12,
        major_label_font_size=12,
        legend_font_size=13,
        title_font_size=15,
        value_label_font_size=12,
        colors=tuple(colours),
        opacity=".22",
        stroke_width="2",
        stroke_width_hover="3",
        opacity_hover=".35",
    )


def _tick(value: float) -> str:
    """A y-axis label, padded to one width so the three charts' plots (and bands) line up.

    pygal sizes the left margin from the labels' length; figure spaces are digit-wide and
    invisible, and the labels are right-aligned, so the padding shows as nothing.
    """
    text = f"{value / 1000:g}k" if value >= 10_000 else f"{value:g}"
    return text.rjust(6, "\u2007")


def _chart(title: str, y_title: str, top: float, colours: Sequence[str], x_end: float) -> Any:
    entries = len(colours)
    legend_rows = (entries + 1) // 2  # two entries a row
    return pygal.XY(
        js=[],  # pygal's default loads a tooltip script from the network
        style=_style(colours),
        title=title,
        x_title="seconds since start",
        y_title=y_title,
        # drawn at the size it is read at: scaled to a 800 px window it keeps 12 px labels
        width=_WIDTH,
        height=300 + 19 * legend_rows,  # the plot keeps its height as the legend grows
        range=(0, top),
        xrange=(0, x_end),
        show_dots=False,
        css=["file://style.css", "file://graph.css", _LABEL_CSS],
        legend_at_bottom=True,
        legend_at_bottom_columns=2,
        print_labels=True,  # only the fault windows carry labels
        truncate_legend=-1,
        show_x_guides=False,
        margin=8,
        # pygal reserves floor(entries / columns) legend rows, one short for an odd count;
        # the rest is room for the last row's descenders.
        margin_bottom=16 + 20 * (entries % 2),
        no_data_text="no timeline data",
        value_formatter=_tick,
    )


def _add_windows(chart: Any, windows: Sequence[Window], top: float) -> None:
    for i, w in enumerate(windows):
        # The label sits on a dot of the left edge, staggered downwards so close windows
        # (a crash every second) do not print on top of each other.
        label_y = top * (0.97 - 0.09 * (i % 5))
        points: list[Any] = [
            (w.start, 0.0),
            {"value": (w.start, label_y), "label": w.label},
            (w.start, top),
            (w.end, top),
            (w.end, 0.0),
        ]
        legend = f"{w.label} (instant)" if w.instant else w.label
        chart.add(legend, points, fill=True, show_dots=True, dots_size=0,
                  stroke_style={"width": 1.0})


def _keep_labels_inside(svg: str) -> str:
    """Flip a window label that would run off the plot's right edge to the band's left side.

    pygal always writes a label rightwards from its point; near the end of the run that cuts
    it off. Estimated at 0.62 em a character (bold sans), which errs towards flipping.
    """
    found = _PLOT_WIDTH.search(svg)
    if found is None:
        return svg
    width = float(found.group(1))

    def place(match: re.Match[str]) -> str:
        x, y, text = float(match.group(1)), match.group(2), match.group(3)
        if x + len(text) * _LABEL_PX * 0.62 <= width:
            return match.group(0)
        # The point sits one font size left of x, on the band's left edge.
        return (f'<text x="{x - 1.5 * _LABEL_PX:.2f}" {y} class="label" '
                f'text-anchor="end">{text}</text>')

    return _LABEL.sub(place, svg)


def _render(chart: Any) -> str:
    svg = chart.render(disable_xml_declaration=True)
    svg = svg.decode() if isinstance(svg, bytes) else svg
    # The remaining inline script only feeds the (disabled) tooltips; the comments hold URLs.
    return _keep_labels_inside(_SCRIPT.sub("", _COMMENT.sub("", svg)))


@dataclass(frozen=True)
class _Line:
    """One plotted measure: a value per bucket and the hover text of each bucket's point."""

    legend: str
    colour: str
    values: list[float | None]
    hover: Callable[[int], str]
    dashed: bool = False


def _one(title: str, y_title: str, top: float, lines: Sequence[_Line], windows: Sequence[Window],
         events: Sequence[_EventMarks], x_end: float, series: _Series) -> str:
    colours = [line.colour for line in lines]
    colours += [_FAULT_COLOURS[i % len(_FAULT_COLOURS)] for i in range(len(windows))]
    colours += [marks.colour for marks in events]
    chart = _chart(title, y_title, top, colours, x_end)
    dots: dict[int, list[str]] = {}
    for k, line in enumerate(lines):
        # every bucket with data is a visible dot: one between two empty buckets has no line
        chart.add(line.legend, list(zip(series.times, line.values, strict=True)),
                  allow_interruptions=True, show_dots=True, dots_size=2.5,
                  stroke_style={"width": 1.5, "dasharray": "4,3"} if line.dashed else None)
        dots[k] = [line.hover(i) for i, v in enumerate(line.values) if v is not None]
    _add_windows(chart, windows, top)
    groups = {len(lines) + i: _window_title(w) for i, w in enumerate(windows)}
    for j, marks in enumerate(events):
        y = top * (0.03 + 0.055 * j)
        chart.add(marks.legend, [(t, y) for t in marks.times], stroke=False, show_dots=True,
                  dots_size=4)
        dots[len(lines) + len(windows) + j] = list(marks.titles)
    return _with_titles(_render(chart), dots, groups)


def _window_title(w: Window) -> str:
    kind = "instant" if w.instant else f"until {w.end:.2f} s"
    return f"{w.label}: injected at {w.start:.2f} s, {kind}"


_SERIE = re.compile(r'<g class="series serie-(\d+) color-\d+">')
_CIRCLE = re.compile(r"<circle ([^>]*?)\s*/>")


def _with_titles(svg: str, dots: Mapping[int, list[str]], groups: Mapping[int, str]) -> str:
    """Hover text without any script: an SVG ``<title>`` in each point and each band."""
    parts = _SERIE.split(svg)
    out = [parts[0]]
    for k_text, chunk in zip(parts[1::2], parts[2::2], strict=True):
        k = int(k_text)
        head = f'<g class="series serie-{k} color-{k}">'
        if k in groups:
            head += f"<title>{escape(groups[k])}</title>"
        if k in dots and "<circle" in chunk:
            chunk = _titled_circles(chunk, iter(dots[k]))
        out += [head, chunk]
    return "".join(out)


def _titled_circles(chunk: str, texts: Iterator[str]) -> str:
    return _CIRCLE.sub(
        lambda m: f"<circle {m.group(1)}><title>{escape(next(texts, ''))}</title></circle>",
        chunk)


def _bucket_text(series: _Series, i: int) -> str:
    ok, err = series.counts[i]
    return f"{series.starts[i]:g} s: {ok} succeeded, {err} errors"


def _lines(series: _Series) -> dict[str, list[_Line]]:
    def text(unit: str, values: list[float | None], fmt: str) -> Callable[[int], str]:
        return lambda i: f"{_bucket_text(series, i)} · {format(values[i] or 0, fmt)} {unit}"

    return {
        "throughput": [_Line("throughput (ops/s)", _LINE_COLOURS["throughput"],
                             series.throughput, text("ops/s", series.throughput, ".1f"))],
        "success": [_Line("success rate (%)", _LINE_COLOURS["success"], series.success,
                          text("% succeeded", series.success, ".2f"))],
        # max first, dashed, so that p99 is drawn over it where they meet
        "latency": [
            _Line("max latency (ms)", _MAX_COLOUR, series.max_ms,
                  text("ms max", series.max_ms, ".1f"), dashed=True),
            _Line("p99 latency (ms)", _LINE_COLOURS["latency"], series.p99_ms,
                  text("ms p99", series.p99_ms, ".1f")),
        ],
    }


def timeline_charts(journal: Journal | Mapping[str, Any]) -> list[str]:
    """Three SVG charts (throughput, success rate, latency: p99 and max), with fault windows
    and the pool's own reactions (crashes, replacements, kills, circuit) in each."""
    journal = as_journal(journal)
    series = _series(journal)
    reverts = (f.reverted_at or 0.0 for f in journal.faults)
    run_end = max(series.end, float(journal.elapsed or 0.0), *reverts, 1.0)
    windows = fault_windows(journal, run_end)
    events = event_marks(journal)
    x_end = max([series.end, *(w.end for w in windows)], default=1.0) or 1.0
    lines = _lines(series)
    latency_top = _nice_top([*series.p99_ms, *series.max_ms])
    return [
        _one("Throughput", "operations / s", _nice_top(series.throughput), lines["throughput"],
             windows, events, x_end, series),
        # a little headroom: a flat 100 % line must not hide in the plot's top edge
        _one("Success rate", "% of operations", _SUCCESS_TOP, lines["success"], windows,
             events, x_end, series),
        _one("Latency per bucket", "milliseconds", latency_top, lines["latency"], windows,
             events, x_end, series),
    ]


# -- the pool's reactions -------------------------------------------------------------------------

_EVENT_KINDS = (  # (journal kinds, legend, colour)
    (("crash",), "pool: worker crashed", "#111111"),
    (("timeout", "health_fail"), "pool: killed a stuck worker", "#b5179e"),
    (("restart",), "pool: replacement started", "#2a9d8f"),
    (("recycle", "retire"), "pool: worker recycled / retired", "#6c757d"),
    (("circuit_open", "circuit_half_open"), "pool: circuit open / half-open", "#e63946"),
)


@dataclass(frozen=True)
class _EventMarks:
    legend: str
    colour: str
    times: list[float]
    titles: list[str]


def _event_text(event: Mapping[str, Any]) -> str:
    where = f" slot {event['index']}" if event.get("index") is not None else ""
    pid = f" pid {event['pid']}" if event.get("pid") is not None else ""
    extra = " ".join(f"{k}={event[k]}" for k in ("reason", "signal", "exitcode", "replaces")
                     if event.get(k) is not None)
    return f"{float(event.get('t') or 0.0):.2f} s: {event.get('kind')}{where}{pid} {extra}".rstrip()


def event_marks(journal: Journal | Mapping[str, Any]) -> list[_EventMarks]:
    """The journal's pool events, one marker series per kind of reaction present (events are
    free-form records: each kind carries its own fields)."""
    events = as_journal(journal).events or []
    marks = []
    for kinds, legend, colour in _EVENT_KINDS:
        mine = [e for e in events if e.get("kind") in kinds]
        if mine:
            marks.append(_EventMarks(f"{legend} ({len(mine)})", colour,
                                     [float(e.get("t") or 0.0) for e in mine],
                                     [_event_text(e) for e in mine]))
    return marks
