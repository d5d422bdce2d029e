"""Shared helpers for the engine and CLI tests: run the CLI, check a journal adds up."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"


def cli(*args: str, cwd: Path | None = None, timeout: float = 90.0,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``chaospool`` as a user would (a subprocess), output captured (so: not a TTY)."""
    return subprocess.run(
        [sys.executable, "-m", "chaospool.cli", *args],
        cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, check=False,
    )


def load_journal(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def assert_adds_up(journal: dict[str, Any]) -> None:
    """Jepsen-style bookkeeping: every count in the journal agrees with every other."""
    m = journal["metrics"]
    assert m["total"] == m["succeeded"] + m["errors"]
    assert sum(m["errors_by_kind"].values()) == m["errors"]
    assert m["recovered"] <= m["succeeded"]
    phases = journal["phases"]
    for key in ("total", "succeeded", "errors", "recovered"):
        assert sum(phases[p][key] for p in ("before", "during", "after")) == m[key], key
    buckets = journal["timeline"]
    assert sum(b["succeeded"] for b in buckets) == m["succeeded"]
    assert sum(b["errors"] for b in buckets) == m["errors"]
    widths = {round(b2["t"] - b1["t"], 6) for b1, b2 in itertools.pairwise(buckets)}
    assert len(widths) <= 1
    assert all(0 < w <= 1.0 for w in widths)
    for fault in journal["faults"]:
        if fault["error"] is None:
            assert fault["injected_at"] is not None
            assert fault["reverted_at"] is not None
            assert fault["reverted_at"] >= fault["injected_at"]
