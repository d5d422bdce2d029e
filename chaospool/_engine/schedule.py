"""The fault schedule: a pure function of the experiment and the seed.

Nothing here does I/O or reads a clock, so ``--dry-run`` prints exactly what a run will do and
the same seed always prints the same schedule. Targets that name slots are resolved here, with
a random stream derived from the seed; only ``{session: ID}`` targets wait for run time, because
which worker serves a session is a fact of the running pool.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chaospool._dsl.model import Experiment, FaultStep, Target
from chaospool._faults.targets import resolve_indices
from chaospool.fault import Fault

__all__ = ("ScheduledStep", "derive_rng", "pool_level_predicate", "resolve_slots", "schedule")


@dataclass(frozen=True)
class ScheduledStep:
    """One injection: ``step`` (the DSL step) at ``at`` seconds, on ``slots`` (None: pool-level
    or a session target resolved at run time)."""

    at: float
    name: str
    step: FaultStep
    repetition: int
    slots: tuple[int, ...] | None
    seq: int  # position in the schedule; seeds this injection's own random stream

    @property
    def fault(self) -> str:
        return self.step.fault

    def params_dict(self) -> dict[str, Any]:
        params = self.step.params
        if dataclasses.is_dataclass(params) and not isinstance(params, type):
            return dataclasses.asdict(params)
        return {}


def pool_level_predicate(registry: Mapping[str, type[Fault]]) -> Callable[[FaultStep], bool]:
    """``acts_on_pool`` for :func:`schedule`, asking each step's fault class."""

    def acts_on_pool(step: FaultStep) -> bool:
        cls = registry.get(step.fault)
        return cls is not None and cls.acts_on_pool(step.params)

    return acts_on_pool


def derive_rng(seed: int, purpose: str) -> random.Random:
    """A random stream for one purpose (schedule, probe, a fault), derived from the run's seed.

    Separate streams keep the schedule independent of how many operations the probe drew.
    """
    return random.Random(f"{seed}:{purpose}")


def schedule(
    experiment: Experiment,
    seed: int,
    *,
    acts_on_pool: Callable[[FaultStep], bool] = lambda step: False,
) -> tuple[ScheduledStep, ...]:
    """Expand repeats, order by time, and draw slot targets with the seed (pool-level steps,
    as ``acts_on_pool`` says, draw none)."""
    rng = derive_rng(seed, "schedule")
    capacity = experiment.pool.size
    expanded = [
        (step.at + rep * step.every, step, rep)
        for step in experiment.method
        for rep in range(step.repeat)
    ]
    # sort by time, then by the order the file lists the steps: stable and seed-independent
    expanded.sort(key=lambda item: (item[0], item[1].index, item[2]))
    result = []
    for seq, (at, step, rep) in enumerate(expanded):
        slots = None if acts_on_pool(step) else resolve_slots(step.target, capacity, rng)
        name = step.name if step.repeat == 1 else f"{step.name}#{rep + 1}"
        result.append(ScheduledStep(at, name, step, rep, slots, seq))
    return tuple(result)


def resolve_slots(target: Target, size: int, rng: random.Random) -> tuple[int, ...] | None:
    """Slot indices for a target (the faults' own resolution rules, drawn with ``rng``); None
    for a session target, which only the running pool can resolve."""
    if target.kind in ("session", "node"):
        return None  # which workers serve the session / run on the node is known at run time
    return tuple(resolve_indices(target, size, rng))
