"""Every operation ends ok, fail or info (docs/reports.md, "Outcomes")."""

from __future__ import annotations

import random
from typing import Any

import pytest
from probe_fakes import REPLY, Call, FakePool, Load, Mix, StepClock

from chaospool._probe import OUTCOME_KINDS, Probe, Recorder, summarize
from chaospool.errors import (
    CheckoutTimeout,
    CircuitOpen,
    CommandError,
    PoolClosed,
    ProtocolError,
    QueueFull,
    RequestTimeout,
    WorkerCrashed,
    WorkerStartError,
)

pytestmark = [pytest.mark.unit, pytest.mark.anyio, pytest.mark.timeout(20)]

CASES: list[tuple[Any, str, str]] = [
    (QueueFull("full"), "queue_full", "fail"),
    (CheckoutTimeout("no worker"), "checkout_timeout", "fail"),
    (CircuitOpen("open"), "circuit_open", "fail"),
    (PoolClosed("closed"), "pool_closed", "fail"),
    (CommandError("ValueError", "boom"), "command_error", "fail"),
    (WorkerStartError("never started"), "worker_crashed", "fail"),
    (RequestTimeout("too slow"), "request_timeout", "info"),
    (WorkerCrashed("died"), "worker_crashed", "info"),
    (ProtocolError("bad frame"), "worker_crashed", "info"),
    ({"token": "someone else's"}, "wrong_reply", "info"),
]


async def one_operation(reply: Any, *, retries: int = 0) -> Recorder:
    pool = FakePool(lambda call: reply)
    load = Load(clients=1, retries=retries, mix=(Mix("echo", 1, {"x": 1}),))
    probe = Probe(pool, load, random.Random(1), StepClock(1.0))
    await probe.run(0.5)  # StepClock(1.0): exactly one operation starts
    assert isinstance(probe.recorder, Recorder)
    return probe.recorder


@pytest.mark.parametrize(("reply", "kind", "outcome"), CASES,
                         ids=[c[1] + "-" + type(c[0]).__name__ for c in CASES])
async def test_each_error_kind_has_its_outcome(reply: Any, kind: str, outcome: str) -> None:
    rec = await one_operation(reply)
    [op] = list(rec)
    assert (op.kind, op.outcome) == (kind, outcome)
    assert op.kind in OUTCOME_KINDS


async def test_a_retry_after_an_info_attempt_is_ok_recovered_and_maybe_duplicated() -> None:
    def behaviour(call: Call) -> Any:
        return WorkerCrashed("died") if call.number == 0 else REPLY

    pool = FakePool(behaviour)
    load = Load(clients=1, retries=2, mix=(Mix("echo", 1, {"x": 1}),))
    probe = Probe(pool, load, random.Random(1), StepClock(1.0))
    await probe.run(0.5)
    [op] = list(probe.recorder)
    assert (op.outcome, op.attempts, op.recovered, op.maybe_duplicated) == ("ok", 2, True, True)
    s = summarize(probe.recorder, end=3.0)
    assert s["metrics"]["maybe_duplicated"] == 1
    assert s["metrics"]["recovered"] == 1
    assert s["metrics"]["outcomes"] == {"ok": 1, "fail": 0, "info": 0}


async def test_a_retry_after_a_start_failure_is_not_maybe_duplicated() -> None:
    def behaviour(call: Call) -> Any:
        return WorkerStartError("never started") if call.number == 0 else REPLY

    pool = FakePool(behaviour)
    load = Load(clients=1, retries=2, mix=(Mix("echo", 1, {"x": 1}),))
    probe = Probe(pool, load, random.Random(1), StepClock(1.0))
    await probe.run(0.5)
    [op] = list(probe.recorder)
    assert (op.outcome, op.recovered, op.maybe_duplicated) == ("ok", True, False)


def random_rows(seed: int) -> Recorder:
    rng = random.Random(seed)
    rec = Recorder()
    for _ in range(2000):
        start = rng.uniform(0, 10)
        kind = rng.choice(OUTCOME_KINDS)
        outcome = rng.choice(("fail", "info")) if kind != "ok" else "ok"
        rec.record(start, start + rng.expovariate(20), kind, rng.choice((1, 2)), outcome=outcome,
                   maybe_duplicated=rng.random() < 0.3)
    return rec


@pytest.mark.parametrize("seed", range(8))
def test_ok_fail_info_add_up_to_the_total_everywhere(seed: int) -> None:
    s = summarize(random_rows(seed), end=10.0, bucket=0.5, faults=[("f", 3.0, 6.5)])
    assert_identity(s)


def assert_identity(s: dict[str, Any]) -> None:
    """ok + fail + info = total overall, per phase, per bucket (and ok = succeeded)."""
    for block in (s["metrics"], *s["phases"].values()):
        outcomes = block["outcomes"]
        assert outcomes["ok"] + outcomes["fail"] + outcomes["info"] == block["total"]
        assert outcomes["ok"] == block["succeeded"]
        assert block["indeterminate"] == outcomes["info"]
    for bucket in s["timeline"]:
        assert bucket["ok"] + bucket["fail"] + bucket["info"] == (
            bucket["succeeded"] + bucket["errors"])
    for key in ("ok", "fail", "info"):
        assert sum(b[key] for b in s["timeline"]) == s["metrics"]["outcomes"][key]
        assert sum(p["outcomes"][key] for p in s["phases"].values()) == (
            s["metrics"]["outcomes"][key])
