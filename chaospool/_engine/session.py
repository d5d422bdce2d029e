"""From a source (path, mapping or model) to a finished Report: plugins, load, run, journal.

This is the one place that wires the parts together; the CLI, ``chaospool.run`` and the pytest
plugin all come through here, so they behave alike.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pluggy

from chaospool._dsl import load as dsl_load
from chaospool._dsl.model import Experiment
from chaospool._dsl.search_path import experiment_dirs, on_sys_path
from chaospool._dsl.worker_check import probe_worker
from chaospool._engine.journal import build_journal
from chaospool._engine.run import Progress, RunState, draw_seed, prepare, run_experiment
from chaospool._engine.schedule import ScheduledStep, pool_level_predicate, schedule
from chaospool._journal import HookErrorRecord, Journal
from chaospool._plugins import Hooks, fault_registry, load_plugins, plugin_manager, reporters
from chaospool._report.files import print_stdout, write_journal
from chaospool._report.journal import Report
from chaospool.fault import Fault
from chaospool.hookspecs import Reporter

__all__ = (
    "Loaded", "load_with_plugins", "print_stdout", "resolve_seed", "run_loaded", "write_journal",
)


@dataclass(frozen=True)
class Loaded:
    """A validated experiment with the plugins it was validated against."""

    experiment: Experiment
    registry: dict[str, type[Fault]]
    hooks: Hooks
    replay: tuple[str, ...] = ()  # the --set/--plugin arguments that reproduce this load
    # every reporter (built-in and plugin) by name, for --report NAME=PATH
    reporters: Mapping[str, Reporter] = field(default_factory=dict)

    def schedule(self, seed: int) -> tuple[ScheduledStep, ...]:
        return schedule(self.experiment, seed,
                        acts_on_pool=pool_level_predicate(self.registry))


def load_with_plugins(
    source: Any,
    *,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    plugins: Sequence[str] = (),
    check_worker: bool = False,
) -> Loaded:
    """Load the plugins (``--plugin`` ones, then the experiment's ``plugins:``, relative to its
    file) and validate the source against the faults they register.

    ``check_worker``: also import the worker module (in a child process) and check every
    command the experiment names (docs/dsl.md, "What validate checks").

    Raises ``ExperimentError`` (every problem, located) or ``PluginLoadError``.
    """
    managers: list[tuple[pluggy.PluginManager, dict[str, type[Fault]]]] = []

    def registry_for(declared: tuple[str, ...], base_dir: Path) -> dict[str, type[Fault]]:
        pm = plugin_manager(list(plugins))
        load_plugins(pm, declared, base_dir=base_dir)
        managers.append((pm, fault_registry(pm)))
        return managers[-1][1]

    if isinstance(source, Experiment):
        experiment = source
    else:
        experiment = dsl_load(source, overrides=overrides or (), registry=registry_for,
                              commands=probe_worker if check_worker else None)
    if not managers:  # the DSL calls the factory only when the rest validated far enough
        with on_sys_path(experiment_dirs(experiment)):  # module-name plugins, as the DSL does
            registry_for(experiment.plugins, Path(experiment.base_dir))
    pm, registry = managers[-1]
    return Loaded(experiment, registry, Hooks(pm), _replay_args(overrides, plugins),
                  reporters(pm))


def _replay_args(
    overrides: Mapping[str, Any] | Sequence[str] | None, plugins: Sequence[str]
) -> tuple[str, ...]:
    """Command-line arguments that load the same experiment again (for the reproduce line)."""
    if isinstance(overrides, Mapping):
        items = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in overrides.items()]
    else:
        items = list(overrides or ())
    args = [arg for item in items for arg in ("--set", item)]
    args += [arg for spec in plugins for arg in ("--plugin", spec)]
    return tuple(args)


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
    history_path: str | os.PathLike[str] | None = None,
) -> Report:
    """Run a loaded experiment to a Report; the journal is written even when aborted.

    Never raises for what happens inside the run: an error chaospool did not expect (a bug, a
    plugin's value that breaks the summary) ends it as ``failed`` with ``error`` naming it and
    the journal written, so exit code 1 keeps meaning "a tolerance failed".
    ``history_path``: stream the operations there as a history (docs/reports.md).
    """
    run_seed = resolve_seed(loaded.experiment, seed)
    state = prepare(loaded.experiment, seed=run_seed, registry=loaded.registry)
    state.replay = loaded.replay
    try:
        state.history = _open_history(history_path)
        # the workers import pool.worker with sys.path as the pool starts them: the
        # experiment's search directories first, for this run only (docs/dsl.md)
        with on_sys_path(experiment_dirs(loaded.experiment)):
            await run_experiment(state, hooks=loaded.hooks, stop=stop, on_progress=on_progress)
    except Exception as exc:  # reason: the run must end with a journal, whatever broke
        _mark_failed(state, exc)
    finally:
        if state.history is not None:
            state.history.close()
    journal = _final_journal(loaded, state)
    if journal_path is not None:
        write_journal(journal.to_dict(), journal_path)
    keep = journal_path is not None and str(journal_path) != "-"
    return Report.from_journal(journal, journal_path=str(journal_path) if keep else None)


def _mark_failed(state: RunState, exc: BaseException) -> None:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]  # the task group's wrapping says nothing to the user
    state.status = "failed"
    state.error = state.error or f"{type(exc).__name__}: {exc}"


def _open_history(path: str | os.PathLike[str] | None) -> Any:
    if path is None:
        return None
    from chaospool._probe import HistoryWriter

    return HistoryWriter(path)


def _final_journal(loaded: Loaded, state: RunState) -> Journal:
    try:
        journal = build_journal(state)
    except Exception as exc:  # reason: a summary that breaks must still leave a journal
        _mark_failed(state, exc)
        state.probe = None  # what broke was the recorded data: report the run without it
        journal = build_journal(state)
    # plugins get the journal as JSON-able builtins (docs/plugins.md): a copy they may keep
    loaded.hooks.experiment_end(loaded.experiment, journal.to_dict())
    # hook errors are known only now, experiment_end's own included
    errors = [HookErrorRecord(plugin=e.plugin, hook=e.hook, error=e.error, count=e.count)
              for e in loaded.hooks.errors]
    return msgspec.structs.replace(journal, plugin_errors=errors)
