"""The ``Fault`` base class: built-in faults and plugin faults subclass it alike.

A fault is a class with a ``name``, a ``Params`` dataclass of its own parameters, and two
coroutines, ``inject`` and ``revert``. The engine creates one instance per injection, resolves
its targets, awaits ``inject(ctx)``, and awaits ``revert(ctx)`` when the step's ``duration`` ends
(or at once if the fault has no duration) -- and, shielded from cancellation, whenever the
experiment ends early. ``ctx.record(**effect)`` adds evidence to the journal.

Parameter annotations may use the unit types below so that YAML strings such as ``200ms``,
``300MB`` or ``50MB/s`` are parsed for them: ``Duration`` (seconds, float), ``Size`` (bytes, int),
``Rate`` (per second, float; ``50MB/s`` is bytes per second, ``500/s`` is events per second).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

if TYPE_CHECKING:
    from chaospool.pool import Pool, WorkerHandle

__all__ = ("Duration", "Fault", "FaultContext", "Rate", "Size", "Unit")


@dataclass(frozen=True)
class Unit:
    """Marks a ``Params`` field whose YAML value may carry a unit (duration, size or rate)."""

    kind: str  # "duration" | "size" | "rate"


Duration = Annotated[float, Unit("duration")]
Size = Annotated[int, Unit("size")]
Rate = Annotated[float, Unit("rate")]


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
    target: Any = None

    def record(self, **effect: Any) -> None:
        """Add evidence to this injection's ``effect`` in the journal (JSON-able values)."""
        self.effect.update(effect)


class Fault:
    """Base class of every fault. Subclasses set ``name``, ``Params``, ``inject``, ``revert``.

    ``pool_level = True`` marks a fault that acts on the pool as a whole (its step's ``target``
    is ignored). The class docstring's first line is the description ``chaospool faults`` shows.
    """

    name: ClassVar[str] = ""
    pool_level: ClassVar[bool] = False

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
