"""The journal: what a run did, as the JSON of CONTRACT §3, built from a RunState."""

from __future__ import annotations

from typing import Any

import chaospool
from chaospool._engine.run import RunState, timeline_width

__all__ = ("build_journal", "reproduce_command")


def _fault_windows(state: RunState) -> list[tuple[str, float, float]]:
    return [
        (i.scheduled.name, i.injected_at, i.reverted_at if i.reverted_at is not None else state.end)
        for i in state.injections
        if i.injected_at is not None
    ]


def reproduce_command(state: RunState) -> str:
    path = state.experiment.path or "EXPERIMENT.yaml"
    return f"chaospool run {path} --seed {state.seed}"


def _summary(state: RunState) -> dict[str, Any]:
    from chaospool._probe import summarize

    windows = _fault_windows(state)
    injected = [w[1] for w in windows]
    reverted = [w[2] for w in windows]
    return summarize(
        state.probe.recorder if state.probe is not None else None,
        first_inject=min(injected) if injected else None,
        last_revert=max(reverted) if reverted else None,
        end=state.end,
        worker_restarts=max(0, state.restarts_at_end - state.restarts_at_start),
        bucket=timeline_width(state.experiment.duration),
        faults=windows,
    )


def build_journal(state: RunState, *, plugin_errors: list[str] | None = None) -> dict[str, Any]:
    from chaospool._report.journal import evaluate_checks

    experiment = state.experiment
    summary = _summary(state)
    checks = evaluate_checks(experiment.steady_state, summary)
    ok = state.status == "completed" and all(c["ok"] for c in checks)
    return {
        "chaospool_version": chaospool.__version__,
        "seed": state.seed,
        "started_at": state.started_at,
        "ended_at": state.ended_at,
        "experiment": {
            "title": experiment.title,
            "path": experiment.path,
            "sha256": experiment.sha256,
        },
        "status": state.status,
        "ok": ok,
        "error": state.error,
        "duration": experiment.duration,
        "elapsed": state.end,
        "reproduce": reproduce_command(state),
        "metrics": summary["metrics"],
        "phases": summary["phases"],
        "checks": checks,
        "faults": [i.to_dict() for i in state.injections if i.injected_at is not None
                   or i.error is not None],
        "timeline": summary["timeline"],
        "plugin_errors": list(plugin_errors or []),
    }
