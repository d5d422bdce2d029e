"""From a source (path, mapping or model) to a finished Report: plugins, load, run, journal.

This is the one place that wires the parts together; the CLI, ``chaospool.run`` and the pytest
plugin all come through here, so they behave alike.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import yaml

from chaospool._dsl import load as dsl_load
from chaospool._dsl.model import Experiment
from chaospool._engine.journal import build_journal
from chaospool._engine.run import Progress, draw_seed, prepare, run_experiment
from chaospool._engine.schedule import ScheduledStep, schedule
from chaospool._plugins import Hooks, fault_registry, plugin_manager
from chaospool._report.journal import Report
from chaospool.fault import Fault

__all__ = ("Loaded", "load_with_plugins", "resolve_seed", "run_loaded", "write_journal")


@dataclass(frozen=True)
class Loaded:
    """A validated experiment with the plugins it was validated against."""

    experiment: Experiment
    registry: dict[str, type[Fault]]
    hooks: Hooks

    def schedule(self, seed: int) -> tuple[ScheduledStep, ...]:
        pool_level = frozenset(n for n, c in self.registry.items() if c.pool_level)
        return schedule(self.experiment, seed, pool_level=pool_level)


def _declared_plugins(source: Any) -> tuple[list[str], Path | None]:
    """The experiment's own ``plugins:`` list, read before validation: plugin faults must be
    registered before their steps can be checked. Errors surface in the real load."""
    if isinstance(source, Mapping):
        raw: Any = source
        base = None
    else:
        path = Path(os.fspath(source))
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return [], path.parent
        base = path.parent
    specs = raw.get("plugins") if isinstance(raw, dict) else None
    if not isinstance(specs, list):
        return [], base
    return [s for s in specs if isinstance(s, str)], base


def _relative_to(spec: str, base: Path | None) -> str:
    """A ``.py`` path in an experiment is relative to the experiment file; a module name is not."""
    if base is None or not (spec.endswith(".py") or "/" in spec):
        return spec
    return str((base / spec).resolve())


def load_with_plugins(
    source: Any,
    *,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    plugins: Sequence[str] = (),
) -> Loaded:
    """Load the plugins (``--plugin`` ones and the experiment's), then validate the source."""
    declared, base = ([], None) if isinstance(source, Experiment) else _declared_plugins(source)
    pm = plugin_manager([*plugins, *(_relative_to(spec, base) for spec in declared)])
    registry = fault_registry(pm)
    if isinstance(source, Experiment):
        experiment = source
    else:
        experiment = dsl_load(source, overrides=overrides or (), registry=registry)
    return Loaded(experiment, registry, Hooks(pm))


def resolve_seed(experiment: Experiment, seed: int | None) -> int:
    """Seed precedence: the caller's (``--seed``), then the experiment's, then a fresh draw."""
    if seed is not None:
        return seed
    if experiment.seed is not None:
        return experiment.seed
    return draw_seed()


async def run_loaded(
    loaded: Loaded,
    *,
    seed: int | None = None,
    journal_path: str | os.PathLike[str] | None = None,
    stop: anyio.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> Report:
    """Run a loaded experiment to a Report; the journal is written even when aborted."""
    run_seed = resolve_seed(loaded.experiment, seed)
    state = prepare(loaded.experiment, seed=run_seed, registry=loaded.registry)
    try:
        await run_experiment(state, hooks=loaded.hooks, stop=stop, on_progress=on_progress)
    finally:
        journal = build_journal(state, plugin_errors=loaded.hooks.errors)
        loaded.hooks.experiment_end(loaded.experiment, journal)
        if journal_path is not None:
            write_journal(journal, journal_path)
    report = Report.from_journal(journal)
    if journal_path is not None and str(journal_path) != "-":
        report.journal_path = str(journal_path)
    return report


def write_journal(journal: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write the journal as JSON (``-`` = stdout)."""
    text = json.dumps(journal, indent=2, sort_keys=False, allow_nan=False)
    if str(path) == "-":
        print(text)
        return
    Path(path).write_text(text + "\n", encoding="utf-8")
