"""What explore may draw for one fault: time, duration, target and parameters.

Each built-in fault's parameters are drawn within the ranges docs/faults.md documents; a plugin
fault keeps its defaults, except that a choice (``Literal``) is drawn among its values and a
positive number is scaled by 1/2, 1 or 2. Times are on a grid of ``GRID`` seconds so the
schedules read well and canonical forms compare equal.
"""

from __future__ import annotations

import dataclasses
import random
import typing
from collections.abc import Callable
from typing import Any, Literal, get_args, get_origin

from chaospool._dsl.params import param_specs
from chaospool._explore.steps import Step
from chaospool.fault import Fault

__all__ = ("GRID", "draw_step", "on_grid")

GRID = 0.05  # seconds
MB = 10**6

Params = dict[str, Any]
Drawer = Callable[[random.Random, int], Params]


def on_grid(seconds: float) -> float:
    return round(round(seconds / GRID) * GRID, 3)


def _port_crash(rng: random.Random, _size: int) -> Params:
    return {"signal": rng.choice(["SIGKILL", "SIGKILL", "SIGTERM"]),
            "mode": rng.choice(["kill", "kill", "close"])}


def _timeout(rng: random.Random, _size: int) -> Params:
    return {"how": rng.choice(["stop", "block"])}


def _partition(rng: random.Random, _size: int) -> Params:
    return {"direction": rng.choice(["both", "to_worker", "from_worker"]),
            "mode": rng.choice(["drop", "hold"])}


def _resource(rng: random.Random, size: int) -> Params:
    resource = rng.choice(["capacity", "cpu", "memory", "fds"])
    amount: dict[str, Any] = {
        "capacity": rng.choice([None, rng.randint(1, size)]),
        "cpu": rng.randint(1, 2),
        "memory": rng.choice([32, 64, 128, 256]) * MB,
        "fds": None,
    }
    return {"resource": resource, "amount": amount[resource]}


def _herd(rng: random.Random, _size: int) -> Params:
    return {"requests": int(10 ** rng.uniform(1, 3))}  # 10..1000, log-uniform


def _slow(rng: random.Random, _size: int) -> Params:
    latency = rng.choice([10, 20, 50, 100, 200, 500]) / 1000
    return {"latency": latency, "jitter": rng.choice([0.0, latency / 2])}


def _leak(rng: random.Random, _size: int) -> Params:
    return {"rate": rng.choice([10, 25, 50, 100]) * MB,
            "limit": rng.choice([50, 100, 200, 300]) * MB}


BUILTIN: dict[str, Drawer] = {
    "port_crash": _port_crash,
    "timeout": _timeout,
    "network_partition": _partition,
    "resource_exhaustion": _resource,
    "thundering_herd": _herd,
    "slow_worker": _slow,
    "memory_leak": _leak,
}


def draw_step(
    name: str,
    cls: type[Fault],
    rng: random.Random,
    window: tuple[float, float],
    run: float,
    size: int,
) -> Step:
    """One step of fault ``name``: its time in ``window``, parameters, duration and target."""
    at = on_grid(rng.uniform(*window))
    drawer = BUILTIN.get(name) if cls.__module__.startswith("chaospool.") else None
    params = drawer(rng, size) if drawer is not None else _plugin_params(cls, rng)
    duration = _duration(cls, rng, at, run)
    own = _without_defaults(cls, params)
    target = None if cls.acts_on_pool(_params_instance(cls, params)) else _target(rng, size)
    return Step(name, at, duration, target, own)


def _duration(cls: type[Fault], rng: random.Random, at: float, run: float) -> float | None:
    if "duration" not in param_specs(cls):
        return None
    # between 5% and 40% of the run, ending before it does
    longest = max(GRID, on_grid(min(0.4 * run, run - at - GRID)))
    return max(GRID, min(longest, on_grid(rng.uniform(0.05 * run, 0.4 * run))))


def _target(rng: random.Random, size: int) -> tuple[Any, ...]:
    roll = rng.random()
    if roll < 0.6 or size == 1:
        return ("workers", (rng.randrange(size),))
    if roll < 0.85 and size > 2:
        count = rng.randint(2, size - 1)
        return ("workers", tuple(sorted(rng.sample(range(size), count))))
    return ("all",)


def _params_instance(cls: type[Fault], params: Params) -> Any:
    try:
        return cls.Params(**params)
    except (TypeError, ValueError):
        return cls.Params()


def _without_defaults(cls: type[Fault], params: Params) -> tuple[tuple[str, Any], ...]:
    defaults = _params_instance(cls, {})
    return tuple((k, v) for k, v in params.items() if getattr(defaults, k, object()) != v)


def _plugin_params(cls: type[Fault], rng: random.Random) -> Params:
    """A plugin fault's parameters: its defaults, choices drawn, positive numbers scaled."""
    try:
        defaults = cls.Params()
        hints = typing.get_type_hints(cls.Params)
    except Exception:  # required parameters or unresolvable annotations: keep what it has
        return {}
    drawn: Params = {}
    for field in dataclasses.fields(defaults):
        if not field.init or field.name == "duration":
            continue
        value = _vary(hints.get(field.name), getattr(defaults, field.name), rng)
        if value is not None:
            drawn[field.name] = value
    return drawn


def _vary(annotation: Any, default: Any, rng: random.Random) -> Any:
    if get_origin(annotation) is Literal:
        return rng.choice(list(get_args(annotation)))
    if isinstance(default, bool) or not isinstance(default, int | float) or default <= 0:
        return None
    scaled = default * rng.choice([0.5, 1, 2])
    return max(1, round(scaled)) if isinstance(default, int) else scaled
