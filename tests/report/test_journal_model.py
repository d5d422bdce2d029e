"""The journal as typed records (chaospool/_journal.py, docs/reports.md "The journal").

The engine builds a ``Journal``, the reports read one, and what is written is the same JSON as
before the model existed: every key in its place, an int still an int. A journal file is
decoded into the model, so a malformed one is refused with the JSON path of the bad value.
"""

from __future__ import annotations

import copy
import json
import random
import textwrap
from pathlib import Path
from typing import Any

import msgspec
import pytest

import chaospool
from chaospool._journal import (
    METRIC_KEYS,
    Bucket,
    Check,
    FaultRecord,
    Journal,
    JournalShapeError,
    Metrics,
    as_journal,
)
from chaospool._report import files
from chaospool._report._format import reproduce_command
from chaospool._report.journal import Report

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


def _canonical(journal: dict[str, Any]) -> str:
    return json.dumps(journal, sort_keys=True, allow_nan=False)


def _written(journal: dict[str, Any], path: Path) -> bytes:
    files.write_journal(journal, path)
    return path.read_bytes()


def test_the_fixture_journal_round_trips_key_by_key(journal: dict[str, Any]) -> None:
    typed = as_journal(journal)
    assert isinstance(typed, Journal)
    assert typed.to_dict() == journal
    assert Report.from_journal(journal).to_dict() == journal
    # the hand-made fixture has its own key order; a real run's is checked below
    assert _canonical(typed.to_dict()) == _canonical(journal)


def test_free_form_evidence_and_extra_records_survive(journal: dict[str, Any]) -> None:
    j = copy.deepcopy(journal)
    j["faults"][0]["effect"] = {"nodes": [{"node": 1, "raylet": {"pid": 7, "stopped": True}}],
                                "workers": {"3": {"before": 101, "after": None}}}
    j["metrics"].update(outcomes={"ok": 9, "fail": 0, "info": 1}, indeterminate=1,
                        maybe_duplicated=2, lost_updates=0, stale_reads=None)
    j["consistency"] = {
        "sessions": 2, "increments_acknowledged": 5, "lost_updates": 1, "stale_reads": 0,
        "increments_indeterminate": 1, "reads": 4, "overcounts": 0,
        "findings": [{"kind": "lost_update", "session": "s0", "expected": "at least 3",
                      "observed": 2, "operations": [{"f": "chaospool.read", "invoke": 1.5,
                                                     "complete": 1.5125, "pid": 44,
                                                     "value": 2}]}]}
    j["events"] = [{"t": 5.01, "kind": "crash", "index": 2, "pid": 9, "signal": "SIGKILL"}]
    j["load"] = {"mode": "closed", "clients": 4, "mix": [{"command": "echo", "weight": 1}]}
    typed = as_journal(j)
    assert typed.to_dict() == j
    assert typed.faults[0].effect["nodes"][0]["raylet"]["stopped"] is True
    assert typed.consistency
    assert typed.consistency.findings[0].operations[0].pid == 44


def test_numbers_keep_their_json_type() -> None:
    j = as_journal({"metrics": {"total": 3, "throughput": 0, "p99_latency": 1.0,
                                "recovery_time": 0}, "timeline": [{"t": 0, "succeeded": 1}]})
    out = j.to_dict()
    assert json.dumps(out["metrics"]["throughput"]) == "0"
    assert json.dumps(out["metrics"]["p99_latency"]) == "1.0"
    assert json.dumps(out["timeline"][0]["t"]) == "0"


def test_unrecorded_keys_stay_absent_and_recorded_nulls_stay_null() -> None:
    out = as_journal({"metrics": {"success_rate": None},
                      "timeline": [{"t": 0.5, "p99_latency": None}]}).to_dict()
    assert "outcomes" not in out["metrics"]
    assert "consistency" not in out
    assert out["metrics"]["success_rate"] is None
    assert "latency_bands" not in out["timeline"][0]
    assert out["timeline"][0]["p99_latency"] is None


def test_records_read_as_attributes_and_as_mappings(journal: dict[str, Any]) -> None:
    report = Report.from_journal(journal)
    assert report.metrics.total == report.metrics["total"] == journal["metrics"]["total"]
    assert dict(report.metrics) == journal["metrics"]
    assert report.phases.after["recovered"] == journal["phases"]["after"]["recovered"]
    check = report.checks[0]
    assert isinstance(check, Check)
    assert check["observed"] == check.observed
    fault = report.faults[0]
    assert isinstance(fault, FaultRecord)
    pid = journal["faults"][0]["targets"][0]["pid"]
    assert fault.targets[0].pid == fault.targets[0]["pid"] == pid
    assert isinstance(report.timeline[0], Bucket)
    with pytest.raises(KeyError):
        _ = report.timeline[0]["latency_bands"]  # not recorded in this (older) journal
    with pytest.raises(AttributeError, match="metrics: total, succeeded"):
        _ = report.metrics.sucess_rate


def test_metric_keys_are_the_models_fields() -> None:
    assert Metrics.__struct_fields__ == METRIC_KEYS
    assert METRIC_KEYS[:3] == ("total", "succeeded", "errors")


def test_a_report_is_a_copy(journal: dict[str, Any]) -> None:
    report = Report.from_journal(journal)
    out = report.to_dict()
    out["faults"][0]["effect"]["signal"] = "changed"
    out["metrics"]["total"] = -1
    assert report.to_dict()["faults"][0]["effect"]["signal"] == "SIGKILL"
    assert report.metrics.total == journal["metrics"]["total"]


def _random_value(rng: random.Random, depth: int) -> Any:
    if depth <= 0 or rng.random() < 0.4:
        return rng.choice((None, True, 0, -3, 0.25, 1e-9, "x", "ü\x00"))
    if rng.random() < 0.5:
        return [_random_value(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {f"k{i}": _random_value(rng, depth - 1) for i in range(rng.randint(0, 3))}


def test_any_json_evidence_round_trips(journal: dict[str, Any]) -> None:
    rng = random.Random(11)
    for _ in range(200):
        j = copy.deepcopy(journal)
        for fault in j["faults"]:
            fault["effect"] = {f"e{i}": _random_value(rng, 3) for i in range(rng.randint(0, 4))}
        assert _canonical(Report.from_journal(j).to_dict()) == _canonical(j)


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ('{"metrics": {"total": 1.5}}', "$.metrics.total"),
        ('{"metrics": {}, "checks": [{"metric": "total", "ok": "yes"}]}', "$.checks[0].ok"),
        ('{"metrics": {}, "faults": [{"effect": [1]}]}', "$.faults[0].effect"),
        ('{"metrics": {}, "timeline": [{"succeeded": 1}]}', "$.timeline[0]"),
        ('{"metrics": {}, "consistency": {"findings": [{"operations": 3}]}}',
         "$.consistency.findings[0].operations"),
    ],
)
def test_a_malformed_journal_names_the_bad_value(
    content: str, where: str, tmp_path: Path
) -> None:
    path = tmp_path / "j.json"
    path.write_text(content)
    with pytest.raises(files.JournalFormatError, match="not a chaospool journal") as info:
        files.read_journal(path)
    assert where in str(info.value)
    with pytest.raises(JournalShapeError):
        as_journal(json.loads(content))


def test_a_history_journal_has_no_reproduce_command(journal: dict[str, Any]) -> None:
    j = {k: v for k, v in journal.items() if k != "reproduce"}
    assert reproduce_command(as_journal(j)) is not None
    history = as_journal({**j, "seed": None, "source": "history",
                          "experiment": {"title": "history h.jsonl", "path": "h.jsonl"}})
    assert reproduce_command(history) is None


# -- a real run ---------------------------------------------------------------------------------

EXPERIMENT = """\
version: 1
title: typed journal
seed: 9
duration: 1s
pool: {worker: chaospool.workers.demo, size: 2}
load:
  clients: 2
  consistency: true
  mix: [{command: echo, args: {x: 1}}]
steady_state:
  success_rate: ">= 0.5"
  during:
    total: ">= 0"
method:
  - {fault: port_crash, name: kill, at: 300ms, target: {worker: 0}}
"""


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_real_runs_journal_is_written_exactly_as_the_model_says(tmp_path: Path) -> None:
    """Every key and number of a real run's journal file survives decoding into the model
    and writing again, byte for byte."""
    exp = tmp_path / "exp.yaml"
    exp.write_text(textwrap.dedent(EXPERIMENT), encoding="utf-8")
    report = chaospool.run(str(exp), journal=tmp_path / "j.json")
    written = (tmp_path / "j.json").read_bytes()
    data = json.loads(written)
    assert data == report.to_dict()
    assert list(data) == list(report.to_dict())
    again = files.read_journal(tmp_path / "j.json")
    assert _written(again.to_dict(), tmp_path / "again.json") == written
    assert msgspec.json.decode(written, type=Journal) == again
    for key in ("consistency", "events", "load", "latency_band_edges", "reproduce"):
        assert key in data, key
    assert set(data["metrics"]) == set(METRIC_KEYS)
