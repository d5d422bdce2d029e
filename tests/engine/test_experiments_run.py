"""Every shipped experiment runs green, shortened with --set (as CI runs them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from engine_helpers import EXPERIMENTS, assert_adds_up, cli, load_journal

from chaospool._dsl.units import parse_duration, parse_rate, print_duration, print_rate

pytestmark = [pytest.mark.system, pytest.mark.chaos]

# Each run is scaled to this share of its length: the fault pattern stays, the wall time drops.
SCALE = 0.4
TIMED_STEP_KEYS = ("at", "every", "duration")


def _scaled(value: Any) -> str:
    return print_duration(round(parse_duration(value) * SCALE, 3))


def shortening_overrides(path: Path) -> list[str]:
    """``--set`` arguments that scale the run's duration and every step's times."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    sets = [f"duration={_scaled(raw.get('duration', '30s'))}"]
    for i, step in enumerate(raw.get("method") or []):
        sets += [f"method.{i}.{key}={_scaled(step[key])}" for key in TIMED_STEP_KEYS
                 if key in step]
        if "rate" in step:  # a leak must reach the same size in the shorter time
            faster = parse_rate(step["rate"]) / SCALE
            sets.append(f"method.{i}.rate={print_rate(faster, size=True)}")
    return sets


def _on_ray(path: Path) -> bool:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return bool((raw.get("pool") or {}).get("backend") == "ray")


# Experiments on Ray run in tests/ray, against the session's one cluster (never two at once)
@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "path", [p for p in sorted(EXPERIMENTS.glob("*.yaml")) if not _on_ray(p)], ids=lambda p: p.stem
)
def test_experiment_runs_green(path: Path, tmp_path: Path) -> None:
    args = ["run", str(path), "--journal", str(tmp_path / "j.json")]
    for item in shortening_overrides(path):
        args += ["--set", item]
    out = cli(*args, cwd=tmp_path, env={"CHAOSPOOL_EVENTS_PATH": str(tmp_path / "ev.jsonl")})
    journal = load_journal(tmp_path / "j.json")
    failed = [c for c in journal["checks"] if not c["ok"]]
    assert out.returncode == 0, f"{out.stdout}\n{out.stderr}\nfailed checks: {failed}"
    assert journal["status"] == "completed"
    assert journal["ok"] is True
    assert journal["metrics"]["total"] > 0
    assert_adds_up(journal)
    for fault in journal["faults"]:
        assert fault["error"] is None
        assert fault["effect"], f"{fault['name']} left no evidence"
