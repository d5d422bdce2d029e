"""Hook specifications of chaospool's plugin system (pluggy project name ``chaospool``).

Hooks are synchronous. A hook that contributes behaviour returns objects (fault classes,
reporters) whose async methods the engine awaits. Built-in faults and reporters register
through these same hooks.

Plugins are found in the ``chaospool`` entry-point group, from ``--plugin SPEC`` (a module name
or a ``.py`` path) and from an experiment's ``plugins:`` list (paths relative to the file).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from chaospool.fault import Fault, FaultContext

__all__ = ("PROJECT", "hookimpl", "hookspec")

PROJECT = "chaospool"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def chaospool_register_faults() -> list[type[Fault]]:  # type: ignore[empty-body]
    """Return fault classes (subclasses of :class:`chaospool.Fault`) this plugin provides."""


@hookspec
def chaospool_register_reporters() -> list[Any]:  # type: ignore[empty-body]
    """Return reporters: objects with ``name`` and ``write(journal: dict, path: str) -> None``."""


@hookspec
def chaospool_experiment_start(experiment: Any, seed: int) -> None:
    """Called once the pool is up, before the load starts."""


@hookspec
def chaospool_experiment_end(experiment: Any, journal: dict[str, Any]) -> None:
    """Called after every fault was reverted and the pool closed, with the finished journal."""


@hookspec
def chaospool_before_fault(step: Any, ctx: FaultContext) -> None:
    """Called just before a fault is injected (``ctx.targets`` already resolved)."""


@hookspec
def chaospool_after_fault(step: Any, ctx: FaultContext, record: dict[str, Any]) -> None:
    """Called after a fault was reverted; ``record`` is its journal entry."""


@hookspec
def chaospool_pool_event(event: Any) -> None:
    """Called for every pool event (checkout, checkin, crash, restart, recycle, timeout...).

    On the pool's hot path: keep it cheap.
    """
