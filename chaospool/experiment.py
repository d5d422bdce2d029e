"""Running experiments from Python: ``run``, ``run_async``, ``load_experiment``.

``run`` is the synchronous front door (it starts its own event loop); ``run_async`` is for code
already inside anyio/asyncio. Both take a path to a YAML file or a mapping of the same shape.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any

import sniffio

from chaospool._dsl.model import Experiment
from chaospool._report.journal import Report

__all__ = ("Experiment", "Report", "load_experiment", "run", "run_async")

Source = str | PathLike[str] | Mapping[str, Any]
Overrides = Mapping[str, Any] | Sequence[str] | None


def load_experiment(
    source: Source | Experiment,
    *,
    overrides: Overrides = None,
    plugins: Sequence[str] = (),
) -> Experiment:
    """Load and validate an experiment; raise :class:`chaospool.ExperimentError` listing every
    problem (each with ``.path .line .column .message``)."""
    from chaospool._engine.session import load_with_plugins

    return load_with_plugins(source, overrides=overrides, plugins=plugins).experiment


async def run_async(
    source: Source | Experiment,
    *,
    seed: int | None = None,
    overrides: Overrides = None,
    plugins: Sequence[str] = (),
    journal: str | PathLike[str] | None = None,
) -> Report:
    """Run one experiment and return its :class:`Report` (``journal``: also write it there)."""
    from chaospool._engine.session import run_loaded

    loaded = _load(source, overrides, plugins)
    return await run_loaded(loaded, seed=seed, journal_path=journal)


def run(
    source: Source | Experiment,
    *,
    seed: int | None = None,
    overrides: Overrides = None,
    plugins: Sequence[str] = (),
    journal: str | PathLike[str] | None = None,
) -> Report:
    """Synchronous :func:`run_async` (runs its own event loop; not for use inside one).

    The loop is uvloop where installed; ``CHAOSPOOL_LOOP=asyncio`` chooses the plain one.
    """
    from chaospool._engine import loop

    _refuse_inside_event_loop()
    return loop.run(functools.partial(
        run_async, source, seed=seed, overrides=overrides, plugins=plugins, journal=journal))


def _refuse_inside_event_loop() -> None:
    """Say what to do instead of anyio's bare "Already running asyncio in this thread"."""
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return
    raise RuntimeError(
        f"chaospool.run() starts its own event loop, so it cannot run inside {library} code: "
        "use `await chaospool.run_async(...)` there"
    )


def _load(source: Source | Experiment, overrides: Overrides, plugins: Sequence[str]) -> Any:
    from chaospool._engine.session import load_with_plugins

    return load_with_plugins(source, overrides=overrides, plugins=plugins, check_worker=True)
