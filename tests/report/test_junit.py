"""JUnit XML: one testcase per check, failures with expected vs observed, a run error case."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from chaospool._report.junit import render_junit, write_junit

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

CLASSNAME = "chaospool.Cascading worker failures under load"


def _suite(journal: dict[str, Any]) -> ET.Element:
    root = ET.fromstring(render_junit(journal))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    return suites[0]


def _counts(elem: ET.Element) -> tuple[int, int, int]:
    return int(elem.get("tests", -1)), int(elem.get("failures", -1)), int(elem.get("errors", -1))


def test_one_testcase_per_check_and_counts(journal: dict[str, Any]) -> None:
    suite = _suite(journal)
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "overall.success_rate >= 0.95",
        "overall.recovered > 0",
        "overall.p99_latency < 500ms",
        "after.success_rate >= 0.99",
        "overall.recovery_time < 5s",
    ]
    assert {c.get("classname") for c in cases} == {CLASSNAME}
    assert _counts(suite) == (5, 1, 0)
    assert len(suite.findall("testcase/failure")) == 1


def test_failure_says_expected_and_observed(journal: dict[str, Any]) -> None:
    failure = _suite(journal).find("testcase[@name='overall.p99_latency < 500ms']/failure")
    assert failure is not None
    message = failure.get("message", "")
    assert "< 500ms" in message
    assert "552.0 ms" in message
    assert "expected" in (failure.text or "")
    assert "0.552" in (failure.text or "")


@pytest.mark.parametrize("status", ["failed", "aborted"])
def test_broken_run_adds_an_error_case(journal: dict[str, Any], status: str) -> None:
    journal["status"] = status
    journal["faults"][1]["error"] = "OSError: no such process"
    suite = _suite(journal)
    assert _counts(suite) == (6, 1, 1)
    error = suite.find("testcase[@name='run']/error")
    assert error is not None
    assert status in error.get("message", "")
    assert "OSError: no such process" in error.get("message", "")
    root = ET.fromstring(render_junit(journal))
    assert _counts(root) == (6, 1, 1)


def test_classname_falls_back_to_file_stem(journal: dict[str, Any]) -> None:
    journal["experiment"]["title"] = ""
    journal["checks"] = [dict(journal["checks"][0], ok=True)]
    suite = _suite(journal)
    assert suite.find("testcase").get("classname") == "chaospool.cascade"  # type: ignore[union-attr]
    assert _counts(suite) == (1, 0, 0)


def test_no_checks_completed_run_is_an_empty_suite(journal: dict[str, Any]) -> None:
    journal["checks"] = []
    assert _counts(_suite(journal)) == (0, 0, 0)


def test_seed_and_reproduce_are_properties(journal: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit(journal, path)
    props = {p.get("name"): p.get("value") for p in ET.parse(path).iter("property")}
    assert props["seed"] == "42"
    assert props["reproduce"] == "chaospool run experiments/cascade.yaml --seed 42"


def test_run_error_and_plugin_errors_reach_the_error_message(journal: dict[str, Any]) -> None:
    journal.update(status="failed", error="WorkerStartError: worker 0 exited during start-up",
                   plugin_errors=[{"plugin": "cpu_hog", "hook": "chaospool_experiment_end",
                                   "error": "ValueError: x", "count": 2}])
    error = _suite(journal).find("testcase[@name='run']/error")
    assert error is not None
    message = error.get("message", "")
    assert "run error: WorkerStartError: worker 0 exited during start-up" in message
    assert "plugin 'cpu_hog' raised in chaospool_experiment_end: ValueError: x (2 times)" in message
