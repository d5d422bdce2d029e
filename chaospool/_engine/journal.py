"""The journal: what a run did, as the JSON of CONTRACT §3, built from a RunState."""

from __future__ import annotations

import shlex
from typing import Any

import chaospool
from chaospool._engine.run import RunState

__all__ = ("build_journal", "reproduce_command")


def _fault_windows(state: RunState) -> list[tuple[str, float, float | None]]:
    return [
        (i.scheduled.name, i.injected_at, i.reverted_at)
        for i in state.injections
        if i.injected_at is not None
    ]


def reproduce_command(state: RunState) -> str:
    """The command that runs the same schedule and load again (overrides and plugins too)."""
    path = state.experiment.path or "EXPERIMENT.yaml"
    args = ["chaospool", "run", path, "--seed", str(state.seed), *state.replay]
    return shlex.join(args)


def _summary(state: RunState) -> dict[str, Any]:
    from chaospool._probe import bucket_width, summarize

    return summarize(
        state.probe.recorder if state.probe is not None else None,
        end=state.end,
        worker_restarts=max(0, state.restarts_at_end - state.restarts_at_start),
        restart_times=state.restart_times,
        bucket=bucket_width(state.experiment.duration),
        faults=_fault_windows(state),
    )


def build_journal(state: RunState, *, plugin_errors: list[Any] | None = None) -> dict[str, Any]:
    """The journal of a finished (completed, failed or aborted) run."""
    from chaospool._probe.summary import LATENCY_BAND_EDGES
    from chaospool._report.journal import assemble_journal, evaluate_checks

    experiment = state.experiment
    summary = _summary(state)
    checks = evaluate_checks(experiment.steady_state, summary)
    extra: dict[str, Any] = {
        "error": state.error,
        "duration": experiment.duration,
        "elapsed": state.end,
        "reproduce": reproduce_command(state),
        "plugin_errors": [e.to_dict() if hasattr(e, "to_dict") else e
                          for e in plugin_errors or []],
        "events": state.events.items,
        "events_dropped": state.events.dropped,
        "latency_band_edges": list(LATENCY_BAND_EDGES),  # of each bucket's latency_bands
    }
    if state.probe is not None:
        extra["load"] = state.probe.info()
    return assemble_journal(
        chaospool_version=chaospool.__version__,
        seed=state.seed,
        started_at=state.started_at,
        ended_at=state.ended_at,
        experiment={"title": experiment.title, "path": experiment.path,
                    "sha256": experiment.sha256},
        status=state.status,
        summary=summary,
        checks=checks,
        faults=[i.to_dict() for i in state.injections
                if i.injected_at is not None or i.error is not None],
        extra=extra,
    )
