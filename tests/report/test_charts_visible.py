"""The timeline charts read as SVG: every bucket with data is drawn, hover text needs no
script, the pool's reactions are marked, latency shows p99, max and a heat map."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from chaospool._report.charts import timeline_charts
from chaospool._report.heatmap import latency_heatmap
from chaospool._report.html import render_html

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

SVG = "{http://www.w3.org/2000/svg}"
EDGES = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]


def overlay_series(svg: str, k: int) -> list[ET.Element]:
    """The ``serie-k`` groups of a pygal chart (plot and overlay)."""
    root = ET.fromstring(svg)
    return [g for g in root.iter(f"{SVG}g")
            if f"serie-{k} " in (g.get("class") or "") + " "]


def dots(svg: str, k: int) -> list[ET.Element]:
    return [c for g in overlay_series(svg, k) for c in g.iter(f"{SVG}circle")
            if float(c.get("r") or 0) > 0]


def title_of(element: ET.Element) -> str:
    found = element.find(f"{SVG}title")
    return "" if found is None or found.text is None else found.text


def isolated(journal: dict[str, Any]) -> dict[str, Any]:
    """Capacity exhausted: buckets at 0 % and 300 ms with empty buckets between them."""
    for t in (12, 14, 16):
        journal["timeline"][t].update(succeeded=0, errors=30, recovered=0, p99_latency=0.3)
    for t in (13, 15, 17):
        journal["timeline"][t].update(succeeded=0, errors=0, recovered=0, p99_latency=None)
    return journal


def test_isolated_buckets_between_empty_ones_are_drawn_as_dots(journal: dict[str, Any]) -> None:
    journal = isolated(journal)
    _throughput, success, latency = timeline_charts(journal)
    with_data = sum(1 for b in journal["timeline"] if b["succeeded"] + b["errors"])
    assert len(dots(success, 0)) == with_data
    # the 0 % points at 12, 14, 16 s are among them, with their values on hover
    zero = [c for c in dots(success, 0) if " · 0.00 % succeeded" in title_of(c)]
    assert [title_of(c).split(" s:")[0] for c in zero] == ["12", "14", "16"]
    assert "12 s: 0 succeeded, 30 errors" in title_of(zero[0])
    p99 = [title_of(c) for c in dots(latency, 1)]
    assert "12 s: 0 succeeded, 30 errors · 300.0 ms p99" in p99


def test_every_point_and_every_fault_band_has_hover_text(journal: dict[str, Any]) -> None:
    for svg in timeline_charts(journal):
        assert "<script" not in svg
        assert all(title_of(c) for c in dots(svg, 0))
    first = timeline_charts(journal)[0]
    bands = [title_of(g) for k in (1, 2, 3) for g in overlay_series(first, k) if title_of(g)]
    assert "F1 kill worker #1 (port_crash): injected at 5.00 s, instant" in bands


def test_latency_chart_shows_p99_and_max(journal: dict[str, Any]) -> None:
    for bucket in journal["timeline"]:
        bucket["max_latency"] = bucket["p99_latency"] * 2
    latency = timeline_charts(journal)[2]
    texts = [t.text for t in ET.fromstring(latency).iter(f"{SVG}text")]
    assert "max latency (ms)" in texts
    assert "p99 latency (ms)" in texts
    assert "5 s: 300 succeeded, 60 errors · 820.0 ms max" in [title_of(c) for c in dots(latency, 0)]


def test_pool_reactions_are_marked_with_their_times(journal: dict[str, Any]) -> None:
    journal["events"] = [
        {"t": 5.01, "kind": "crash", "index": 3, "pid": 41021, "signal": 9},
        {"t": 5.18, "kind": "restart", "index": 3, "pid": None, "replaces": 41021},
        {"t": 6.4, "kind": "timeout", "index": 1, "pid": 41019},
        {"t": 7.2, "kind": "circuit_open", "index": None, "pid": None},
    ]
    svg = timeline_charts(journal)[1]
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    for legend in ("pool: worker crashed (1)", "pool: replacement started (1)",
                   "pool: killed a stuck worker (1)", "pool: circuit open / half-open (1)"):
        assert legend in texts
    marks = [title_of(c) for k in range(4, 8) for c in dots(svg, k)]
    assert "5.01 s: crash slot 3 pid 41021 signal=9" in marks
    assert "5.18 s: restart slot 3 replaces=41021" in marks
    assert "7.20 s: circuit_open" in marks


def test_a_flat_100_percent_line_sits_below_the_top_edge(journal: dict[str, Any]) -> None:
    for bucket in journal["timeline"]:
        bucket.update(errors=0)
    success = timeline_charts(journal)[1]
    ys = {round(float(c.get("cy") or 0), 3) for c in dots(success, 0)}
    assert len(ys) == 1  # one flat line
    assert ys.pop() > 5  # pixels below the plot's top edge, not hidden in it


def test_charts_are_drawn_for_800_px_and_labels_sit_over_the_gridlines(
    journal: dict[str, Any],
) -> None:
    for svg in timeline_charts(journal):
        root = ET.fromstring(svg)
        assert (root.get("viewBox") or "").split()[2] == "800"
        # the window labels come after (so over) the guides, with a white halo
        assert svg.index('class="plot text-overlay"') > svg.rindex('class="guides"')
        assert "paint-order:stroke;stroke:#fff" in svg


def test_latency_heat_map_cells_count_every_operation(journal: dict[str, Any]) -> None:
    journal["latency_band_edges"] = EDGES
    for bucket in journal["timeline"]:
        total = bucket["succeeded"] + bucket["errors"]
        bucket["latency_bands"] = [total - total // 3, total // 3] + [0] * 11
    svg = latency_heatmap(journal)
    assert svg is not None
    cells = [r for r in ET.fromstring(svg).iter(f"{SVG}rect") if "operations" in title_of(r)]
    counted = sum(int(re.search(r": (\d+) of", title_of(r)).group(1))  # type: ignore[union-attr]
                  for r in cells)
    assert counted == sum(b["succeeded"] + b["errors"] for b in journal["timeline"])
    assert "0 s, ≤ 1 ms: 267 of 400 operations (66.8%)" in [title_of(r) for r in cells]
    assert len(re.findall(r"<svg\b", render_html(journal))) == 4  # three charts + heat map


def test_an_aborted_run_says_where_it_stopped_in_the_html(journal: dict[str, Any]) -> None:
    journal.update(status="aborted", elapsed=2.83, duration=15.0)
    doc = render_html(journal)
    assert "stopped at 2.8 s of 15 s: metrics and checks cover an incomplete run" in doc
    assert "Checks <small>(evaluated on an incomplete run)</small>" in doc
