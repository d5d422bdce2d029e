"""Hook specifications of chaospool's plugin system (pluggy project name ``chaospool``).

Hooks are synchronous. A hook that contributes behaviour returns objects (fault classes,
reporters) whose async methods the engine awaits. Built-in faults and reporters register
through these same hooks.

Plugins are found in the ``chaospool`` entry-point group, from ``--plugin SPEC`` (a module name
or a ``.py`` path) and from an experiment's ``plugins:`` list (paths relative to the file).
A function named like a hook but not marked ``@hookimpl``, or a ``chaospool_`` hook that does
not exist (a typo), is refused when the plugin loads. See ``docs/plugins.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pluggy

if TYPE_CHECKING:
    from chaospool.fault import Fault, FaultContext

__all__ = ("PROJECT", "Reporter", "hookimpl", "hookspec")

PROJECT = "chaospool"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@runtime_checkable
class Reporter(Protocol):
    """An output format, selected by ``name`` with ``--report NAME=PATH`` (``run`` and ``report``).

    ``write`` gets the finished journal (the JSON of docs/reports.md, as a dict) and the path
    the user named (``-`` when they asked for stdout); it writes the whole output or raises.
    The built-in ``journal``, ``html``, ``junit`` and ``terminal`` reporters are registered
    through :func:`chaospool_register_reporters` like any plugin's. See docs/plugins.md.
    """

    @property
    def name(self) -> str: ...

    def write(self, journal: dict[str, Any], path: str) -> None: ...


@hookspec
def chaospool_register_faults() -> list[type[Fault]]:  # type: ignore[empty-body]
    """Return the fault classes (subclasses of :class:`chaospool.Fault`) this plugin provides.

    Called once per plugin manager. Each class needs a unique ``name`` and a dataclass
    ``Params`` whose fields do not reuse a step's common keys (``duration`` excepted: it gives
    the step's default duration); ``inject`` and ``revert`` are ``async def``. A bad class is
    refused with ``PluginLoadError`` naming the plugin.
    """


@hookspec
def chaospool_register_reporters() -> list[Reporter]:  # type: ignore[empty-body]
    """Return :class:`Reporter` objects: ``name`` and ``write(journal: dict, path: str) -> None``.

    A reporter sees only the finished journal dict (docs/reports.md), so ``chaospool report``
    can re-render it from a file. Names are unique: a plugin reporter that reuses a built-in's
    name (or another plugin's) is refused with ``PluginLoadError``.
    """


@hookspec
def chaospool_experiment_start(experiment: Any, seed: int) -> None:
    """Called once the pool is up, before the load starts.

    ``experiment`` is the validated model (``.title``, ``.duration``, ``.pool``, ``.method``...);
    ``seed`` the run's seed. Notification hooks (this one and those below) run one
    implementation at a time: an exception is caught, recorded in the journal's
    ``plugin_errors`` with the plugin's name, and the run goes on.
    """


@hookspec
def chaospool_experiment_end(experiment: Any, journal: dict[str, Any]) -> None:
    """Called after every fault was reverted and the pool closed, with the finished journal.

    Also called when the run failed or was aborted (see ``journal["status"]``).
    """


@hookspec
def chaospool_before_fault(step: Any, ctx: FaultContext) -> None:
    """Called just before a fault is injected (``ctx.targets`` already resolved).

    ``step`` is the scheduled injection: ``.fault`` (fault name), ``.name`` (the step's label),
    ``.at`` (planned offset in seconds), ``.repetition``, ``.step`` (the step as written).
    ``ctx`` is the :class:`chaospool.FaultContext` the fault gets (``.targets``, ``.params``).
    """


@hookspec
def chaospool_after_fault(step: Any, ctx: FaultContext, record: dict[str, Any]) -> None:
    """Called after a fault was reverted (or its inject/revert failed).

    ``record`` is its journal entry: ``fault, name, targets, injected_at, reverted_at, effect,
    error`` (``error`` is ``"Type: message"`` or None).
    """


@hookspec
def chaospool_pool_event(event: Any) -> None:
    """Called for every pool event (checkout, checkin, crash, restart, recycle, timeout...).

    ``event`` is a :class:`chaospool.PoolEvent`: ``.kind .time`` (``time.monotonic()``)
    ``.index .pid .data``. On the pool's hot path: keep it cheap. The engine subscribes only
    when at least one plugin implements this hook.
    """
