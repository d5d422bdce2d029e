"""The schedule is a pure function of the experiment and the seed."""

from __future__ import annotations

from typing import Any

import pytest

from chaospool._dsl.model import Target
from chaospool._engine.schedule import resolve_slots, schedule
from chaospool._engine.session import load_with_plugins

pytestmark = pytest.mark.unit


def _experiment(method: list[dict[str, Any]], size: int = 8) -> Any:
    source = {"version": 1, "duration": "60s", "pool": {"worker": "chaospool.workers.demo",
                                                         "size": size}, "method": method}
    return load_with_plugins(source)


def test_same_seed_same_schedule_and_seed_changes_drawn_targets() -> None:
    loaded = _experiment([{"fault": "port_crash", "at": "1s", "target": {"count": 3},
                           "repeat": 5, "every": "1s"}])
    first = loaded.schedule(7)
    assert first == loaded.schedule(7)
    others = {tuple(s.slots or () for s in loaded.schedule(seed)) for seed in range(20)}
    assert len(others) > 1, "the seed must draw the targets"
    assert all(len(s.slots or ()) == 3 for s in first)


def test_repeats_expand_in_time_order_with_numbered_names() -> None:
    loaded = _experiment([
        {"fault": "slow_worker", "at": "5s", "target": {"worker": 1}},
        {"fault": "port_crash", "at": "1s", "repeat": 3, "every": "2s", "target": "all"},
    ])
    steps = loaded.schedule(1)
    # ties in time keep the file's order of steps
    assert [(s.at, s.name) for s in steps] == [
        (1.0, "port_crash#1"), (3.0, "port_crash#2"), (5.0, "slow_worker"),
        (5.0, "port_crash#3"),
    ]
    assert steps[0].slots == tuple(range(8))
    assert [s.seq for s in steps] == list(range(4))


def test_pool_level_faults_and_session_targets_have_no_slots() -> None:
    loaded = _experiment([
        {"fault": "thundering_herd", "at": "1s", "requests": 10},
        {"fault": "port_crash", "at": "2s", "target": {"session": "s1"}},
    ])
    herd, crash = loaded.schedule(3)
    assert herd.slots is None
    assert crash.slots is None
    assert crash.step.target.session == "s1"


@pytest.mark.parametrize(
    ("target", "expected_len"),
    [(Target("worker", workers=(2,)), 1), (Target("fraction", fraction=0.5), 4),
     (Target("fraction", fraction=0.01), 1), (Target("all"), 8), (Target("default"), 1)],
)
def test_resolve_slots_sizes(target: Target, expected_len: int) -> None:
    import random

    slots = resolve_slots(target, 8, random.Random(1))
    assert slots is not None
    assert len(slots) == expected_len
    assert len(set(slots)) == len(slots)
    assert all(0 <= i < 8 for i in slots)


def test_schedule_is_pure_across_loads() -> None:
    method = [{"fault": "timeout", "at": "1s", "duration": "1s"}]
    a = _experiment(method).experiment
    b = _experiment(method).experiment
    assert schedule(a, 99) == schedule(b, 99)
