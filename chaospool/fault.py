"""The ``Fault`` base class: built-in faults and plugin faults subclass it alike.

A fault is a class with a ``name``, a ``Params`` dataclass of its own parameters, and two
coroutines, ``inject`` and ``revert``. The engine creates one instance per injection, resolves
its targets, awaits ``inject(ctx)``, and awaits ``revert(ctx)`` when the step's ``duration`` ends
(or at once if the fault has no duration) -- and, shielded from cancellation, whenever the
experiment ends early. ``ctx.record(**effect)`` adds evidence to the journal.

Parameter annotations may use the unit types below so that YAML strings such as ``200ms``,
``300MB`` or ``50MB/s`` are parsed for them: ``Duration`` (seconds, float), ``Size`` (bytes, int),
``Rate`` (per second, float; ``50MB/s`` is bytes per second, ``500/s`` is events per second).

``ctx.took_effect(ok, reason)`` records whether the fault's effect was seen from outside; a step
whose fault records ``False`` fails the run (docs/faults.md, "Every fault proves it took
effect"). ``ctx.actions`` (a :class:`TargetActions`) acts on each target, remembers what was done
and undoes exactly that (docs/plugins.md).
"""

from __future__ import annotations

import inspect
import itertools
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

if TYPE_CHECKING:
    from chaospool.pool import Pool, WorkerHandle

__all__ = ("Acted", "Duration", "Fault", "FaultContext", "Rate", "Size", "TargetActions", "Unit")


@dataclass(frozen=True)
class Unit:
    """Marks a ``Params`` field whose YAML value may carry a unit (duration, size or rate)."""

    kind: str  # "duration" | "size" | "rate"


Duration = Annotated[float, Unit("duration")]
Size = Annotated[int, Unit("size")]
Rate = Annotated[float, Unit("rate")]


_tokens = itertools.count(1)


@dataclass
class Acted:
    """One target a fault acted on: its handle, its journal ``record`` (JSON-able evidence,
    starting with ``index`` and ``pid``), what the act returned (``memo``: what the undo needs)
    and whether the act happened (False: the target died before or while it acted)."""

    handle: WorkerHandle
    record: dict[str, Any]
    memo: Any = None
    acted: bool = False
    at: float = field(default_factory=time.monotonic)  # when the act began


class TargetActions:
    """Act on each target, remember what was done, undo exactly that.

    ``token`` names this injection in control ops (``{"token": ctx.actions.token}``) so that
    overlapping steps on one worker each undo only their own effect. ``each`` acts on the live
    incarnation of every target (a target that is gone is skipped and listed in ``skipped``);
    ``undo`` undoes every entry, even a half-done one, collecting failures into one FaultError
    raised after the last target. ``undone`` holds the records, in order, for the journal.
    """

    def __init__(self) -> None:
        self.token = f"{os.getpid()}.{next(_tokens)}"
        self.done: list[Acted] = []
        self.undone: list[dict[str, Any]] = []
        self.skipped: list[int] = []
        self._pending: list[Acted] = []

    async def each(
        self, ctx: FaultContext, fault: str, action: Callable[[WorkerHandle], Any]
    ) -> list[Acted]:
        """``action(handle)`` (awaited if async) on each live target, in order."""
        from chaospool._faults._common import act_on, live_targets, target_record

        self.skipped = ctx.state.setdefault("skipped", [])
        for handle in await live_targets(ctx, fault):
            entry = Acted(handle, target_record(handle))
            # remembered before acting: revert must undo even a half-done act
            self.done.append(entry)
            self._pending.append(entry)
            entry.acted, entry.memo = await act_on(ctx, handle, action, handle)
        return self.done

    async def undo(
        self,
        fault: str,
        action: Callable[[Acted], Awaitable[dict[str, Any]] | dict[str, Any]],
        *,
        gone: dict[str, Any] | None = None,
        acted_only: bool = False,
    ) -> None:
        """Undo every entry not undone yet; ``action(entry)`` returns evidence merged into its
        record. With ``gone``, a target whose process has died is not undone (its effect went
        with it): ``gone`` is merged into its record, with ``worker_gone: True``. With
        ``acted_only``, an entry whose act did not happen is dropped rather than undone."""
        from chaospool._faults._common import RevertErrors, undo

        errors = RevertErrors(fault)
        while self._pending:
            entry = self._pending[0]
            if not acted_only or entry.acted:
                try:
                    entry.record.update(await self._undo_one(entry, action, gone, undo))
                except Exception as exc:  # reason: every target is undone; reported together
                    errors.add(entry.handle, exc)
                self.undone.append(entry.record)
            # popped only once undone: an undo cancelled half-way leaves it pending
            self._pending.pop(0)
        errors.raise_if_any()

    @property
    def pending(self) -> list[Acted]:
        """Entries not undone yet (an undo cut short leaves some)."""
        return list(self._pending)

    @staticmethod
    async def _undo_one(entry: Acted, action: Any, gone: Any, undo: Any) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            result = action(entry)
            return dict(await result if inspect.isawaitable(result) else result)

        if gone is None:
            return await run()
        outcome: dict[str, Any] = await undo(entry.handle, run)
        return {**gone, **outcome} if outcome.get("worker_gone") else outcome


@dataclass
class FaultContext:
    """What a fault sees while it runs.

    ``params`` is the validated ``Params`` instance; ``targets`` the worker handles the step's
    ``target`` resolved to (empty for pool-level faults); ``rng`` the run's seeded random
    generator (draw from it, never from ``random``); ``state`` is free for the fault to keep
    what ``revert`` needs. ``target`` is the step's target as written (``kind``, ``workers``,
    ``node``, ...; None outside an experiment): node faults read ``{node: N}`` from it.
    """

    params: Any
    targets: Sequence[WorkerHandle]
    pool: Pool
    rng: random.Random
    duration: float | None = None
    state: dict[str, Any] = field(default_factory=dict)
    effect: dict[str, Any] = field(default_factory=dict)
    actions: TargetActions = field(default_factory=TargetActions)
    target: Any = None

    def record(self, **effect: Any) -> None:
        """Add evidence to this injection's ``effect`` in the journal (JSON-able values)."""
        self.effect.update(effect)

    def took_effect(self, ok: bool, reason: str) -> None:
        """Record whether the fault's effect was seen from outside (``effect.took_effect``,
        ``effect.took_effect_reason``). ``False`` fails the run with ``reason``; a fault that
        never calls this is not checked."""
        self.effect["took_effect"] = bool(ok)
        self.effect["took_effect_reason"] = reason


class Fault:
    """Base class of every fault. Subclasses set ``name``, ``Params``, ``inject``, ``revert``.

    ``pool_level = True`` marks a fault that acts on the pool as a whole (its step's ``target``
    is ignored). The class docstring's first line is the description ``chaospool faults`` shows.
    """

    name: ClassVar[str] = ""
    pool_level: ClassVar[bool] = False
    # True: two steps of this fault may not overlap on one worker (the loader refuses them,
    # naming both steps); a fault whose worker-side effects compose leaves it False.
    one_per_worker: ClassVar[bool] = False
    # The pool backends the fault can act on (None: every one). The loader refuses a step, or
    # an ``explore: faults:`` entry, naming it for a pool of another backend (docs/plugins.md).
    backends: ClassVar[tuple[str, ...] | None] = None

    @dataclass
    class Params:
        pass

    @classmethod
    def acts_on_pool(cls, params: Any) -> bool:
        """Whether a step with these ``params`` acts on the pool as a whole (no targets).

        Defaults to ``pool_level``; a fault that is pool-level for some parameters only
        (``resource_exhaustion`` with ``resource: capacity``) overrides it.
        """
        return cls.pool_level

    @classmethod
    def required_commands(cls, params: Any) -> tuple[str, ...]:
        """Worker commands a step with these ``params`` needs (validate checks the worker
        module has them): ``resource_exhaustion`` with ``resource: capacity`` needs ``sleep``."""
        return ()

    async def inject(self, ctx: FaultContext) -> None:
        raise NotImplementedError

    async def revert(self, ctx: FaultContext) -> None:
        return None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        text = cls.__dict__.get("description")
        if isinstance(text, str):
            # a plugin may well write ``description = "..."``: keep it callable like the default
            cls.description = classmethod(lambda _cls: text)  # type: ignore[method-assign,assignment]

    @classmethod
    def description(cls) -> str:
        """One line for ``chaospool faults``: a ``description`` string the subclass sets, else
        its docstring's first line, else its name."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else cls.name
