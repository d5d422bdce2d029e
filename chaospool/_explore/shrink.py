"""Shrinking a failing schedule (docs/explore.md): the passes, in Hypothesis's order and manner.

The core is pure: ``Shrinker`` is given ``test(candidate) -> still fails?`` and knows nothing of
pools; what "still fails" means -- the same tolerance in at least ``min_fails`` of ``runs`` runs,
anything else being a pass or unresolved (ddmin's third outcome) -- is :func:`k_of_n`'s.

Every pass proposes candidates that are strictly simpler than the best so far (fewer steps,
fewer targets, default parameters, smaller numbers, a shorter run), so shrinking terminates; a
candidate is never tried twice (canonical form). Passes that helped move to the front, and the
loop runs until a whole sweep makes no progress or the budget (time, runs) is spent.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from chaospool._dsl.params import param_specs
from chaospool._explore.space import GRID, MB, on_grid
from chaospool._explore.steps import Candidate, Step, unit_of
from chaospool.fault import Fault

__all__ = ("Shrinker", "Verdict", "k_of_n", "lower_numbers")

Test = Callable[[Candidate], Awaitable[bool]]
Pass = Callable[[Candidate], Iterator[Candidate]]
AFTER_LAST = 0.25  # seconds: the shortest run "shorten" proposes lasts this past the last fault


class Verdict(enum.Enum):
    FAILS = "fails"  # the same tolerance, in at least min_fails of the runs
    PASSES = "passes"
    UNRESOLVED = "unresolved"  # failed, but some other way (another tolerance, a run error)


async def k_of_n(
    run_once: Callable[[], Awaitable[tuple[bool, bool]]], runs: int, min_fails: int
) -> tuple[Verdict, int]:
    """Run up to ``runs`` times; ``run_once`` -> (failed the target, failed otherwise).

    Stops as soon as the verdict is certain: ``min_fails`` target failures reached, or too few
    runs left to reach them. Returns the verdict and the runs used.
    """
    fails = others = used = 0
    while used < runs and fails < min_fails and fails + runs - used >= min_fails:
        same, other = await run_once()
        used += 1
        fails += same
        others += other and not same
    if fails >= min_fails:
        return Verdict.FAILS, used
    return (Verdict.UNRESOLVED if others else Verdict.PASSES), used


def lower_numbers(value: float, floor: float, step: float, rounder: Callable[[float], float]
                  ) -> list[float]:
    """Smaller values to try, smallest first: the floor, then ever closer to ``value`` (halving
    the distance, down to one ``step``) -- a binary search spread over the pass's restarts, since
    a value already tried is never tried again."""
    tries, distance = [floor], (value - floor) / 2
    while distance > step:
        tries.append(rounder(value - distance))
        distance /= 2
    tries.append(rounder(value - step))
    return sorted({t for t in tries if floor <= t < value})


class Shrinker:
    """Greedy shrinking of ``initial`` while ``test`` says it still fails."""

    def __init__(
        self,
        initial: Candidate,
        test: Test,
        *,
        size: int,
        registry: Mapping[str, type[Fault]],
        exhausted: Callable[[], bool] = lambda: False,
        on_better: Callable[[Candidate], None] = lambda c: None,
    ) -> None:
        self.best = initial
        self.test = test
        self.size = size
        self.registry = registry
        self.exhausted = exhausted
        self.on_better = on_better
        self.tried: set[str] = {initial.key()}
        self.helped: dict[str, int] = {}

    async def shrink(self) -> Candidate:
        passes: list[Pass] = [self.delete, self.simplify, self.lower, self.shorten]
        while not self.exhausted():
            helped = [p for p in passes if await self._run_pass(p)]
            if not helped:
                break
            passes = helped + [p for p in passes if p not in helped]  # what helped goes first
        # sort steps by time: free, as the engine orders injections by time anyway
        self.best = dataclasses.replace(self.best, steps=_sorted(self.best.steps))
        return self.best

    async def _run_pass(self, make: Pass) -> bool:
        improved, progress = False, True
        while progress and not self.exhausted():
            progress = False
            for candidate in make(self.best):
                if candidate.key() in self.tried or self.exhausted():
                    continue
                self.tried.add(candidate.key())
                if await self.test(candidate):
                    self.best, improved, progress = candidate, True, True
                    self.helped[make.__name__] = self.helped.get(make.__name__, 0) + 1
                    self.on_better(candidate)
                    break
        return improved

    # -- the passes -----------------------------------------------------------------------------

    def delete(self, best: Candidate) -> Iterator[Candidate]:
        """Delete runs of consecutive steps, 5 long down to 1, from the end backwards."""
        steps = _sorted(best.steps)
        for n in range(min(5, len(steps)), 0, -1):
            for i in range(len(steps) - n, -1, -1):
                yield dataclasses.replace(best, steps=steps[:i] + steps[i + n:])

    def simplify(self, best: Candidate) -> Iterator[Candidate]:
        """Fewer targets (``all`` -> one worker), no duration for a fault without one, one
        repetition, parameters back to their defaults."""
        for i, step in enumerate(best.steps):
            for simpler in self._simpler(step):
                yield _with_step(best, i, simpler)

    def _simpler(self, step: Step) -> Iterator[Step]:
        for target in _fewer_targets(step.target, self.size):
            yield dataclasses.replace(step, target=target)
        cls = self.registry.get(step.fault)
        if step.duration is not None and cls is not None and "duration" not in param_specs(cls):
            yield dataclasses.replace(step, duration=None)  # no duration: reverted at once
        if step.repeat > 1:
            yield dataclasses.replace(step, repeat=1, every=0.0)
            yield dataclasses.replace(step, repeat=step.repeat - 1)
        for j in range(len(step.params)):
            yield dataclasses.replace(step, params=step.params[:j] + step.params[j + 1:])

    def lower(self, best: Candidate) -> Iterator[Candidate]:
        """Everything earlier at once, then each step's ``at``, ``duration`` and numbers."""
        first = min((s.at for s in best.steps), default=0.0)
        for shift in lower_numbers(first, 0.0, GRID, on_grid):
            delta = first - shift
            yield dataclasses.replace(
                best, steps=tuple(dataclasses.replace(s, at=on_grid(s.at - delta))
                                  for s in best.steps))
        for i, step in enumerate(best.steps):
            for lowered in self._lower_step(step):
                yield _with_step(best, i, lowered)

    def _lower_step(self, step: Step) -> Iterator[Step]:
        for at in lower_numbers(step.at, 0.0, GRID, on_grid):
            yield dataclasses.replace(step, at=at)
        if step.duration is not None:
            for duration in lower_numbers(step.duration, GRID, GRID, on_grid):
                yield dataclasses.replace(step, duration=duration)
        for j, (name, value) in enumerate(step.params):
            for smaller in self._lower_param(step.fault, name, value):
                params = (*step.params[:j], (name, smaller), *step.params[j + 1:])
                yield dataclasses.replace(step, params=params)

    def _lower_param(self, fault: str, name: str, value: Any) -> list[Any]:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return []
        cls = self.registry.get(fault)
        spec = param_specs(cls).get(name) if cls is not None else None
        kind = unit_of(spec.annotation) if spec is not None else None
        if kind == "duration":
            return lower_numbers(value, 0.0, GRID, on_grid)
        if kind in ("size", "rate") and value >= 2 * MB:
            return lower_numbers(value, MB, MB, lambda v: round(v / MB) * MB)
        if isinstance(value, int):
            return lower_numbers(value, 1, 1, round)
        return lower_numbers(value, 0.0, value / 10, lambda v: round(v, 3))

    def shorten(self, best: Candidate) -> Iterator[Candidate]:
        """A shorter run: down to ``AFTER_LAST`` after the last fault's effect ends -- the
        probe needs some time to see what the fault left behind, or the shortest run would
        reproduce only by luck."""
        ends = [s.last_at + (s.duration or 0.0) for s in best.steps]
        floor = on_grid(max(ends, default=0.0) + AFTER_LAST)
        for duration in lower_numbers(best.duration, floor, GRID, on_grid):
            yield dataclasses.replace(best, duration=duration)


def _with_step(best: Candidate, i: int, step: Step) -> Candidate:
    return dataclasses.replace(best, steps=(*best.steps[:i], step, *best.steps[i + 1:]))


def _sorted(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    return tuple(sorted(steps, key=lambda s: s.at))


def _fewer_targets(target: Any, size: int) -> Iterator[Any]:
    """Simpler targets: one worker first (each in turn), then one worker fewer."""
    if target is None or target[0] == "session":
        return
    slots = tuple(range(size)) if target[0] == "all" else tuple(target[1])
    if len(slots) < 2:
        return
    for slot in slots:
        yield ("workers", (slot,))
    for slot in slots if len(slots) > 2 else ():
        yield ("workers", tuple(s for s in slots if s != slot))
