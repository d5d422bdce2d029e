"""Target resolution (docs/dsl.md): the one resolver (``_faults.targets``) as the schedule and
the engine's run-time resolution use it, against the fake pool seam."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from fault_fakes import FakePool, FakeTarget, context

from chaospool._engine.faults import live_targets
from chaospool._engine.schedule import ScheduledStep, resolve_slots
from chaospool._faults import PortCrash
from chaospool._faults import _common as common
from chaospool._faults.targets import fraction_count, resolve_indices
from chaospool.errors import FaultError

pytestmark = pytest.mark.unit


def handles(target: FakeTarget, pool: FakePool, seed: int = 1) -> list[Any]:
    """The handles a step with ``target`` acts on: the schedule's draw (or, for a session
    target, the engine's run-time one), then the engine's mapping onto the live handles."""
    slots = resolve_slots(target, pool.config.size, random.Random(seed))  # type: ignore[arg-type]
    step: Any = SimpleNamespace(target=target)
    scheduled = ScheduledStep(0.0, "s", step, 0, slots, 0)

    async def resolve() -> list[Any]:
        with anyio.fail_after(5):
            return await live_targets(pool, scheduled, random.Random(seed))  # type: ignore[arg-type]

    return anyio.run(resolve)


def indices(target: FakeTarget, pool: FakePool, seed: int = 1) -> list[int]:
    return [h.index for h in handles(target, pool, seed)]


def test_explicit_slots_are_taken_as_given() -> None:
    pool = FakePool(size=5)
    assert indices(FakeTarget("worker", workers=(3,)), pool) == [3]
    assert indices(FakeTarget("workers", workers=(4, 0, 4)), pool) == [0, 4]
    assert indices(FakeTarget("all"), pool) == [0, 1, 2, 3, 4]


def test_slot_index_is_stable_across_restarts() -> None:
    pool = FakePool(size=3)
    old = pool.slots[1]
    pool.crash(old, exitcode=-9, sig=9)
    (handle,) = handles(FakeTarget("worker", workers=(1,)), pool)
    assert handle.index == 1
    assert handle.pid != old.pid
    assert handle is pool.slots[1]


def test_count_draws_distinct_slots_reproducibly_with_the_seed() -> None:
    pool = FakePool(size=8)
    target = FakeTarget("count", count=3)
    first = indices(target, pool, seed=42)
    assert len(set(first)) == 3
    assert indices(target, pool, seed=42) == first
    draws = {tuple(indices(target, pool, seed=s)) for s in range(20)}
    assert len(draws) > 1  # the seed, not a constant, decides


def test_count_above_size_takes_every_slot() -> None:
    assert indices(FakeTarget("count", count=9), FakePool(size=3)) == [0, 1, 2]


@pytest.mark.parametrize(
    ("fraction", "size", "expected"), [(0.5, 4, 2), (1.0, 3, 3), (0.01, 5, 1), (0.4, 5, 2)]
)
def test_fraction_counts(fraction: float, size: int, expected: int) -> None:
    assert fraction_count(fraction, size) == expected
    assert len(indices(FakeTarget("fraction", fraction=fraction), FakePool(size=size))) == expected


def test_default_is_one_drawn_worker() -> None:
    pool = FakePool(size=6)
    drawn = {indices(FakeTarget(), pool, seed=s)[0] for s in range(30)}
    assert len(drawn) > 1
    assert drawn <= set(range(6))


def test_session_target_is_the_worker_now_serving_it() -> None:
    pool = FakePool(size=4)
    pool.sessions["s1"] = 2
    assert indices(FakeTarget("session", session="s1"), pool) == [2]
    # nobody serves the session yet: one slot drawn like the default
    assert len(indices(FakeTarget("session", session="nobody"), pool)) == 1


def test_overflow_workers_are_never_drawn() -> None:
    pool = FakePool(size=2, max_overflow=2)
    pool.slots[2] = type(pool.slots[0])(pool, 2)
    pool.owned.add(pool.slots[2].pid)
    assert pool.slots[2].overflow
    assert all(i < 2 for s in range(20) for i in indices(FakeTarget("count", count=2), pool, s))
    assert indices(FakeTarget("worker", workers=(2,)), pool) == [2]  # named explicitly: allowed


def test_a_pid_the_pool_does_not_own_is_refused() -> None:
    pool = FakePool(size=2)
    pool.owned.discard(pool.slots[0].pid)
    ctx = context(PortCrash, pool, handles(FakeTarget("worker", workers=(0,)), pool))

    async def act() -> None:
        await common.live_targets(ctx, "port_crash")

    with pytest.raises(FaultError, match="not a worker of this pool"):
        anyio.run(act)


@pytest.mark.parametrize(
    "target",
    [FakeTarget(), FakeTarget("count", count=3), FakeTarget("fraction", fraction=0.5),
     FakeTarget("all"), FakeTarget("workers", workers=(1, 4))],
)
def test_same_draws_as_the_engine_schedule(target: FakeTarget) -> None:
    """A dry run (the engine's schedule) and this resolver pick the same slots for a seed."""
    for seed in range(10):
        ours = resolve_indices(target, 6, random.Random(seed))
        engine = resolve_slots(target, 6, random.Random(seed))  # type: ignore[arg-type]
        assert engine is not None
        assert ours == sorted(engine)


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown target kind"):
        resolve_indices(FakeTarget("bogus"), 2, random.Random(1))


def test_a_session_nobody_serves_is_drawn_with_the_seed_by_the_default_rule() -> None:
    """One rule for the schedule's default and the run-time session draw: same seed, same slot
    (0.1.0 drew from the serving handles, with a hidden ``Random(0)`` when no rng was given)."""
    for seed in range(10):
        default = resolve_indices(FakeTarget(), 5, random.Random(seed))
        session = resolve_indices(FakeTarget("session", session="x"), 5, random.Random(seed))
        assert default == session
