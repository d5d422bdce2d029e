"""The terminal summary (plain on a pipe) and the live progress line (TTY only)."""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest
from rich.console import Console

from chaospool._report.terminal import LiveDisplay, LiveProgress, render_summary, summary_text

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


def _pipe() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=False, width=120), buffer


def _tty() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=160), buffer


def _row(text: str, *cells: str) -> bool:
    return any(all(c in line for c in cells) for line in text.splitlines())


def test_summary_has_check_rows_phases_seed_and_reproduce(journal: dict[str, Any]) -> None:
    console, buffer = _pipe()
    render_summary(journal, console)
    out = buffer.getvalue()
    assert "\x1b[" not in out  # plain text on a pipe
    # observed in the expected value's unit and precision
    assert _row(out, "✓", "success_rate", "overall", ">= 0.95", "0.9787")
    assert _row(out, "✗", "p99_latency", "overall", "< 500ms", "552ms")
    assert _row(out, "✓", "success_rate", "after", ">= 0.99", "0.9979")
    assert _row(out, "during", "930", "76.34%", "610.0 ms", "426.6/s")
    assert "FAILED · status completed · 4/5 checks passed" in out
    assert "seed 42" in out
    assert "chaospool run experiments/cascade.yaml --seed 42" in out
    assert _row(out, "F2 kill worker #2 (port_crash)", "1:41019")


def test_quiet_shows_verdict_and_failed_checks_only(journal: dict[str, Any]) -> None:
    out = summary_text(journal, quiet=True)
    assert "4/5 checks passed" in out
    assert "p99_latency" in out
    assert "recovery_time" not in out
    assert "Phases" not in out


def test_verbose_adds_errors_by_kind_and_evidence(journal: dict[str, Any]) -> None:
    out = summary_text(journal, verbose=True, journal_path="out/j.json")
    assert _row(out, "worker_crashed", "0", "180", "15", "195")
    assert _row(out, "F1 kill worker #1 (port_crash)", "signal", "SIGKILL")
    assert _row(out, "killed", "1: 41021")  # a compact table, not JSON folded across lines
    assert '"killed"' not in out
    assert "journal: out/j.json" in out


def test_summary_on_a_terminal_is_coloured(journal: dict[str, Any]) -> None:
    console, buffer = _tty()
    render_summary(journal, console)
    assert "\x1b[" in buffer.getvalue()


def test_progress_is_a_noop_on_a_pipe() -> None:
    console, buffer = _pipe()
    with LiveProgress(console, total=30.0) as progress:
        assert not progress.enabled
        progress.update(elapsed=1.0, ops=10, success_rate=1.0, active_faults=["F1"])
    assert buffer.getvalue() == ""


def test_progress_can_be_disabled_on_a_tty() -> None:
    console, buffer = _tty()
    with LiveProgress(console, total=30.0, enabled=False) as progress:
        progress.update(elapsed=1.0, ops=10, success_rate=1.0)
    assert buffer.getvalue() == ""


def test_progress_draws_on_a_tty_without_a_thread() -> None:
    console, buffer = _tty()
    threads = threading.active_count()
    with LiveDisplay(console, title="cascade") as progress:
        assert progress.enabled
        progress.update(elapsed=12.5, total=30.0, ops=4321, success_rate=0.934,
                        active_faults=["F2 kill worker #2"])
        assert threading.active_count() == threads
    out = buffer.getvalue()
    for text in ("cascade", "12.5/30.0 s", "ops 4,321", "success 93.40%", "F2 kill worker #2"):
        assert text in out, text


def test_progress_close_is_idempotent() -> None:
    console, _ = _tty()
    progress = LiveProgress(console, total=1.0).__enter__()
    progress.close()
    progress.close()
    progress.update(elapsed=1.0, ops=1, success_rate=None)  # after close: ignored


def test_problems_are_listed_under_the_verdict(journal: dict[str, Any]) -> None:
    journal.update(status="aborted", error="interrupted by SIGINT")
    out = summary_text(journal, quiet=True)
    assert "status aborted" in out
    assert "run error: interrupted by SIGINT" in out
