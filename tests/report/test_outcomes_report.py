"""Outcomes and consistency in the HTML report and the terminal summary (docs/reports.md)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from chaospool._report.html import render_html
from chaospool._report.journal import Report
from chaospool._report.outcomes import outcome_chart_svg, outcomes_line
from chaospool._report.terminal import summary_text

pytestmark = [pytest.mark.unit, pytest.mark.timeout(20)]

FINDING = {
    "kind": "lost_update", "session": "chaospool-c000001-2", "expected": "at least 7",
    "observed": 5,
    "operations": [
        {"f": "chaospool.incr", "invoke": 2.25, "complete": 2.26, "pid": 4242, "value": 7},
        {"f": "chaospool.read", "invoke": 2.5, "complete": 2.51, "pid": 4343, "value": 5},
    ],
}


def journal(**extra: Any) -> dict[str, Any]:
    timeline = [{"t": float(t), "succeeded": 8, "errors": 4, "recovered": 1, "p99_latency": 0.01,
                 "faults_active": ["kill"] if t == 2 else [], "ok": 8, "fail": 1, "info": 3}
                for t in range(5)]
    metrics = {"total": 60, "succeeded": 40, "errors": 20, "success_rate": 40 / 60,
               "outcomes": {"ok": 40, "fail": 5, "info": 15}, "maybe_duplicated": 2}
    return {"experiment": {"title": "t"}, "status": "completed", "ok": False, "seed": 1,
            "metrics": metrics, "phases": {}, "checks": [], "timeline": timeline,
            "faults": [{"fault": "port_crash", "name": "kill", "injected_at": 2.0,
                        "reverted_at": 2.4, "targets": [], "effect": {}, "error": None}],
            "elapsed": 5.0, **extra}


def test_the_outcome_chart_stacks_ok_info_fail_with_the_fault_windows() -> None:
    svg = outcome_chart_svg(journal())
    assert svg is not None
    # one bar segment per outcome and bucket in the outcome's colour, and its legend entry
    for colour in ("#2e8540", "#e0a100", "#c0262d"):
        assert len(re.findall(f'<rect [^>]*fill="{colour}"/>', svg)) == 5 + 1
    window = re.search(r'<rect [^>]*fill-opacity="\.13"><title>([^<]*)</title>', svg)
    assert window is not None
    assert "kill" in window.group(1)


def test_a_journal_without_outcomes_has_no_chart() -> None:
    old = journal()
    for bucket in old["timeline"]:
        for key in ("ok", "fail", "info"):
            del bucket[key]
    assert outcome_chart_svg(old) is None


def test_the_html_lists_the_findings_with_the_operations_involved() -> None:
    found = {"sessions": 4, "increments_acknowledged": 7, "lost_updates": 2, "stale_reads": 0,
             "increments_indeterminate": 1, "reads": 9, "overcounts": 0, "findings": [FINDING]}
    html = render_html(journal(consistency=found))
    assert "<h2>Outcomes</h2>" in html
    assert "<h2>Consistency</h2>" in html
    assert "lost_update" in html
    assert "chaospool-c000001-2" in html
    assert "worker pid 4242" in html
    assert "invoked 2.5 s, completed 2.51 s" in html


def test_the_terminal_prints_one_line_of_outcomes_and_consistency() -> None:
    found = {"sessions": 4, "increments_acknowledged": 7, "lost_updates": 2, "stale_reads": 1}
    j = journal(consistency=found)
    line = outcomes_line(j)
    assert line == ("outcomes ok 40 · fail 5 · info 15 · maybe duplicated 2 · lost updates 2 · "
                    "stale reads 1 (of 7 increments)")
    text = summary_text(j, width=200)
    assert sum("outcomes ok 40" in row for row in text.splitlines()) == 1


def test_the_report_view_reads_bucket_outcomes() -> None:
    report = Report.from_journal(copy.deepcopy(journal()))
    assert (report.timeline[0].ok, report.timeline[0].fail, report.timeline[0].info) == (8, 1, 3)
