"""The journal: what a run did (docs/reports.md), built from a RunState as typed records
(:mod:`chaospool._journal`)."""

from __future__ import annotations

import shlex
from typing import Any

import msgspec

from chaospool._engine.run import RunState
from chaospool._journal import ExperimentInfo, Journal, Metrics, Phases, assemble, evaluate_checks
from chaospool._version import __version__

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

    summary = summarize(
        state.probe.recorder if state.probe is not None else None,
        end=state.end,
        worker_restarts=max(0, state.restarts_at_end - state.restarts_at_start),
        restart_times=state.restart_times,
        bucket=bucket_width(state.experiment.duration),
        faults=_fault_windows(state),
        consistency=_consistency(state),
    )
    return summary


def _consistency(state: RunState) -> dict[str, Any] | None:
    checker = getattr(state.probe, "checker", None)
    return None if checker is None else dict(checker.to_dict())


def build_journal(state: RunState) -> Journal:
    """The journal of a finished (completed, failed or aborted) run."""
    from chaospool._probe.summary import accounting_errors

    experiment = state.experiment
    summary = _summary(state)
    broken = accounting_errors(summary)
    if broken and state.status != "aborted":  # an internal bug: never a passing verdict
        state.status = "failed"
        state.error = state.error or f"internal error: {broken[0]}"
    metrics = msgspec.convert(summary["metrics"], Metrics)
    phases = msgspec.convert(summary["phases"], Phases)
    return assemble(
        chaospool_version=__version__,
        seed=state.seed,
        started_at=state.started_at,
        ended_at=state.ended_at,
        experiment=ExperimentInfo(title=experiment.title, path=experiment.path,
                                  sha256=experiment.sha256),
        status=state.status,
        summary={**summary, "metrics": metrics, "phases": phases},
        checks=evaluate_checks(experiment.steady_state, metrics, phases),
        faults=[i.to_dict() for i in state.injections
                if i.injected_at is not None or i.error is not None],
        **_recorded(state, summary),
    )


def _recorded(state: RunState, summary: dict[str, Any]) -> dict[str, Any]:
    """The journal's keys beyond the contract's (docs/reports.md, "The journal")."""
    from chaospool._probe.summary import LATENCY_BAND_EDGES

    recorded: dict[str, Any] = {
        "error": state.error,
        "duration": state.experiment.duration,
        "elapsed": state.end,
        "reproduce": reproduce_command(state),
        "plugin_errors": [],  # filled in once the experiment_end hooks ran (session.py)
        "events": state.events.items,
        "events_dropped": state.events.dropped,
        "latency_band_edges": list(LATENCY_BAND_EDGES),  # of each bucket's latency_bands
    }
    if state.probe is not None:
        recorded["load"] = state.probe.info()
    if "consistency" in summary:
        recorded["consistency"] = summary["consistency"]
    return recorded
