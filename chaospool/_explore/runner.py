"""One run of a candidate schedule, through the engine's own entry point (``run_loaded``), so
every guarantee of ``chaospool run`` holds: each fault reverted, each worker reaped, a journal
whatever the ending."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio

from chaospool._dsl import load as dsl_load
from chaospool._dsl.model import Experiment
from chaospool._engine.run import Progress
from chaospool._engine.session import Loaded, load_with_plugins, run_loaded, write_journal
from chaospool._explore.document import Base
from chaospool._explore.steps import Candidate

__all__ = ("Outcome", "Runner", "Tol")

Tol = tuple[str, str]  # a tolerance by (metric, phase): what "fails the same way" compares


@dataclass(frozen=True)
class Outcome:
    """A run's verdict: its status, the tolerances it failed (in check order), its journal."""

    status: str
    failed: tuple[Tol, ...]
    journal: dict[str, Any]

    @property
    def deviated(self) -> bool:
        return self.status == "completed" and bool(self.failed)


def tolerance_text(journal: dict[str, Any], tol: Tol) -> str:
    """``success_rate (overall) >= 0.99, observed 0.93`` for a failed check of ``journal``."""
    for check in journal.get("checks", ()):
        if (check["metric"], check["phase"]) == tol:
            return (f"{tol[0]} ({tol[1]}) {check['expected']}, "
                    f"observed {_observed(check['observed'])}")
    return f"{tol[0]} ({tol[1]})"


def _observed(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class Runner:
    """Runs candidates of one source experiment; counts the runs."""

    def __init__(self, base: Base, loaded: Loaded, stop: anyio.Event | None = None) -> None:
        self.base = base
        self.loaded = loaded
        self.stop = stop
        self.runs = 0

    def experiment(self, candidate: Candidate, seed: int) -> Experiment:
        """The candidate as a validated experiment; ExperimentError if it is not a valid one."""
        mapping = self.base.mapping(candidate, seed, self.loaded.registry)
        experiment = dsl_load(mapping, registry=self.loaded.registry)
        source = self.loaded.experiment
        return dataclasses.replace(experiment, path=source.path, base_dir=source.base_dir)

    async def run(
        self,
        candidate: Candidate,
        seed: int,
        *,
        journal_path: str | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Outcome:
        loaded = load_with_plugins(self.experiment(candidate, seed))
        self.runs += 1
        report = await run_loaded(loaded, seed=seed, stop=self.stop, on_progress=on_progress)
        journal = report.to_dict()
        if journal_path is not None:
            write_journal(journal, journal_path)
        failed = tuple((c["metric"], c["phase"]) for c in journal["checks"] if not c["ok"])
        return Outcome(journal["status"], failed, journal)
