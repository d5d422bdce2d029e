"""A realistic journal (docs/reports.md) for the report tests, until a real engine writes one.

Thirty one-second buckets: steady traffic, three ``port_crash`` kills at 5 s, 6 s and 7 s that
make the success rate dip, and a recovery by about 11 s. Every key of the journal is present.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

_KINDS = ("worker_crashed", "request_timeout", "checkout_timeout")


def _metrics(total: int, errors: int, recovered: int, p99: float, seconds: float,
             errors_by_kind: dict[str, int], restarts: int,
             recovery: float | None) -> dict[str, Any]:
    succeeded = total - errors
    return {
        "total": total,
        "succeeded": succeeded,
        "errors": errors,
        "recovered": recovered,
        "success_rate": succeeded / total if total else None,
        "error_rate": errors / total if total else None,
        "throughput": total / seconds,
        "mean_latency": p99 / 6,
        "p50_latency": p99 / 8,
        "p90_latency": p99 / 3,
        "p95_latency": p99 / 2,
        "p99_latency": p99,
        "p999_latency": p99 * 1.6,
        "max_latency": p99 * 2.4,
        "worker_restarts": restarts,
        "recovery_time": recovery,
        "errors_by_kind": errors_by_kind,
    }


def _bucket(t: int) -> dict[str, Any]:
    # Baseline ~400 ops/s; the kills at 5-7 s cost errors and latency, then it climbs back.
    dip = {5: (300, 60, 30, 0.41), 6: (250, 90, 40, 0.62), 7: (240, 70, 45, 0.55),
           8: (330, 20, 25, 0.21), 9: (380, 5, 6, 0.09)}
    ok, err, rec, p99 = dip.get(t, (400 + (t * 7) % 13, 0, 0, 0.018 + (t % 4) * 0.002))
    active = ["F1"] if t == 5 else ["F2"] if t == 6 else ["F3"] if t == 7 else []
    return {"t": float(t), "succeeded": ok, "errors": err, "recovered": rec,
            "p99_latency": p99, "faults_active": active}


def _fault(i: int, at: float, pid: int, index: int, new_pid: int) -> dict[str, Any]:
    return {
        "fault": "port_crash",
        "name": f"kill worker #{i}",
        "targets": [{"index": index, "pid": pid}],
        "injected_at": at,
        "reverted_at": at + 0.18,
        "effect": {"signal": "SIGKILL", "mode": "kill", "killed": [pid],
                   "exitcodes": {str(pid): -9}, "replacements": {str(index): new_pid},
                   "respawn_seconds": 0.18},
        "error": None,
    }


def _checks() -> list[dict[str, Any]]:
    return [
        {"metric": "success_rate", "phase": "overall", "expected": ">= 0.95",
         "observed": 0.9787, "ok": True},
        {"metric": "recovered", "phase": "overall", "expected": "> 0", "observed": 146,
         "ok": True},
        {"metric": "p99_latency", "phase": "overall", "expected": "< 500ms",
         "observed": 0.552, "ok": False},
        {"metric": "success_rate", "phase": "after", "expected": ">= 0.99",
         "observed": 0.9979, "ok": True},
        {"metric": "recovery_time", "phase": "overall", "expected": "< 5s",
         "observed": 2.82, "ok": True},
    ]


def make_journal() -> dict[str, Any]:
    """Return a fresh copy of the sample journal (tests may mutate it)."""
    timeline = [_bucket(t) for t in range(30)]
    errs_before = {}
    during = {"worker_crashed": 180, "request_timeout": 40}
    after = {"worker_crashed": 15, "checkout_timeout": 10}
    overall = {k: during.get(k, 0) + after.get(k, 0) for k in _KINDS}
    return copy.deepcopy({
        "chaospool_version": "0.1.0",
        "seed": 42,
        "started_at": "2026-11-26T03:30:00.000000+00:00",
        "ended_at": "2026-11-26T03:30:30.214000+00:00",
        "experiment": {"title": "Cascading worker failures under load",
                       "path": "experiments/cascade.yaml",
                       "sha256": "9f2c1e4b7a0d3c5e8f6a1b2c3d4e5f60"
                                 "718293a4b5c6d7e8f9a0b1c2d3e4f5a6"},
        "status": "completed",
        "ok": False,
        # Beyond the keys docs/reports.md requires, the engine also records these:
        "error": None,
        "duration": 30.0,
        "elapsed": 30.02,
        "reproduce": "chaospool run experiments/cascade.yaml --seed 42",
        "plugin_errors": [],
        "metrics": _metrics(11935, 255, 146, 0.552, 30.0, overall, 3, 2.82),
        "phases": {
            "before": _metrics(2016, 0, 0, 0.021, 5.0, errs_before, 0, None),
            "during": _metrics(930, 220, 115, 0.61, 2.18, during, 3, None),
            "after": _metrics(8989, 35, 31, 0.19, 22.82, after, 0, None),
        },
        "checks": _checks(),
        "faults": [_fault(1, 5.0, 41021, 3, 41377), _fault(2, 6.0, 41019, 1, 41402),
                   _fault(3, 7.0, 41022, 4, 41431)],
        "timeline": timeline,
    })


@pytest.fixture
def journal() -> dict[str, Any]:
    return make_journal()


@pytest.fixture
def journal_path(tmp_path: Path, journal: dict[str, Any]) -> Path:
    """The sample journal written to a file, as ``--journal`` would."""
    path = tmp_path / "journal.json"
    path.write_text(json.dumps(journal, indent=2), encoding="utf-8")
    return path
