"""Drawing explore's schedules: schedule k is a pure function of (experiment, seed, k).

Small first (Filibuster's lesson): the experiment's budget is split over the step counts of
``explore.steps``, and every one-step schedule comes before the two-step ones, and so on; past
the experiment's budget (``--budget`` larger), schedules keep the largest count. Splitting by
the *experiment's* budget, not ``--budget``, keeps schedule k the same whatever ``--budget`` says,
so the replay line needs only ``--seed`` and ``--schedule``.

Each schedule draws its own mix (as TigerBeetle's simulator draws fault probabilities per seed):
a weight per allowed fault, then which faults, when within the window, which workers, and each
fault's parameters within their documented ranges (``space.py``). A schedule equal (in canonical
form) to an earlier one is drawn again from the next attempt's stream: none runs twice.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from chaospool._dsl.methods import backend_mismatch
from chaospool._dsl.model import Experiment, ExploreSpec
from chaospool._explore.space import draw_step
from chaospool._explore.steps import Candidate, Step
from chaospool.fault import Fault

__all__ = ("Drawn", "draw_schedules", "explore_spec", "run_seed", "sizes")

# Redraws of one schedule before the space counts as exhausted (tiny windows, one fault).
MAX_ATTEMPTS = 64


@dataclass(frozen=True)
class Drawn:
    """Schedule ``number`` (1-based) and the seed its run uses."""

    number: int
    seed: int
    candidate: Candidate


def explore_spec(experiment: Experiment) -> ExploreSpec:
    return experiment.explore if experiment.explore is not None else ExploreSpec()


def sizes(spec: ExploreSpec, count: int) -> list[int]:
    """Steps per schedule for schedules 1..count: the experiment's budget split evenly over
    the step counts (smaller counts get the remainder), smallest first."""
    counts = list(range(spec.min_steps, spec.max_steps + 1))
    share, extra = divmod(spec.budget, len(counts))
    result = [n for i, n in enumerate(counts) for _ in range(share + (i < extra))]
    return (result + [counts[-1]] * count)[:count]


def run_seed(seed: int, number: int) -> int:
    """The seed schedule ``number``'s run uses (targets drawn at run time, load mix, faults)."""
    return random.Random(f"{seed}:explore-run:{number}").randrange(2**31)


def draw_schedules(
    experiment: Experiment, registry: Mapping[str, type[Fault]], seed: int, count: int,
    commands: frozenset[str] | None = None,
) -> list[Drawn]:
    """Schedules 1..count (fewer when the space is exhausted); deterministic in its inputs.

    ``commands``: the worker module's commands, when known -- a step needing one it lacks
    (``Fault.required_commands``: capacity holds workers with ``sleep``) is never drawn.
    """
    spec = explore_spec(experiment)
    faults = {name: registry[name] for name in (spec.faults or _runnable(experiment, registry))}
    seen: set[str] = set()
    result: list[Drawn] = []
    for number, steps in enumerate(sizes(spec, count), start=1):
        candidate = _fresh(experiment, spec, faults, seed, number, steps, seen, commands)
        if candidate is None:
            break
        result.append(Drawn(number, run_seed(seed, number), candidate))
    return result


def _fresh(
    experiment: Experiment,
    spec: ExploreSpec,
    faults: Mapping[str, type[Fault]],
    seed: int,
    number: int,
    steps: int,
    seen: set[str],
    commands: frozenset[str] | None = None,
) -> Candidate | None:
    for attempt in range(MAX_ATTEMPTS):
        rng = random.Random(f"{seed}:explore:{number}:{attempt}")
        candidate = _draw(experiment, spec, faults, rng, steps)
        if candidate.key() not in seen and not _exclusive_overlap(candidate, faults) \
                and not _lacks_commands(candidate, faults, commands):
            seen.add(candidate.key())
            return candidate
    return None


def _draw(
    experiment: Experiment,
    spec: ExploreSpec,
    faults: Mapping[str, type[Fault]],
    rng: random.Random,
    steps: int,
) -> Candidate:
    duration = spec.run_duration(experiment.duration)
    names = sorted(faults)
    # this schedule's own mix: skewed weights, so one schedule leans on a fault another spares
    weights = [rng.random() ** 2 + 0.05 for _ in names]
    chosen = rng.choices(names, weights, k=steps)
    window = spec.bounds(duration)
    drawn = [draw_step(name, faults[name], rng, window, duration, experiment.pool.size)
             for name in chosen]
    return Candidate(duration, tuple(sorted(drawn, key=lambda s: s.at)))


def _exclusive_overlap(candidate: Candidate, faults: Mapping[str, type[Fault]]) -> bool:
    """Two steps of a fault a worker holds one of at a time (``Fault.one_per_worker``, e.g.
    network_partition) whose windows overlap: the loader would refuse the schedule (drawn
    targets may share a worker), so it is never drawn (docs/faults.md)."""
    exclusive = [s for s in candidate.steps if getattr(faults[s.fault], "one_per_worker", False)]
    return any(a.fault == b.fault and _windows_meet(a, b)
               for i, a in enumerate(exclusive) for b in exclusive[i + 1:])


def _windows_meet(a: Step, b: Step) -> bool:
    def window(s: Step) -> tuple[float, float]:
        # a duration left at the fault's default is not known here: assume it is held to the end
        held = s.duration if s.duration is not None else dict(s.params).get("duration", math.inf)
        return s.at, s.last_at + held

    (a0, a1), (b0, b1) = window(a), window(b)
    return a0 <= b1 and b0 <= a1


def _runnable(experiment: Experiment, registry: Mapping[str, type[Fault]]) -> list[str]:
    """Every registered fault this pool can run (node faults need the Ray backend): the rule the
    loader applies to an explicit ``explore: faults:`` list."""
    backend = experiment.pool.backend
    return sorted(name for name, cls in registry.items()
                  if backend_mismatch(name, cls, backend) is None)


def _lacks_commands(candidate: Candidate, faults: Mapping[str, type[Fault]],
                    commands: frozenset[str] | None) -> bool:
    if commands is None:
        return False
    for step in candidate.steps:
        cls = faults[step.fault]
        params = _params(cls, step)
        if params is not None and not set(cls.required_commands(params)) <= commands:
            return True
    return False


def _params(cls: type[Fault], step: Step) -> object | None:
    try:
        return cls.Params(**dict(step.params))
    except (TypeError, ValueError):
        return None  # the loader reports a bad parameter; nothing to check here
