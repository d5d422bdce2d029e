"""Target resolution (docs/dsl.md, "Targets") against the fake pool seam."""

from __future__ import annotations

import random

import pytest
from fault_fakes import FakePool, FakeTarget

from chaospool._engine.schedule import resolve_slots
from chaospool._faults.targets import fraction_count, resolve, resolve_indices
from chaospool.errors import FaultError

pytestmark = pytest.mark.unit


def indices(target: FakeTarget, pool: FakePool, seed: int = 1) -> list[int]:
    return [h.index for h in resolve(target, pool, random.Random(seed))]  # type: ignore[arg-type]


def test_explicit_slots_are_taken_as_given() -> None:
    pool = FakePool(size=5)
    assert indices(FakeTarget("worker", workers=(3,)), pool) == [3]
    assert indices(FakeTarget("workers", workers=(4, 0, 4)), pool) == [0, 4]
    assert indices(FakeTarget("all"), pool) == [0, 1, 2, 3, 4]


def test_slot_index_is_stable_across_restarts() -> None:
    pool = FakePool(size=3)
    old = pool.slots[1]
    pool.crash(old, exitcode=-9, sig=9)
    (handle,) = resolve(FakeTarget("worker", workers=(1,)), pool, random.Random(0))  # type: ignore[arg-type]
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


def test_missing_slot_is_an_error() -> None:
    with pytest.raises(FaultError, match="no worker slot"):
        indices(FakeTarget("worker", workers=(7,)), FakePool(size=2))


def test_a_pid_the_pool_does_not_own_is_refused() -> None:
    pool = FakePool(size=2)
    pool.owned.discard(pool.slots[0].pid)
    with pytest.raises(FaultError, match="not a worker of this pool"):
        indices(FakeTarget("worker", workers=(0,)), pool)


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
    with pytest.raises(FaultError, match="unknown target kind"):
        indices(FakeTarget("bogus"), FakePool(size=2))
