"""Target resolution (docs/dsl.md, targets): which workers a fault step acts on.

The one resolver of the engine's schedule, its run-time resolution and the faults (issue:
one rule per case). ``resolve_indices`` is pure: slot indices drawn from the pool's size and the
run's seeded ``Random``, so a dry run and a real run with the same seed pick the same slots.
``session_slots`` is the run-time case (which worker serves a session is a fact of the running
pool). The engine maps slots onto the pool's current handles (slot indices are stable across
restarts; handles are not) and the faults act on each slot's live incarnation.

Draws are over the core slots ``0..size-1`` only: overflow workers come and go with load, so a
seeded schedule could not name them reproducibly. ``{worker: i}`` / ``{workers: [...]}`` may name
an overflow slot explicitly when it is running.
"""

from __future__ import annotations

import random
from typing import Protocol

__all__ = ("TargetSpec", "fraction_count", "resolve_indices", "session_slots")

KINDS = ("default", "worker", "workers", "count", "fraction", "session", "all", "node")


class TargetSpec(Protocol):
    """The fields of ``chaospool._dsl.model.Target`` that resolution reads."""

    @property
    def kind(self) -> str: ...
    @property
    def workers(self) -> tuple[int, ...]: ...
    @property
    def count(self) -> int | None: ...
    @property
    def fraction(self) -> float | None: ...
    @property
    def session(self) -> str | None: ...


def fraction_count(fraction: float, size: int) -> int:
    """How many of ``size`` workers ``fraction`` means: ``round()``ed, at least one (the same
    rule as the engine's schedule, so both draw the same slots for the same seed)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1]; got {fraction!r}")
    return max(1, min(size, round(fraction * size)))


def resolve_indices(
    target: TargetSpec, size: int, rng: random.Random, *, session_index: int | None = None
) -> list[int]:
    """Slot indices for ``target`` in a pool of ``size`` core slots, ascending.

    ``session_index`` is the slot now serving ``target.session`` (None: nobody serves it yet,
    and the session target falls back to one slot drawn like the default).
    """
    if size < 1:
        raise ValueError("the pool has no worker slot to target")
    kind = target.kind
    if kind in ("worker", "workers"):
        return sorted(set(target.workers))
    if kind == "all":
        return list(range(size))
    if kind == "count":
        count = target.count or 1
        if count < 1:
            raise ValueError(f"count must be >= 1; got {count}")
        return sorted(rng.sample(range(size), min(count, size)))
    if kind == "fraction":
        return sorted(rng.sample(range(size), fraction_count(target.fraction or 0.0, size)))
    if kind == "session" and session_index is not None:
        return [session_index]
    if kind in ("default", "session"):
        return [rng.choice(range(size))]
    raise ValueError(f"unknown target kind {kind!r} (one of {', '.join(KINDS)})")


def session_slots(
    target: TargetSpec, size: int, rng: random.Random, serving: int | None
) -> tuple[int, ...]:
    """Run-time slots of a ``{session: ID}`` target: ``serving`` (the slot now serving the
    session), or, when nobody serves it yet, one core slot drawn with ``rng`` -- the run's seed,
    by the same rule as the default target. Any other kind has no run-time slots (the schedule
    drew them, or the fault acts on the pool)."""
    if target.kind != "session" or target.session is None:
        return ()
    return tuple(resolve_indices(target, size, rng, session_index=serving))
