"""Drawing schedules: a pure function of (experiment, seed, k), small first, never twice, each
a valid experiment with parameters within the faults' documented ranges."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

import pytest
from explore_helpers import builtin_registry, planted
from hypothesis import given, settings
from hypothesis import strategies as st

import chaospool
from chaospool._dsl import load
from chaospool._explore.document import Base
from chaospool._explore.draw import draw_schedules, sizes
from chaospool._explore.space import GRID, MB
from chaospool._explore.steps import Candidate

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

REGISTRY = builtin_registry()
# every fault a process pool can run (the node faults need Ray: the loader refuses them here)
ALL_FAULTS = sorted(name for name, cls in REGISTRY.items() if cls.backends is None)


def experiment(explore: dict[str, Any], duration: str = "4s", size: int = 3) -> Any:
    doc = planted(duration=duration, explore=explore)
    doc["pool"] = {**doc["pool"], "size": size}
    return load(doc, registry=REGISTRY)


explore_sections = st.fixed_dictionaries({
    "faults": st.lists(st.sampled_from(ALL_FAULTS), min_size=1, max_size=4, unique=True),
    "steps": st.tuples(st.integers(1, 3), st.integers(0, 2)).map(lambda t: f"{t[0]}..{sum(t)}"),
    "budget": st.integers(1, 12),
    "window": st.sampled_from([["10%", "70%"], ["0%", "50%"], ["500ms", "2s"], [0.2, 0.9]]),
})


@settings(max_examples=30, deadline=None)
@given(explore_sections, st.integers(0, 2**31), st.integers(1, 4))
def test_schedules_are_pure_small_first_and_unique(spec: dict[str, Any], seed: int,
                                                   size: int) -> None:
    exp = experiment(spec, size=size)
    n = exp.explore.budget + 3  # past the experiment's budget too (a larger --budget)
    drawn = draw_schedules(exp, REGISTRY, seed, n)
    assert drawn == draw_schedules(exp, REGISTRY, seed, n)  # same inputs, same schedules
    # schedule k does not depend on how many are asked for (--budget): a prefix
    assert drawn[: len(drawn) // 2] == draw_schedules(exp, REGISTRY, seed, len(drawn) // 2)
    counts = [len(d.candidate.steps) for d in drawn]
    assert counts == sorted(counts)  # singles, then pairs, then triples
    assert set(counts) <= set(range(exp.explore.min_steps, exp.explore.max_steps + 1))
    keys = [d.candidate.key() for d in drawn]
    assert len(set(keys)) == len(keys)  # never the same schedule twice
    assert [d.number for d in drawn] == list(range(1, len(drawn) + 1))
    start, end = exp.explore.bounds(exp.duration)
    for d in drawn:
        for step in d.candidate.steps:
            assert step.fault in spec["faults"]
            assert start - GRID / 2 <= step.at <= end + GRID / 2
            assert step.duration is None or GRID <= step.duration <= exp.duration
            if step.target is not None and step.target[0] == "workers":
                assert all(0 <= slot < size for slot in step.target[1])


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31))
def test_each_schedule_is_a_valid_experiment_within_documented_ranges(seed: int) -> None:
    exp = experiment({"steps": "1..3", "budget": 12})
    base = Base(planted(duration="4s"), None, exp.base_dir)
    for d in draw_schedules(exp, REGISTRY, seed, 12):
        runnable = load(base.mapping(d.candidate, d.seed, REGISTRY), registry=REGISTRY)
        assert runnable.seed == d.seed
        assert len(runnable.method) == len(d.candidate.steps)
        for step in runnable.method:
            _within_documented_ranges(step.fault, step.params)


def _within_documented_ranges(fault: str, p: Any) -> None:
    if fault == "thundering_herd":
        assert 10 <= p.requests <= 1000
    elif fault == "slow_worker":
        assert 0.01 <= p.latency <= 0.5
        assert 0 <= p.jitter <= p.latency
    elif fault == "memory_leak":
        assert 10 * MB <= p.rate <= 100 * MB
        assert 50 * MB <= p.limit <= 300 * MB
    elif fault == "resource_exhaustion" and p.resource == "memory":
        assert p.amount <= 256 * MB


def test_sizes_split_the_experiments_budget_smallest_first() -> None:
    spec = experiment({"steps": "1..3", "budget": 8}).explore
    assert sizes(spec, 8) == [1, 1, 1, 2, 2, 2, 3, 3]
    assert sizes(spec, 10) == [1, 1, 1, 2, 2, 2, 3, 3, 3, 3]  # beyond: the largest count
    assert sizes(spec, 4) == [1, 1, 1, 2]  # a smaller --budget runs a prefix


def test_different_seeds_draw_different_schedules() -> None:
    exp = experiment({"budget": 10})
    one = [d.candidate for d in draw_schedules(exp, REGISTRY, 1, 10)]
    two = [d.candidate for d in draw_schedules(exp, REGISTRY, 2, 10)]
    assert one != two


def test_a_tiny_space_ends_the_sequence_instead_of_repeating() -> None:
    exp = experiment({"faults": ["port_crash"], "steps": 1, "budget": 200,
                      "window": ["1s", "1s"]}, size=1)
    drawn = draw_schedules(exp, REGISTRY, 3, 200)
    keys = [d.candidate.key() for d in drawn]
    assert 0 < len(drawn) < 200
    assert len(set(keys)) == len(keys)


class Freeze(chaospool.Fault):
    """A plugin fault: drawn with its defaults, choices drawn, numbers scaled."""

    name: ClassVar[str] = "freeze"

    @dataclasses.dataclass
    class Params:
        duration: float = 1.0
        depth: int = 4
        style: Literal["hard", "soft"] = "hard"

    async def inject(self, ctx: chaospool.FaultContext) -> None:
        return None


def test_plugin_faults_draw_choices_and_scaled_numbers() -> None:
    registry = {**REGISTRY, "freeze": Freeze}
    doc = planted(duration="4s", explore={"faults": ["freeze"], "steps": 1, "budget": 30})
    exp = load(doc, registry=registry)
    drawn = draw_schedules(exp, registry, 5, 30)
    params = [dict(s.params) for d in drawn for s in d.candidate.steps]
    assert {p.get("depth", 4) for p in params} <= {2, 4, 8}
    assert {p.get("style", "hard") for p in params} == {"hard", "soft"}
    assert all(s.duration is not None for d in drawn for s in d.candidate.steps)


def test_candidate_key_ignores_step_order() -> None:
    exp = experiment({"steps": 2, "budget": 3})
    c = draw_schedules(exp, REGISTRY, 9, 1)[0].candidate
    flipped = Candidate(c.duration, tuple(reversed(c.steps)))
    assert flipped.key() == c.key()
