"""What the probe's cheaper hot path (docs/design.md, "Performance", the probe's own cost)
must keep: the checker's O(1) session bookkeeping, the aggregator's lane (the phase past the
latest boundary, bound once per phase change), one clock read per operation without think
time, reproducible seeded draws, and the closed loop's launched/in-flight accounting without a
per-operation counter."""

from __future__ import annotations

import math
import random
from collections import Counter

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from probe_fakes import FakePool, Load, ManualClock, Mix, StepClock

from chaospool._probe import Aggregator, Checker, PhaseClock, Probe, Recorder
from chaospool._probe.consistency import HALF_SHARE, INCR, READ, SHARE
from chaospool._probe.histogram import LogHistogram

# -- the checker's free list ----------------------------------------------------------------

# a draw in [0, SHARE), the edges of both halves included
_draws = st.one_of(
    st.floats(min_value=0.0, max_value=SHARE, exclude_max=True),
    st.sampled_from([0.0, math.nextafter(HALF_SHARE, 0.0), HALF_SHARE,
                     math.nextafter(SHARE, 0.0)]),
)
# True: take a session with the draw; False: release the oldest taken one
_steps = st.lists(st.tuples(st.booleans(), _draws), max_size=80)


@pytest.mark.unit
@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=9), _steps)
def test_take_hands_out_each_free_session_once_and_release_returns_it(
        n: int, steps: list[tuple[bool, float]]) -> None:
    checker = Checker(n)
    taken: list[int] = []
    for take, u in steps:
        if take:
            i = checker.take(u)
            if len(taken) == n:
                assert i == -1  # every session is in flight: the operation is not checked
                continue
            assert 0 <= i < n
            assert i not in taken
            taken.append(i)
        elif taken:
            checker.release(taken.pop(0))
        assert sorted(checker.free + taken) == list(range(n))
        assert [i for i in range(n) if checker.busy[i]] == sorted(taken)


@pytest.mark.unit
def test_take_draws_the_session_uniformly_from_the_draw() -> None:
    checker = Checker(4)
    rng = random.Random(5)
    seen: Counter[int] = Counter()
    for _ in range(4000):
        i = checker.take(rng.random() * SHARE)
        seen[i] += 1
        checker.release(i)
    assert set(seen) == {0, 1, 2, 3}
    assert min(seen.values()) > 800  # 1000 expected each


@pytest.mark.unit
def test_release_of_a_session_never_taken_changes_nothing() -> None:
    """A replayed history completes operations the checker never handed out."""
    checker = Checker(3)
    checker.complete(1, INCR, 0.0, 0.1, 0, 1, (1, 42))
    assert sorted(checker.free) == [0, 1, 2]
    assert checker.increments_acknowledged == 1


@pytest.mark.unit
@pytest.mark.parametrize("reply", [{"value": 1, "pid": 7}, {"value": True, "pid": 7},
                                   {"value": 1, "pid": "7"}, "pong", None])
def test_acked_and_done_agree_on_every_reply(reply: object) -> None:
    """``acked`` (the first attempt's ok reply, checked in one go) finds what the general
    path finds, and frees the session either way."""
    fast, slow = Checker(1), Checker(1)
    for checker in (fast, slow):
        assert checker.take(0.0) == 0
    assert fast.acked(0, INCR, 0.0, 0.1, reply) == slow.done(0, INCR, 0.0, 0.1, 0, 1, reply)
    assert fast.to_dict() == slow.to_dict()
    assert fast.free == slow.free == [0]


@pytest.mark.unit
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(min_value=-1, max_value=6),
                          st.sampled_from([7, None, "7"])), max_size=30))
def test_acked_finds_what_done_finds_on_any_sequence(
        steps: list[tuple[bool, int, object]]) -> None:
    """Session 0's first-attempt ok operations, in any order and with any counter values:
    the probe's one-go check and the general path give the same findings and bounds."""
    fast, slow = Checker(1), Checker(1)
    for t, (incr, counter, pid) in enumerate(steps):
        f = INCR if incr else READ
        reply = {"value": counter, "pid": pid}
        for checker in (fast, slow):
            assert checker.take(0.0) == 0
        assert fast.acked(0, f, t, t + 0.5, reply) == slow.done(0, f, t, t + 0.5, 0, 1, reply)
        assert fast.to_dict() == slow.to_dict()
        assert (fast.low, fast.high, fast.seen) == (slow.low, slow.high, slow.seen)
        assert (fast.last_ack, fast.last_seen) == (slow.last_ack, slow.last_seen)


# -- the aggregator's lane --------------------------------------------------------------------

_events = st.lists(st.tuples(st.sampled_from(["injected", "reverted", "settled"]),
                             st.floats(min_value=0.0, max_value=10.0)), max_size=8)
# steps as the engine drives the clock: (at, lasts, injects); a step that injects nothing
# settles at once
_schedule = st.lists(st.tuples(st.floats(min_value=0.0, max_value=1.0),
                               st.floats(min_value=0.0, max_value=0.5), st.booleans()),
                     min_size=1, max_size=3)


def _timeline(schedule: list[tuple[float, float, bool]]) -> list[tuple[float, int, str]]:
    """The schedule's clock events in time order (a revert before its settle)."""
    events = []
    for at, lasts, injects in schedule:
        if injects:
            events += [(at, 0, "injected"), (at + lasts, 1, "reverted"),
                       (at + lasts, 2, "settled")]
        else:
            events.append((at, 2, "settled"))
    return sorted(events)


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=4), _events,
       st.lists(st.floats(min_value=-1.0, max_value=20.0), min_size=1, max_size=20))
def test_the_lane_is_the_phase_of_every_start_past_its_start(
        steps: int, events: list[tuple[str, float]], starts: list[float]) -> None:
    clock = PhaseClock(steps)
    for what, t in events:
        if what == "settled":
            clock.settled()
        else:
            getattr(clock, what)(t)
        lo, phase = clock.lane()
        for start in starts:
            if start >= lo:
                assert clock.phase_of(start) == phase, (what, t, start)


@pytest.mark.unit
@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.floats(min_value=0.0, max_value=0.05),
                          st.floats(min_value=0.0, max_value=0.3)), min_size=1, max_size=60),
       _schedule)
def test_add_ok_through_the_lane_counts_as_the_phase_lookup(
        ops: list[tuple[float, float]], schedule: list[tuple[float, float, bool]]) -> None:
    """The same operations and phase events, recorded live by ``add_ok`` (the lane) and by
    ``add`` (a phase lookup per operation), give the same phases, buckets and latencies."""
    clocks = [PhaseClock(len(schedule)), PhaseClock(len(schedule))]
    fast, slow = Aggregator(0.1, clocks[0]), Aggregator(0.1, clocks[1])
    now, pending = 0.0, _timeline(schedule)
    for gap, latency in ops:
        now += gap
        while pending and pending[0][0] <= now:
            t, _, what = pending.pop(0)
            for clock in clocks:
                clock.settled() if what == "settled" else getattr(clock, what)(t)
        start = max(0.0, now - latency)
        fast.add_ok(start, now)
        slow.add(start, now, 0, 1)
    for agg in (fast, slow):
        agg.finish(None, None)
    assert len(fast) == len(slow) == len(ops)
    assert [t.outcomes for t in fast.slots] == [t.outcomes for t in slow.slots]
    assert [t.latency_sum for t in fast.slots] == [t.latency_sum for t in slow.slots]
    assert (list(fast.ok), list(fast.bands)) == (list(slow.ok), list(slow.bands))


# -- the probe's loop ---------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.anyio
@pytest.mark.timeout(10)
async def test_without_think_time_one_operations_end_is_the_next_ones_start() -> None:
    """One clock read per operation: nothing runs between one operation's end and the next
    one's start on the same client."""
    clock = StepClock(0.001)
    probe = Probe(FakePool(), Load(clients=1), random.Random(1), clock, recorder=Recorder())
    await probe.run(0.0495)
    rec = probe.recorder
    assert isinstance(rec, Recorder)
    assert len(rec) == 50  # reads at 0, 1, ..., 50 ms: one per operation and one to stop
    assert list(rec.starts[1:]) == list(rec.ends[:-1])
    assert all(e - s == pytest.approx(0.001) for s, e in zip(rec.starts, rec.ends, strict=True))


async def _sequence(seed: int, load: Load) -> list[tuple[str, str | None]]:
    pool = FakePool()
    await Probe(pool, load, random.Random(seed), StepClock(0.0005)).run(0.2)
    return [(c.command, c.session) for c in pool.calls]


@pytest.mark.unit
@pytest.mark.anyio
@pytest.mark.timeout(10)
async def test_checked_draws_are_reproducible_with_the_seed_and_keep_their_shares() -> None:
    # one client: trio randomises the order of tasks woken together, so a seed fixes the
    # sequence of each client, not their interleaving
    load = Load(clients=1, sessions=4, consistency=True, mix=(Mix("ping", 3), Mix("echo", 1)))
    first = await _sequence(11, load)
    assert first == await _sequence(11, load)
    assert first != await _sequence(12, load)
    checked = [(f, s) for f, s in first if f in (INCR, READ)]
    share = len(checked) / len(first)
    assert 0.18 < share < 0.32, share
    incr = sum(f == INCR for f, _ in checked) / len(checked)
    assert 0.35 < incr < 0.65, incr
    assert len({s for _, s in checked}) == 4


@pytest.mark.unit
@pytest.mark.anyio
@pytest.mark.timeout(10)
async def test_a_closed_loop_counts_its_clients_in_flight_not_its_thinking_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``launched`` = recorded + in flight, with no per-operation counter: a client thinking
    between calls holds no operation, so a cancellation then cuts nothing off."""
    thinking = anyio.Event()
    release = anyio.Event()

    async def sleep(delay: float) -> None:
        thinking.set()
        await release.wait()

    monkeypatch.setattr(anyio, "sleep", sleep)
    probe = Probe(FakePool(), Load(clients=1, think=1.0), random.Random(1), ManualClock())
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run, 1.0)
        await thinking.wait()
        assert (probe.launched, probe.in_flight, len(probe.recorder)) == (1, 0, 1)
        tg.cancel_scope.cancel()
    assert probe.recorder.cancelled == 0
    assert probe.launched == len(probe.recorder) == 1


@pytest.mark.unit
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=1, max_value=400),
                          st.floats(min_value=1e-5, max_value=0.5),
                          st.floats(min_value=0.0, max_value=0.3)), min_size=1, max_size=12))
def test_dense_and_sparse_buckets_fill_the_histogram_alike(
        buckets: list[tuple[int, float, float]]) -> None:
    """A dense bucket goes into the histogram as it closes, a sparse one waits for the
    second's batch: either way the histogram holds every latency in its own bin."""
    rng = random.Random(len(buckets))
    agg = Aggregator(0.1, PhaseClock(0))
    latencies = []
    for number, (n, median, spread) in enumerate(buckets):
        for k in range(n):
            latency = median * math.exp(spread * (2 * rng.random() - 1))
            end = number * 0.1 + 0.09 * k / n
            latencies.append(end - (end - latency))
            agg.add_ok(end - latency, end)
    agg.finish(None, None)
    histogram = agg.slots[0].histogram
    assert histogram is not None
    reference = LogHistogram()
    reference.record(latencies)
    assert list(histogram.counts) == list(reference.counts)
    assert histogram.total == len(latencies)
