"""Target resolution (CONTRACT §3): which workers a fault step acts on.

``resolve_indices`` is pure: slot indices drawn from the pool's size and the run's seeded
``Random``, so a dry run and a real run with the same seed pick the same slots. ``resolve`` maps
them onto the pool's current handles (slot indices are stable across restarts; handles are not).

Draws are over the core slots ``0..size-1`` only: overflow workers come and go with load, so a
seeded schedule could not name them reproducibly. ``{worker: i}`` / ``{workers: [...]}`` may name
an overflow slot explicitly when it is running.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Protocol

from chaospool.errors import FaultError

if TYPE_CHECKING:
    from chaospool.pool import Pool, WorkerHandle

__all__ = ("TargetSpec", "core_size", "resolve", "resolve_indices")

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


def core_size(pool: Pool) -> int:
    """The number of core (non-overflow) slots, as the schedule counts them."""
    return int(pool.config.size)


def resolve(target: TargetSpec, pool: Pool, rng: random.Random) -> list[WorkerHandle]:
    """The current handles of the slots ``target`` names; raises FaultError for a slot that
    does not exist or a handle whose process the pool does not own."""
    if target.kind == "node":
        node = getattr(target, "node", None)
        on_node = [h for h in pool.workers if h.node == node and h.state in ("ready", "busy")]
        if not on_node:
            raise FaultError("target", f"no worker serves on node {node}")
        return on_node
    handles = {handle.index: handle for handle in pool.workers}
    session_index = None
    if target.kind == "session" and target.session is not None:
        serving = pool.worker_for_session(target.session)
        session_index = serving.index if serving is not None else None
    try:
        indices = resolve_indices(target, core_size(pool), rng, session_index=session_index)
    except ValueError as exc:
        raise FaultError("target", str(exc)) from None
    missing = [i for i in indices if i not in handles]
    if missing:
        raise FaultError("target", f"no worker slot {missing} (slots: {sorted(handles)})")
    chosen = [handles[i] for i in indices]
    for handle in chosen:
        if handle.pid is not None and not pool.owns(handle.pid):
            raise FaultError("target", f"pid {handle.pid} is not a worker of this pool")
    return chosen
