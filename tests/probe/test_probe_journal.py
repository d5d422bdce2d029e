"""The journal: checks from tolerances, assembly, and the Report view over it."""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

from chaospool._journal import (
    METRIC_KEYS,
    Check,
    ExperimentInfo,
    Metrics,
    Phases,
    assemble,
    evaluate_checks,
    journal_ok,
)
from chaospool._probe import Recorder, summarize
from chaospool._report.journal import Report

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


@dataclass(frozen=True)
class Tol:
    metric: str
    phase: str
    op: str
    value: float
    text: str = ""


def a_summary() -> dict[str, Any]:
    rng = random.Random(3)
    rec = Recorder()
    for i in range(400):
        start = i / 40
        crashed = 4.0 <= start < 6.0 and rng.random() < 0.5
        rec.record(start, start + 0.01, "worker_crashed" if crashed else "ok",
                   attempts=2 if 6.0 <= start < 6.5 else 1)
    return summarize(rec, first_inject=4.0, last_revert=6.0, end=10.0, bucket=0.5,
                     faults=[("kill", 4.0, 6.0)], worker_restarts=3)


def checks_of(tolerances: list[Tol], summary: dict[str, Any]) -> list[dict[str, Any]]:
    metrics = msgspec.convert(summary["metrics"], Metrics)
    phases = msgspec.convert(summary.get("phases") or {}, Phases)
    return [c.to_dict() for c in evaluate_checks(tolerances, metrics, phases)]


def a_journal(tolerances: list[Tol] | None = None, status: str = "completed") -> dict[str, Any]:
    summary = a_summary()
    tolerances = tolerances if tolerances is not None else [
        Tol("success_rate", "overall", ">=", 0.8, ">= 80%"),
        Tol("recovered", "overall", ">", 0, "> 0"),
        Tol("success_rate", "during", ">=", 0.99, ">= 0.99"),
        Tol("p99_latency", "after", "<", 0.5, "< 500ms"),
    ]
    return assemble(
        chaospool_version="0.1.0", seed=42,
        started_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        ended_at="2026-01-02T03:04:15+00:00",
        experiment=ExperimentInfo(title="Kill one", path="experiments/kill one.yaml",
                                  sha256="ab"),
        status=status, summary=summary,
        checks=[Check(**c) for c in checks_of(tolerances, summary)],
        faults=[{"fault": "port_crash", "name": "kill", "targets": [{"index": 1, "pid": 99}],
                 "injected_at": 4.0, "reverted_at": 6.0, "effect": {"signal": 9},
                 "error": None}],
        load={"mode": "closed"},
    ).to_dict()


def test_checks_compare_the_named_phase_and_record_what_was_seen() -> None:
    j = a_journal()
    checks = {(c["metric"], c["phase"]): c for c in j["checks"]}
    assert checks[("success_rate", "overall")]["ok"] is True
    assert checks[("success_rate", "overall")]["expected"] == ">= 80%"
    assert checks[("success_rate", "overall")]["observed"] == j["metrics"]["success_rate"]
    assert checks[("recovered", "overall")]["ok"] is True
    during = checks[("success_rate", "during")]
    assert during["observed"] == j["phases"]["during"]["success_rate"] < 0.99
    assert during["ok"] is False
    assert checks[("p99_latency", "after")]["ok"] is True
    assert j["ok"] is False


@pytest.mark.parametrize(
    ("op", "value", "ok"),
    [("<", 11, True), ("<=", 10, True), (">", 10, False), (">=", 10, True), ("==", 10, True),
     ("!=", 10, False), ("==", 10.0000000001, True)],
)
def test_every_operator(op: str, value: float, ok: bool) -> None:
    summary = {"metrics": {"total": 10}, "phases": {}}
    [check] = checks_of([Tol("total", "overall", op, value)], summary)
    assert check["ok"] is ok
    assert check["expected"] == f"{op} {value:g}"


def test_a_missing_observation_fails_the_check() -> None:
    summary = {"metrics": {"recovery_time": None}, "phases": {"after": {}}}
    checks = checks_of(
        [Tol("recovery_time", "overall", "<", 5.0, "< 5s"),
         Tol("success_rate", "after", ">=", 0.9, ">= 0.9")], summary)
    assert [c["ok"] for c in checks] == [False, False]
    assert [c["observed"] for c in checks] == [None, None]


def test_checks_use_the_dsl_tolerance_when_it_is_there() -> None:
    model = pytest.importorskip("chaospool._dsl.model")
    tol = model.Tolerance(metric="total", phase="overall", op=">", value=5.0, text="> 5")
    [check] = checks_of([tol], {"metrics": {"total": 6}})
    assert check == {"metric": "total", "phase": "overall", "expected": "> 5", "observed": 6,
                     "ok": True}


def test_ok_needs_a_completed_run_and_every_check() -> None:
    held, failed = Check(metric="total", ok=True), Check(metric="total", ok=False)
    assert journal_ok("completed", [held])
    assert journal_ok("completed", [])
    assert not journal_ok("completed", [held, failed])
    assert not journal_ok("aborted", [held])
    assert not journal_ok("failed", [])


def test_the_journal_has_the_contract_keys_and_is_json() -> None:
    j = a_journal()
    for key in ("chaospool_version", "seed", "started_at", "ended_at", "experiment", "status",
                "ok", "metrics", "phases", "checks", "faults", "timeline"):
        assert key in j
    assert set(j["metrics"]) == set(METRIC_KEYS)
    assert j["started_at"] == "2026-01-02T03:04:05+00:00"
    assert j["experiment"] == {"title": "Kill one", "path": "experiments/kill one.yaml",
                               "sha256": "ab"}
    assert j["load"] == {"mode": "closed"}
    assert json.loads(json.dumps(j, allow_nan=False)) == j
    with pytest.raises(ValueError, match="status"):
        assemble(chaospool_version="0", seed=1, started_at=None, ended_at=None,
                 experiment=ExperimentInfo(), status="done", summary=a_summary(), checks=[],
                 faults=[])
    with pytest.raises(TypeError, match="no key 'elapsd'"):
        assemble(chaospool_version="0", seed=1, started_at=None, ended_at=None,
                 experiment=ExperimentInfo(), status="completed", summary=a_summary(),
                 checks=[], faults=[], elapsd=1.0)


def test_report_reads_the_journal() -> None:
    j = a_journal()
    report = Report.from_journal(j, journal_path="/tmp/j.json")
    assert report.ok is False
    assert report.status == "completed"
    assert report.seed == 42
    assert report.journal_path == "/tmp/j.json"
    assert report.metrics.success_rate == j["metrics"]["success_rate"]
    assert report.metrics["total"] == report.metrics.total == 400
    assert report.metrics.worker_restarts == 3
    assert report.metrics.errors_by_kind["worker_crashed"] == report.metrics.errors
    assert report.phases.after.recovered == j["phases"]["after"]["recovered"] > 0
    assert report.phases["during"]["total"] == j["phases"]["during"]["total"]
    check = report.checks[2]
    assert (check.metric, check.phase, check.expected, check.ok) == (
        "success_rate", "during", ">= 0.99", False)
    assert check["observed"] == check.observed
    [fault] = report.faults
    assert (fault.fault, fault.name, fault.injected_at, fault.reverted_at, fault.error) == (
        "port_crash", "kill", 4.0, 6.0, None)
    assert fault.targets[0].pid == fault.targets[0]["pid"] == 99
    assert fault.effect == {"signal": 9}
    assert len(report.timeline) == len(j["timeline"])
    assert report.timeline[8].t == 4.0
    assert "kill" in report.timeline[8].faults_active


def test_to_dict_is_the_journal_and_a_copy() -> None:
    j = a_journal()
    report = Report.from_journal(j)
    d = report.to_dict()
    assert d == j
    d["metrics"]["total"] = -1
    j["seed"] = 0
    assert report.metrics.total == 400
    assert report.to_dict()["metrics"]["total"] == 400
    assert report.seed == 42


def test_unknown_metric_is_an_attribute_error_naming_the_metrics() -> None:
    report = Report.from_journal(a_journal())
    with pytest.raises(AttributeError, match="success_rate"):
        _ = report.metrics.succes_rate
    with pytest.raises(KeyError):
        _ = report.checks[0]["nope"]


def test_assert_ok_passes_when_every_check_held() -> None:
    report = Report.from_journal(a_journal([Tol("total", "overall", ">", 0, "> 0")]))
    assert report.ok
    report.assert_ok()


def test_assert_ok_shows_a_table_of_failed_checks_seed_and_reproduce_command() -> None:
    report = Report.from_journal(a_journal(), journal_path="out/j.json")
    with pytest.raises(AssertionError) as info:
        report.assert_ok()
    text = str(info.value)
    assert "1 of 4 checks failed" in text
    assert "seed 42" in text
    lines = text.splitlines()
    header = next(line for line in lines if "expected" in line)
    assert header.split() == ["check", "phase", "expected", "observed"]
    row = next(line for line in lines if line.split()[:2] == ["success_rate", "during"])
    assert ">= 0.99" in row
    assert "%" in row  # the observed rate, formatted
    assert "journal: out/j.json" in text
    assert "reproduce: chaospool run 'experiments/kill one.yaml' --seed 42" in text


def test_assert_ok_fails_an_aborted_run_and_names_fault_errors() -> None:
    j = a_journal([], status="failed")
    j["faults"][0]["error"] = "OSError: no such process"
    report = Report.from_journal(j)
    assert not report.ok
    with pytest.raises(AssertionError, match="status failed") as info:
        report.assert_ok()
    assert "OSError: no such process" in str(info.value)


def test_report_is_the_public_one() -> None:
    import chaospool

    assert chaospool.Report is Report
