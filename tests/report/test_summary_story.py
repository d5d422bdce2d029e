"""The terminal summary read as a user reads it: what happened, honest check values, where an
aborted run stopped, and a live line that counts what matters."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from rich.console import Console

from chaospool._report.happened import fmt_observed
from chaospool._report.terminal import LiveProgress, summary_text

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


def _row(text: str, *cells: str) -> bool:
    return any(all(c in line for c in cells) for line in text.splitlines())


def passing(journal: dict[str, Any]) -> dict[str, Any]:
    journal["ok"] = True
    for check in journal["checks"]:
        check["ok"] = True
    journal["events"] = [
        {"t": 5.0, "kind": "crash", "index": 3, "pid": 41021},
        {"t": 5.18, "kind": "restart", "index": 3, "pid": None},
        {"t": 6.0, "kind": "crash", "index": 1, "pid": 41019},
        {"t": 6.18, "kind": "restart", "index": 1, "pid": None},
        {"t": 6.5, "kind": "circuit_open", "index": None, "pid": None},
    ]
    return journal


def test_a_passing_run_still_says_what_happened_without_verbose(journal: dict[str, Any]) -> None:
    out = summary_text(passing(journal))
    assert "PASSED" in out
    assert "faults: 3 injected" in out
    # each fault with where it acted and one line of evidence
    assert "F1 kill worker #1 (port_crash) at 5.00 s on slot 3 (pid 41021)" in out
    assert re.search(r"^\s+signal=SIGKILL mode=kill killed=1 ", out, re.MULTILINE)
    assert "pool: 2 worker crashes, 2 replacements, 1 circuit opening" in out
    assert "workers restarted: 3" in out
    assert "operations recovered (succeeded after a failed attempt): 146" in out
    assert ("errors: 255 of 11935 operations: worker_crashed 195, request_timeout 40, "
            "checkout_timeout 10") in out


def test_a_baseline_run_without_errors_says_so(journal: dict[str, Any]) -> None:
    journal.update(faults=[])
    journal["metrics"].update(errors=0, errors_by_kind={})
    out = summary_text(journal)
    assert "faults: none (a baseline run)" in out
    assert "errors: none of 11935 operations" in out


@pytest.mark.parametrize(
    ("metric", "expected", "observed", "ok", "shown"),
    [
        # never "== 1" next to a value that reads as 1 while errors exist
        ("success_rate", "== 1", 0.99996, False, "0.99996"),
        ("success_rate", ">= 99%", 0.99996, True, "99.996%"),
        ("success_rate", ">= 0.95", 0.9787, True, "0.9787"),
        ("success_rate", ">= 0.95", 1.0, True, "1.00"),
        ("p99_latency", "< 500ms", 0.0213, True, "21.3ms"),
        ("p99_latency", "< 2s", 0.0096, True, "0.010s"),
        ("p99_latency", "< 500ms", 0.55213457, False, "552.1346ms"),  # failing: 7 digits
        ("worker_restarts", ">= 2", 3, True, "3"),
        ("recovery_time", "< 5s", 2.82, True, "2.8s"),
        ("throughput", ">= 500/s", 397.83, False, "397.83/s"),
        ("success_rate", "== 1", 896 / 933, False, "0.960343"),  # exact to 7 digits
    ],
)
def test_observed_in_the_expected_values_unit_and_precision(
    metric: str, expected: str, observed: float, ok: bool, shown: str
) -> None:
    assert fmt_observed(metric, expected, observed, ok) == shown


def test_check_rows_show_the_unit_of_the_expected_value(journal: dict[str, Any]) -> None:
    journal["checks"].append({"metric": "success_rate", "phase": "overall", "expected": "== 1",
                              "observed": 0.9787, "ok": False})
    out = summary_text(journal)
    assert _row(out, "✗", "success_rate", "== 1", "0.9787")
    assert not _row(out, "== 1", "100.00%")


def test_an_aborted_run_says_where_it_stopped_and_flags_its_checks(
    journal: dict[str, Any],
) -> None:
    journal.update(status="aborted", elapsed=2.83, duration=15.0)
    out = summary_text(journal)
    assert "stopped at 2.8 s of 15 s: metrics and checks cover an incomplete run" in out
    assert "Checks (evaluated on an incomplete run)" in out
    quiet = summary_text(journal, quiet=True)
    assert "stopped at 2.8 s of 15 s" in quiet


def test_verbose_lists_only_error_kinds_that_occurred(journal: dict[str, Any]) -> None:
    for phase in journal["phases"].values():
        phase["errors_by_kind"] = {**phase["errors_by_kind"], "queue_full": 0}
    out = summary_text(journal, verbose=True)
    assert "worker_crashed" in out
    assert "queue_full" not in out


def test_verbose_evidence_rows_are_never_folded_json(journal: dict[str, Any]) -> None:
    out = summary_text(journal, verbose=True, width=80)
    assert "{" not in out.split("Fault evidence", 1)[1]
    assert _row(out, "respawn_seconds", "0.18")


def test_live_line_counts_faults_restarts_errors_and_keeps_a_kill_visible() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=200, color_system=None)
    with LiveProgress(console, total=15.0, title="cascade") as progress:
        progress.update(elapsed=6.1, ops=2400, success_rate=0.97, active_faults=[],
                        faults_done=2, faults_total=3, restarts=2, errors=72,
                        recent_faults=("kill-b",))
    out = buffer.getvalue()
    for text in ("faults 2/3", "kill-b (done)", "restarts 2", "errors 72"):
        assert text in out, (text, out)
