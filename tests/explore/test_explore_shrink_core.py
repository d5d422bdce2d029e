"""The shrinker's passes and the k-of-n verdict, on pure predicates (no pool): fast, exact."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import anyio
import pytest
from explore_helpers import builtin_registry
from hypothesis import given, settings
from hypothesis import strategies as st

from chaospool._explore.shrink import Shrinker, Verdict, k_of_n, lower_numbers
from chaospool._explore.space import GRID, on_grid
from chaospool._explore.steps import Candidate, Step

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

SIZE = 3


def overlapping_weakness(c: Candidate) -> bool:
    """Planted: worker 1 stopped >= 0.5 s while worker 2 is killed, observed after the stop."""
    stops = [s for s in c.steps if s.fault == "timeout" and s.target is not None
             and _hits(s.target, 1) and (s.duration or 0) >= 0.5
             and ("how", "block") not in s.params]
    kills = [s for s in c.steps if s.fault == "port_crash" and s.target is not None
             and _hits(s.target, 2)]
    # grid floats: 0.3 + 0.6 < 0.9 in binary, so a kill at the stop's last instant needs the 1e-9
    return any(t.at <= k.at <= t.at + (t.duration or 0) + 1e-9
               and c.duration + 1e-9 >= t.at + (t.duration or 0) + 0.1  # grid floats
               for t in stops for k in kills)


def _hits(target: tuple[object, ...], slot: int) -> bool:
    return target[0] == "all" or (target[0] == "workers" and slot in target[1])  # type: ignore[operator]


def shrink(initial: Candidate, predicate: Callable[[Candidate], bool]) -> tuple[Candidate, int]:
    calls = 0

    async def test(c: Candidate) -> bool:
        nonlocal calls
        calls += 1
        return predicate(c)

    shrinker = Shrinker(initial, test, size=SIZE, registry=builtin_registry())
    return anyio.run(shrinker.shrink), calls


noise_step = st.builds(
    Step,
    fault=st.sampled_from(["slow_worker", "network_partition", "timeout", "port_crash"]),
    at=st.integers(0, 40).map(lambda n: n * GRID),
    duration=st.integers(1, 20).map(lambda n: n * GRID),
    target=st.sampled_from([("all",), ("workers", (0,)), ("workers", (0, 2)), ("workers", (1,))]),
    params=st.just(()),
)


@st.composite
def planted_candidates(draw: st.DrawFn) -> Candidate:
    stop_at = draw(st.integers(0, 30)) * GRID
    stop_for = draw(st.integers(10, 30)) * GRID
    kill_at = stop_at + draw(st.integers(0, round(stop_for / GRID))) * GRID
    stop = Step("timeout", on_grid(stop_at), on_grid(stop_for), ("all",),
                (("how", "stop"),) if draw(st.booleans()) else ())
    kill = Step("port_crash", on_grid(kill_at), None, draw(st.sampled_from([("all",),
                ("workers", (1, 2))])), (("signal", "SIGTERM"),))
    noise = draw(st.lists(noise_step, max_size=4))
    steps = draw(st.permutations([stop, kill, *noise]))
    return Candidate(on_grid(stop_at + stop_for + 0.1 + draw(st.integers(0, 40)) * GRID),
                     tuple(steps))


@settings(max_examples=40, deadline=None)
@given(planted_candidates())
def test_shrink_returns_exactly_the_two_needed_steps_with_times_shrunk(initial: Candidate) -> None:
    assert overlapping_weakness(initial)
    best, _calls = shrink(initial, overlapping_weakness)
    assert overlapping_weakness(best)
    assert sorted(s.fault for s in best.steps) == ["port_crash", "timeout"]
    stop = next(s for s in best.steps if s.fault == "timeout")
    kill = next(s for s in best.steps if s.fault == "port_crash")
    assert stop == Step("timeout", 0.0, 0.5, ("workers", (1,)), ())
    assert kill == Step("port_crash", 0.0, None, ("workers", (2,)), ())
    assert best.duration == min(initial.duration, 0.75)  # the stop's end + AFTER_LAST


@settings(max_examples=25, deadline=None)
@given(planted_candidates())
def test_shrunk_result_is_one_minimal(initial: Candidate) -> None:
    """No single deletion, simplification or lowering of the result still fails."""
    best, _calls = shrink(initial, overlapping_weakness)
    probe = Shrinker(best, _never, size=SIZE, registry=builtin_registry())
    for candidate in itertools.chain(probe.delete(best), probe.simplify(best), probe.lower(best),
                                     probe.shorten(best)):
        assert not overlapping_weakness(candidate), candidate


async def _never(_c: Candidate) -> bool:
    return False


def test_sorting_is_free_and_the_input_is_never_retried() -> None:
    steps = (Step("port_crash", 0.5, None, ("workers", (2,))),
             Step("timeout", 0.2, 0.5, ("workers", (1,))))
    initial = Candidate(1.0, steps)
    seen: list[str] = []

    async def test(c: Candidate) -> bool:
        assert c.key() not in seen, "a candidate ran twice"
        seen.append(c.key())
        return False

    best = anyio.run(Shrinker(initial, test, size=SIZE, registry=builtin_registry()).shrink)
    assert [s.fault for s in best.steps] == ["timeout", "port_crash"]  # sorted by time
    assert initial.key() not in seen


def test_exhausted_budget_keeps_the_best_so_far() -> None:
    initial = Candidate(2.0, (Step("timeout", 1.0, 1.0, ("all",)),
                              Step("slow_worker", 0.5, 0.5, ("all",))))
    calls = 0

    async def test(c: Candidate) -> bool:
        nonlocal calls
        calls += 1
        return any(s.fault == "timeout" for s in c.steps)

    shrinker = Shrinker(initial, test, size=SIZE, registry=builtin_registry(),
                        exhausted=lambda: calls >= 3)
    best = anyio.run(shrinker.shrink)
    assert calls == 3
    assert [s.fault for s in best.steps] == ["timeout"]  # deletion ran first and helped


@pytest.mark.parametrize(
    ("outcomes", "runs", "min_fails", "verdict", "used"),
    [
        ([(True, True), (True, True)], 3, 2, Verdict.FAILS, 2),  # certain after two
        ([(False, False), (False, False)], 3, 2, Verdict.PASSES, 2),  # cannot reach 2 any more
        ([(True, True), (False, False), (True, True)], 3, 2, Verdict.FAILS, 3),
        ([(False, True), (False, False)], 3, 2, Verdict.UNRESOLVED, 2),  # failed another way
        ([(True, True), (False, True), (False, False)], 3, 2, Verdict.UNRESOLVED, 3),
        ([(True, True)], 1, 1, Verdict.FAILS, 1),
        ([(False, False), (False, False), (True, True)], 3, 1, Verdict.FAILS, 3),
    ],
)
def test_k_of_n(outcomes: list[tuple[bool, bool]], runs: int, min_fails: int, verdict: Verdict,
                used: int) -> None:
    queue = list(outcomes)

    async def once() -> tuple[bool, bool]:
        return queue.pop(0)

    assert anyio.run(k_of_n, once, runs, min_fails) == (verdict, used)


@given(st.integers(1, 400), st.integers(0, 100))
def test_lower_numbers_are_smaller_sorted_and_reach_one_step_below(n: int, floor_n: int) -> None:
    value, floor = n * GRID, min(floor_n, n) * GRID
    tries = lower_numbers(on_grid(value), on_grid(floor), GRID, on_grid)
    assert tries == sorted(set(tries))
    assert all(floor - 1e-9 <= t < value for t in tries)
    if value - floor >= GRID - 1e-9:
        assert tries[0] == on_grid(floor)
        assert on_grid(value - GRID) in tries
