"""The probe's load generation and outcome recording, against a fake pool."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from probe_fakes import REPLY, Call, FakePool, Load, ManualClock, Mix, RealClock, StepClock

from chaospool._probe import Probe, Recorder
from chaospool.errors import (
    ChaospoolError,
    CheckoutTimeout,
    CircuitOpen,
    CommandError,
    PoolClosed,
    PoolError,
    ProtocolError,
    QueueFull,
    RequestTimeout,
    WorkerCrashed,
    WorkerStartError,
)

pytestmark = [pytest.mark.unit, pytest.mark.anyio, pytest.mark.timeout(10)]


async def run_probe(
    load: Load, pool: FakePool | None = None, *, seed: int = 1, stop_at: float = 0.2
) -> tuple[Probe, FakePool]:
    pool = pool or FakePool()
    probe = Probe(pool, load, random.Random(seed), StepClock())
    await probe.run(stop_at)
    return probe, pool


def kinds(recorder: Recorder) -> Counter[str]:
    return Counter(o.kind for o in recorder)


async def test_closed_loop_records_one_outcome_per_call() -> None:
    probe, pool = await run_probe(Load(clients=3))
    rec = probe.recorder
    assert len(rec) > 0
    assert len(rec) == len(pool.calls) == probe.launched
    assert kinds(rec) == {"ok": len(rec)}
    assert all(o.attempts == 1 and o.end >= o.start for o in rec)
    assert rec.cancelled == 0
    assert probe.info()["mode"] == "closed"


async def test_no_operation_starts_at_or_after_stop_at() -> None:
    probe, _ = await run_probe(Load(clients=4), stop_at=0.05)
    assert max(probe.recorder.starts) < 0.05


async def test_mix_is_weighted_and_reproducible_with_the_seed() -> None:
    mix = (Mix("a", 70), Mix("b", 20), Mix("c", 10), Mix("never", 0))
    load = Load(mix=mix, sessions=5)

    def sequence(pool: FakePool) -> list[tuple[str, str | None]]:
        return [(c.command, c.session) for c in pool.calls]

    _, first = await run_probe(load, seed=7, stop_at=3.0)
    _, again = await run_probe(load, seed=7, stop_at=3.0)
    _, other = await run_probe(load, seed=8, stop_at=3.0)
    assert sequence(first) == sequence(again)
    assert sequence(first) != sequence(other)
    counts = Counter(c.command for c in first.calls)
    assert "never" not in counts
    # ~1000 draws: each share within a few points of its weight.
    total = sum(counts.values())
    assert abs(counts["a"] / total - 0.7) < 0.06
    assert abs(counts["c"] / total - 0.1) < 0.04


async def test_sessions_are_drawn_from_s0_to_sn() -> None:
    _, pool = await run_probe(Load(sessions=3), stop_at=0.5)
    assert {c.session for c in pool.calls} == {"s0", "s1", "s2"}
    _, pool = await run_probe(Load(sessions=None))
    assert {c.session for c in pool.calls} == {None}


async def test_retryable_failure_then_success_is_recovered() -> None:
    # Every operation's first attempt crashes, the second succeeds.
    def behaviour(call: Call) -> Any:
        return WorkerCrashed("boom") if call.number % 2 == 0 else REPLY

    probe, pool = await run_probe(Load(retries=2), FakePool(behaviour))
    outcomes = list(probe.recorder)
    assert outcomes
    assert all(o.kind == "ok" and o.attempts == 2 for o in outcomes)
    assert all(o.recovered for o in outcomes)
    # The probe does the retrying itself, so it can count attempts.
    assert {c.retries for c in pool.calls} == {0}


@pytest.mark.parametrize("exc", [WorkerCrashed("x"), RequestTimeout("x"), ProtocolError("x")])
async def test_retries_are_exhausted_then_the_last_error_counts(exc: Exception) -> None:
    probe, pool = await run_probe(Load(retries=3), FakePool(lambda call: exc), stop_at=0.05)
    outcomes = list(probe.recorder)
    assert outcomes
    assert all(o.attempts == 4 for o in outcomes)
    assert len(pool.calls) == 4 * len(outcomes)
    assert {o.kind for o in outcomes} == {exc.kind if not isinstance(exc, WorkerCrashed)
                                          else "worker_crashed"}


async def test_last_attempt_decides_the_kind() -> None:
    # crash, then queue full: not retryable, so the operation ends as queue_full after 2 tries.
    def behaviour(call: Call) -> Any:
        return WorkerCrashed("x") if call.number % 2 == 0 else QueueFull("full")

    probe, _ = await run_probe(Load(retries=5), FakePool(behaviour), stop_at=0.05)
    assert {(o.kind, o.attempts) for o in probe.recorder} == {("queue_full", 2)}


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (CheckoutTimeout("x"), "checkout_timeout"),
        (QueueFull("x"), "queue_full"),
        (CircuitOpen("x"), "circuit_open"),
        (CommandError("ValueError", "bad"), "command_error"),
        (PoolClosed("x"), "pool_closed"),
        (WorkerStartError("x"), "worker_crashed"),
        (RequestTimeout("x"), "request_timeout"),
    ],
)
async def test_error_kinds_are_recorded_without_retry_when_not_retryable(
    exc: ChaospoolError, kind: str
) -> None:
    probe, pool = await run_probe(Load(retries=0), FakePool(lambda call: exc), stop_at=0.05)
    assert kinds(probe.recorder) == {kind: len(probe.recorder)}
    assert len(pool.calls) == len(probe.recorder)


async def test_an_error_outside_the_contract_kinds_is_a_bug_and_propagates() -> None:
    pool = FakePool(lambda call: PoolError("what kind is this"))
    with pytest.raises(ExceptionGroup) as info:
        await run_probe(Load(), pool)
    assert info.group_contains(PoolError)


async def test_echo_carries_a_unique_token_and_keeps_its_args() -> None:
    load = Load(mix=(Mix("echo", 1, {"x": 1}),), clients=2)
    probe, pool = await run_probe(load)
    tokens = [c.args["token"] for c in pool.calls]
    assert len(tokens) == len(set(tokens)) == len(probe.recorder)
    assert all(c.args["x"] == 1 for c in pool.calls)
    assert kinds(probe.recorder) == {"ok": len(probe.recorder)}


@pytest.mark.parametrize("reply", [{"token": "someone-else"}, {"x": 1}, "pong", None])
async def test_echo_reply_without_its_token_is_a_wrong_reply(reply: Any) -> None:
    pool = FakePool(lambda call: reply)
    probe, _ = await run_probe(Load(mix=(Mix("echo", 1, {"x": 1}),)), pool, stop_at=0.05)
    assert kinds(probe.recorder) == {"wrong_reply": len(probe.recorder)}


async def test_non_echo_replies_are_not_checked() -> None:
    probe, _ = await run_probe(Load(mix=(Mix("ping"),)), FakePool(lambda call: "anything"))
    assert kinds(probe.recorder) == {"ok": len(probe.recorder)}


async def test_in_flight_operations_finish_after_stop_at_and_are_recorded() -> None:
    pool, clock = FakePool(), ManualClock()
    pool.gate = anyio.Event()
    probe = Probe(pool, Load(clients=3), random.Random(1), clock)
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run, 1.0)
        await _wait(lambda: pool.entered == 3)
        clock.now = 5.0  # the run is over while three operations are still in flight
        pool.gate.set()
    assert len(probe.recorder) == 3 == probe.launched
    assert list(probe.recorder.ends) == [5.0, 5.0, 5.0]
    assert probe.recorder.cancelled == 0


async def test_outside_cancellation_counts_cut_off_operations() -> None:
    pool = FakePool()
    pool.gate = anyio.Event()
    probe = Probe(pool, Load(clients=4), random.Random(1), ManualClock())
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run, 1.0)
        await _wait(lambda: pool.entered == 4)
        tg.cancel_scope.cancel()
    assert len(probe.recorder) == 0
    assert probe.recorder.cancelled == 4


async def test_stop_starts_no_new_operation() -> None:
    pool, clock = FakePool(), ManualClock()
    pool.gate = anyio.Event()
    probe = Probe(pool, Load(clients=2), random.Random(1), clock)
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run, 100.0)
        await _wait(lambda: pool.entered == 2)
        probe.stop()
        pool.gate.set()
    assert len(probe.recorder) == 2 == len(pool.calls)


async def test_open_loop_keeps_launching_while_nothing_completes() -> None:
    pool, clock = FakePool(), ManualClock()
    pool.gate = anyio.Event()
    probe = Probe(pool, Load(rate=200.0), random.Random(1), clock)
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run, 0.0975)
        await _wait(lambda: probe.launched == 1)
        clock.now = 0.5  # late: the scheduler catches up on every slot due before stop_at
        await _wait(lambda: probe.launched == 20)
        assert len(probe.recorder) == 0  # nothing completed, yet the load kept coming
        pool.gate.set()
    assert len(probe.recorder) == 20
    assert probe.max_in_flight == 20
    # recorded as calls complete; trio randomises the order of calls released together
    assert sorted(round(s, 6) for s in probe.recorder.starts) == [i * 0.005 for i in range(20)]
    info = probe.info()
    assert info["mode"] == "open"
    assert info["shed"] == 0
    assert info["clients"] is None


async def test_open_loop_cap_sheds_and_records_instead_of_closing_the_loop() -> None:
    pool, clock = FakePool(), ManualClock()
    pool.gate = anyio.Event()
    probe = Probe(pool, Load(rate=500.0), random.Random(1), clock, max_in_flight=5)
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run, 0.0999)
        await _wait(lambda: probe.launched == 1)
        clock.now = 1.0
        await _wait(lambda: probe.shed + probe.launched == 50)
        pool.gate.set()
    info = probe.info()
    assert info["launched"] == info["completed"] == 5
    assert info["shed"] == 45
    assert info["in_flight_cap"] == 5
    assert info["max_in_flight"] == 5


async def test_open_loop_latency_is_measured_from_the_scheduled_time() -> None:
    probe = Probe(FakePool(), Load(rate=1000.0), random.Random(1), RealClock())
    await probe.run(0.05)
    starts = sorted(probe.recorder.starts)  # completion order: trio may reorder ties
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(starts)}
    assert gaps == {0.001}


def test_mix_must_not_be_empty_or_weightless() -> None:
    with pytest.raises(ValueError, match="empty"):
        Probe(FakePool(), Load(mix=()), random.Random(1), StepClock())
    with pytest.raises(ValueError, match="weights"):
        Probe(FakePool(), Load(mix=(Mix("a", 0),)), random.Random(1), StepClock())


async def _wait(predicate: Any) -> None:
    from chaospool.testing import wait_for

    await wait_for(predicate, timeout=5.0, interval=0.001)


async def test_clients_think_between_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)
        await anyio.lowlevel.checkpoint()

    monkeypatch.setattr(anyio, "sleep", fake_sleep)
    probe, _ = await run_probe(Load(clients=2, think=0.25), stop_at=0.05)
    assert len(slept) == len(probe.recorder) > 0
    assert set(slept) == {0.25}


async def test_the_dsl_load_model_drives_the_probe() -> None:
    model = pytest.importorskip("chaospool._dsl.model")
    load = model.LoadSpec(clients=2, rate=None, think=0.0, sessions=4, retries=1,
                          mix=(model.MixEntry("echo", 3.0, {"n": 1}),
                               model.MixEntry("ping", 1.0, None)))
    pool = FakePool()
    probe = Probe(pool, load, random.Random(2), StepClock())
    await probe.run(0.1)
    assert kinds(probe.recorder) == {"ok": len(probe.recorder)}
    assert {c.command for c in pool.calls} == {"echo", "ping"}
