"""Schedules as plain, hashable data: what explore draws, shrink cuts down and both write.

A ``Step`` holds numbers in base units (seconds, bytes, per second) so shrink can lower them;
``to_yaml`` writes them back with their units (``350ms``, ``64MB``) for a readable experiment.
Targets are explicit (``("workers", (1,))``, ``("all",)``, ``("session", "s1")`` or ``None`` for a
pool-level step): a drawn target (``default``, ``count``, ``fraction``) would be drawn again from
the seed, so deleting one step could move the others' targets -- shrinking needs them fixed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

from chaospool._dsl import units
from chaospool._dsl.model import Experiment, FaultStep
from chaospool._dsl.params import param_specs
from chaospool._engine.schedule import ScheduledStep
from chaospool.fault import Fault, Unit

__all__ = (
    "Candidate", "Step", "from_experiment", "schedule_text", "step_text", "to_yaml", "unit_of",
)

TargetData = tuple[Any, ...] | None


@dataclass(frozen=True)
class Step:
    """One fault step: ``params`` are the fault's own parameters that differ from their defaults
    (``duration`` lives in the step, never in ``params``)."""

    fault: str
    at: float
    duration: float | None = None
    target: TargetData = None
    params: tuple[tuple[str, Any], ...] = ()
    repeat: int = 1
    every: float = 0.0

    @property
    def last_at(self) -> float:
        return self.at + (self.repeat - 1) * self.every


@dataclass(frozen=True)
class Candidate:
    """A whole schedule: its steps and the run's duration."""

    duration: float
    steps: tuple[Step, ...]

    def key(self) -> str:
        """Canonical form: equal for schedules that run alike (step order does not matter, the
        engine orders injections by time)."""
        steps = sorted(json.dumps(dataclasses.asdict(s), sort_keys=True, default=str)
                       for s in self.steps)
        return json.dumps([self.duration, steps])


# -- from an experiment ---------------------------------------------------------------------------


def from_experiment(
    experiment: Experiment, scheduled: Iterable[ScheduledStep], registry: Mapping[str, type[Fault]]
) -> Candidate:
    """The experiment's method as a Candidate, drawn targets made explicit with ``scheduled``
    (the schedule resolved with the run's seed); a repeated step with a drawn target becomes one
    step per repetition, each with the slots its repetition drew."""
    by_step: dict[int, list[ScheduledStep]] = {}
    for item in scheduled:
        by_step.setdefault(item.step.index, []).append(item)
    steps: list[Step] = []
    for step in experiment.method:
        steps.extend(_convert(step, by_step.get(step.index, []), registry[step.fault]))
    return Candidate(experiment.duration, tuple(steps))


def _convert(step: FaultStep, items: list[ScheduledStep], cls: type[Fault]) -> list[Step]:
    base = Step(step.fault, step.at, step.duration, None, _own_params(step.params, cls),
                step.repeat, step.every)
    if cls.acts_on_pool(step.params):
        return [base]
    kind = step.target.kind
    if kind == "all":
        return [dataclasses.replace(base, target=("all",))]
    if kind == "session":
        return [dataclasses.replace(base, target=("session", step.target.session))]
    if kind in ("worker", "workers"):
        return [dataclasses.replace(base, target=("workers", step.target.workers))]
    return [dataclasses.replace(base, at=item.at, repeat=1, every=0.0,
                                target=("workers", tuple(sorted(item.slots or ()))))
            for item in items]


def _own_params(params: Any, cls: type[Fault]) -> tuple[tuple[str, Any], ...]:
    if not dataclasses.is_dataclass(params) or isinstance(params, type):
        return ()
    defaults = cls.Params()
    return tuple(
        (f.name, getattr(params, f.name))
        for f in dataclasses.fields(params)
        if f.name != "duration" and getattr(params, f.name) != getattr(defaults, f.name, object())
    )


# -- to YAML ------------------------------------------------------------------------------------


def to_yaml(step: Step, cls: type[Fault] | None) -> dict[str, Any]:
    """The step as a ``method:`` entry, units written back (``350ms``, ``64MB``, ``50MB/s``)."""
    out: dict[str, Any] = {"fault": step.fault, "at": units.print_duration(step.at)}
    if step.duration is not None:
        out["duration"] = units.print_duration(step.duration)
    if step.repeat > 1:
        out["repeat"], out["every"] = step.repeat, units.print_duration(step.every)
    if step.target is not None:
        out["target"] = _target_yaml(step.target)
    specs = param_specs(cls) if cls is not None else {}
    for name, value in step.params:
        out[name] = _with_unit(specs[name].annotation if name in specs else None, value)
    return out


def _target_yaml(target: tuple[Any, ...]) -> Any:
    kind = target[0]
    if kind == "all":
        return "all"
    if kind == "session":
        return {"session": target[1]}
    slots = list(target[1])
    return {"worker": slots[0]} if len(slots) == 1 else {"workers": slots}


def unit_of(annotation: Any) -> str | None:
    """``duration``/``size``/``rate`` for a unit-annotated parameter (``Size | None`` too)."""
    if get_origin(annotation) is Annotated:
        marks = [m for m in get_args(annotation)[1:] if isinstance(m, Unit)]
        return marks[0].kind if marks else None
    for arg in get_args(annotation):
        kind = unit_of(arg)
        if kind is not None:
            return kind
    return None


def _with_unit(annotation: Any, value: Any) -> Any:
    kind = unit_of(annotation)
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if kind == "duration":
        return units.print_duration(float(value))
    if kind == "size" and int(value) == value:
        return units.print_size(int(value))
    if kind == "rate":
        return units.print_rate(float(value), size=True)
    return value


def step_text(step: Step, cls: type[Fault] | None = None) -> str:
    """One line for humans: ``timeout at 350ms for 400ms on worker 1 (how=block)``; with the
    fault's class, parameters are written with their units."""
    held = f" for {units.print_duration(step.duration)}" if step.duration is not None else ""
    where = ""
    if step.target is not None:
        target = _target_yaml(step.target)
        where = " on " + (target if isinstance(target, str) else
                          " ".join(f"{k} {v}" for k, v in target.items()))
    rep = f" x{step.repeat} every {units.print_duration(step.every)}" if step.repeat > 1 else ""
    specs = param_specs(cls) if cls is not None else {}
    own = ", ".join(f"{k}={_with_unit(specs[k].annotation if k in specs else None, v)}"
                    for k, v in step.params)
    return (f"{step.fault} at {units.print_duration(step.at)}{held}{where}{rep}"
            + (f" ({own})" if own else ""))


def schedule_text(steps: Iterable[Step], registry: Mapping[str, type[Fault]]) -> str:
    """Steps as one line (``step_text`` each, ``; `` between), ``no faults`` for none."""
    return "; ".join(step_text(s, registry.get(s.fault)) for s in steps) or "no faults"
