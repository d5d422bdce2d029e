"""The HTML report: self-contained, every fault window shaded and labelled, checks shown."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from chaospool._report.charts import fault_windows, timeline_charts
from chaospool._report.html import render_html, write_html

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


class _Refs(HTMLParser):
    """Collects every tag and every URL-bearing attribute of a document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _parse(doc: str) -> _Refs:
    refs = _Refs()
    refs.feed(doc)
    return refs


def test_html_is_self_contained(journal: dict[str, Any]) -> None:
    doc = render_html(journal)
    refs = _parse(doc)
    for tag, attrs in refs.tags:
        for key in ("src", "href", "xlink:href", "data"):
            value = attrs.get(key) or ""
            assert not re.match(r"\s*(https?:)?//", value), f"<{tag} {key}={value!r}>"
        assert tag not in ("link", "iframe", "img"), f"external-capable <{tag}>"
        if tag == "script":
            pytest.fail(f"script in the report: {attrs}")
    assert "@import" not in doc
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", doc)
    assert "http://" not in doc.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        'xmlns:xlink="http://www.w3.org/1999/xlink"', "")


def test_html_has_three_inline_svg_charts(journal: dict[str, Any]) -> None:
    doc = render_html(journal)
    svgs = re.findall(r"<svg\b.*?</svg>", doc, re.S)
    assert len(svgs) == 3
    for svg in svgs:
        ET.fromstring(svg)  # well-formed inline SVG


def test_each_chart_labels_every_fault_window(journal: dict[str, Any]) -> None:
    labels = ["F1 kill worker #1 (port_crash)", "F2 kill worker #2 (port_crash)",
              "F3 kill worker #3 (port_crash)"]
    for svg in timeline_charts(journal):
        texts = [t.text for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]
        for label in labels:
            assert label in texts, label  # printed on the band
            assert f"{label} (instant)" in texts, label  # and in the legend


def test_instant_fault_gets_a_visible_band(journal: dict[str, Any]) -> None:
    journal["faults"][0]["reverted_at"] = journal["faults"][0]["injected_at"]  # a bare kill
    windows = fault_windows(journal, run_end=30.0)
    assert windows[0].instant
    assert windows[0].end - windows[0].start == pytest.approx(0.3)  # 1% of the run


def test_fault_without_revert_spans_to_the_end(journal: dict[str, Any]) -> None:
    journal["faults"][2]["reverted_at"] = None  # an aborted run
    windows = fault_windows(journal, run_end=30.0)
    assert windows[2].end == 30.0
    assert "F3 kill worker #3" in render_html(journal)


def test_checks_table_shows_pass_and_fail(journal: dict[str, Any]) -> None:
    doc = render_html(journal)
    section = doc[doc.index("<h2>Checks</h2>"):doc.index("<h2>Timeline</h2>")]
    assert section.count("✓ pass") == 4
    assert section.count("✗ fail") == 1
    assert '<tr class="fail">' in section
    assert "overall.p99_latency &lt; 500ms" in section
    assert "552ms" in section  # in the unit of "< 500ms"


def test_report_has_seed_reproduce_status_phases_and_evidence(journal: dict[str, Any]) -> None:
    doc = render_html(journal)
    assert "chaospool run experiments/cascade.yaml --seed 42" in doc
    assert "FAILED" in doc
    assert "completed" in doc
    for phase in ("before", "during", "after", "overall"):
        assert f'<th class="num">{phase}</th>' in doc
    assert "pid 41021" in doc
    assert "slot 3" in doc
    assert "SIGKILL" in doc
    assert "respawn_seconds" in doc


def test_journal_values_are_escaped(journal: dict[str, Any]) -> None:
    journal["experiment"]["title"] = "<script>alert(1)</script>"
    journal["faults"][0]["effect"] = {"note": "<b>x</b>"}
    doc = render_html(journal)
    assert "<script>alert(1)" not in doc
    assert "&lt;script&gt;alert(1)" in doc
    assert "<b>x</b>" not in doc


def test_empty_run_renders(journal: dict[str, Any]) -> None:
    for key in ("faults", "timeline", "checks"):
        journal[key] = []
    journal["phases"] = {}
    doc = render_html(journal)
    assert "No fault was injected" in doc
    assert "No steady-state checks" in doc


def test_rerender_from_a_journal_file(journal_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    write_html(json.loads(journal_path.read_text()), out)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_pygal_leaves_failed_imports_silent() -> None:
    import chaospool._report.charts  # noqa: F401  (pygal is imported by now)

    with pytest.raises(ImportError):  # and no ImportWarning (an error in this suite)
        __import__("chaospool_no_such_module_for_this_test")


def test_label_near_the_end_is_kept_inside_the_plot(journal: dict[str, Any]) -> None:
    journal["faults"][2].update(injected_at=29.0, reverted_at=29.2)
    svg = timeline_charts(journal)[0]
    label = re.search(r'<text [^>]*>F3 kill worker #3 \(port_crash\)</text>', svg)
    assert label is not None
    assert 'text-anchor="end"' in label.group(0)  # drawn leftwards, not off the edge
    first = re.search(r'<text [^>]*>F1 kill worker #1 \(port_crash\)</text>', svg)
    assert first is not None
    assert "text-anchor" not in first.group(0)


def test_what_went_wrong_is_shown(journal: dict[str, Any]) -> None:
    journal.update(status="failed", error="WorkerStartError: worker 0 exited")
    journal["faults"][1]["error"] = "FaultError: revert raised"
    doc = render_html(journal)
    assert "What went wrong" in doc
    assert "run error: WorkerStartError: worker 0 exited" in doc
    assert "F2 kill worker #2 (port_crash): FaultError: revert raised" in doc
    assert "What went wrong" not in render_html(dict(journal, error=None, faults=[]))


def test_a_last_bucket_cut_short_is_not_read_as_a_rate_drop(journal: dict[str, Any]) -> None:
    from chaospool._journal import as_journal
    from chaospool._report.charts import _series

    journal["elapsed"] = 29.1  # the run ended 0.1 s into the last 1 s bucket
    series = _series(as_journal(journal))
    assert series.throughput[-1] is None
    journal["elapsed"] = 29.6
    assert _series(as_journal(journal)).throughput[-1] == pytest.approx(
        (journal["timeline"][-1]["succeeded"] + journal["timeline"][-1]["errors"]) / 0.6)


def test_evidence_records_become_a_table(journal: dict[str, Any]) -> None:
    journal["faults"][0]["effect"] = {
        "replaced": [{"index": 3, "pid": 41021, "replacement_pid": 41377, "exitcode": None}],
        "nested": {"a": [1, 2]},
    }
    doc = render_html(journal)
    records = re.search(r'<table class="records">.*?</table>', doc, re.S)
    assert records is not None
    assert "replacement_<wbr>pid" in records.group(0)
    assert "<td>41377</td><td>null</td>" in records.group(0)
    assert "<code>{&quot;a&quot;: [1, 2]}</code>" in doc  # anything else: one line of JSON
