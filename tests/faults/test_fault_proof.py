"""Every fault proves it took effect (docs/faults.md): ``effect.took_effect`` and
``effect.took_effect_reason`` from what was seen outside the worker; a step whose fault did not
take effect fails the run with that reason, and a fault that records nothing is not checked."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest
from fault_fakes import FakePool, context

from chaospool._dsl.model import FaultStep, Target
from chaospool._engine.faults import Injection, run_injection
from chaospool._engine.schedule import ScheduledStep
from chaospool._faults import (
    MemoryLeak,
    NetworkPartition,
    PortCrash,
    ResourceExhaustion,
    SlowWorker,
)
from chaospool._faults import port_crash as port_crash_module
from chaospool.fault import Fault, FaultContext
from chaospool.pool import Pool

DEMO = "chaospool.workers.demo"


# --- unit: each built-in's proof, on the fake pool -------------------------------------------


@pytest.mark.unit
@pytest.mark.anyio
async def test_slow_worker_whose_served_replies_were_not_delayed_did_not_take_effect() -> None:
    for delayed, proved in [(0, False), (3, True)]:
        pool = FakePool(size=2)
        victim = pool.workers[0]
        victim.replies = {"unslow": {"delayed": delayed}}
        ctx = context(SlowWorker, pool, [victim], latency=0.2)
        await SlowWorker().inject(ctx)
        pool.emit("checkout", victim)
        pool.emit("checkin", victim)
        await SlowWorker().revert(ctx)
        assert ctx.effect["took_effect"] is proved, ctx.effect
        assert ctx.effect["requests_on_slowed"] == 1


@pytest.mark.unit
@pytest.mark.anyio
async def test_a_partition_that_met_no_frame_did_not_take_effect() -> None:
    pool = FakePool(size=1)
    ctx = context(NetworkPartition, pool)
    await NetworkPartition().inject(ctx)
    pool.workers[0].partitions[0].counts = dict.fromkeys(("dropped", "held"), 0)
    await NetworkPartition().revert(ctx)
    assert ctx.effect["took_effect"] is False
    assert "no frame was dropped or held on slot 0" in ctx.effect["took_effect_reason"]


@pytest.mark.unit
@pytest.mark.anyio
async def test_a_leak_whose_rss_stayed_flat_did_not_take_effect() -> None:
    pool = FakePool(size=1)
    victim = pool.workers[0]
    ctx = context(MemoryLeak, pool, [victim], limit=10_000_000)
    await MemoryLeak().inject(ctx)
    victim.rss_value -= 10_000_000  # the fake grew it on ``leak``: take that back
    await MemoryLeak().revert(ctx)
    assert ctx.effect["took_effect"] is False
    assert "RSS did not grow on slot 0" in ctx.effect["took_effect_reason"]


@pytest.mark.unit
@pytest.mark.anyio
async def test_port_crash_with_a_signal_the_worker_survives_is_not_proved() -> None:
    pool = FakePool(size=2)
    ctx = context(PortCrash, pool, [pool.workers[0]], signal="SIGCONT")
    await PortCrash().inject(ctx)
    ok, reason = port_crash_module._proof(ctx, ctx.state["log"])
    assert (ok, reason) == (False, f"still running after the fault: slot 0 "
                                   f"(pid {pool.workers[0].pid})")
    killed = context(PortCrash, pool, [pool.workers[1]])
    await PortCrash().inject(killed)
    await PortCrash().revert(killed)
    assert killed.effect["took_effect"] is True


# --- unit: the engine fails a step whose fault did not take effect ---------------------------


class _Claims(Fault):
    name: ClassVar[str] = "claims"
    pool_level: ClassVar[bool] = True

    @dataclass
    class Params:
        took: bool | None = None

    async def inject(self, ctx: FaultContext) -> None:
        if ctx.params.took is not None:
            ctx.took_effect(ctx.params.took, "as the test says")


class _Hooks:
    def before_fault(self, *args: Any) -> None:
        pass

    def after_fault(self, *args: Any) -> None:
        pass


@pytest.mark.unit
@pytest.mark.anyio
async def test_the_engine_fails_a_step_whose_fault_did_not_take_effect() -> None:
    errors = {}
    for took in (True, False, None):
        step = FaultStep(fault="claims", name="c", at=0.0, duration=None, repeat=1, every=0.0,
                         target=Target(kind="default"), params=_Claims.Params(took), index=0)
        inj = Injection(ScheduledStep(0.0, "c", step, 0, None, 0), _Claims(), seed=1)
        with anyio.fail_after(5):
            await run_injection(inj, FakePool(size=1), lambda: 0.0, _Hooks())  # type: ignore[arg-type]
        errors[took] = inj.error
    # absent (None): a plugin fault that proves nothing is not checked
    assert errors == {True: None, None: None,
                      False: "did not take effect: as the test says"}


class _NeverEnds(_Claims):
    async def inject(self, ctx: FaultContext) -> None:
        ctx.took_effect(False, "nothing seen yet")
        await anyio.sleep_forever()


@pytest.mark.unit
@pytest.mark.anyio
async def test_a_fault_cut_short_by_the_end_of_the_run_is_not_checked() -> None:
    step = FaultStep(fault="claims", name="c", at=0.0, duration=None, repeat=1, every=0.0,
                     target=Target(kind="default"), params=_Claims.Params(), index=0)
    inj = Injection(ScheduledStep(0.0, "c", step, 0, None, 0), _NeverEnds(), seed=1)
    with anyio.move_on_after(0.05):  # the run's end cancels the step mid-inject
        await run_injection(inj, FakePool(size=1), lambda: 0.0, _Hooks())  # type: ignore[arg-type]
    assert inj.error is None
    assert inj.ctx is not None
    assert "took_effect" not in inj.ctx.effect
    assert inj.reverted_at is not None


@pytest.mark.unit
def test_capacity_declares_the_worker_command_it_needs() -> None:
    params = ResourceExhaustion.Params
    assert ResourceExhaustion.required_commands(params(resource="capacity")) == ("sleep",)
    assert ResourceExhaustion.required_commands(params(resource="cpu")) == ()
    assert Fault.required_commands(None) == ()


# --- integration / system: real workers --------------------------------------------------------


@pytest.mark.integration
@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_an_idle_partition_is_proved_by_one_probe_frame() -> None:
    async with Pool(worker=DEMO, size=1, health_check={"interval": 0}) as pool:
        for direction in ("to_worker", "from_worker"):
            ctx = FaultContext(params=NetworkPartition.Params(duration=1.0, direction=direction),
                               targets=[pool.workers[0]], pool=pool, rng=random.Random(1))
            await NetworkPartition().inject(ctx)
            await NetworkPartition().revert(ctx)  # no call crossed it meanwhile
            assert ctx.effect["took_effect"] is True, ctx.effect
            assert ctx.effect["totals"]["dropped"] == 1
            assert await pool.execute("ping") == "pong"


def _capacity_run(tmp_path: Path, worker_source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "cap_worker.py").write_text(worker_source, encoding="utf-8")
    (tmp_path / "cap.yaml").write_text(
        "version: 1\nduration: 600ms\npool: {worker: cap_worker, size: 1}\n"
        "load: {clients: 1, mix: [{command: hello, weight: 1}]}\n"
        "method:\n  - {fault: resource_exhaustion, resource: capacity, at: 0s,"
        " duration: 300ms}\n", encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "chaospool.cli", "run", "cap.yaml", "-q",
                           "--journal", "j.json"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=50, check=False)


_HELLO = ("from chaospool.worker import command\n\n"
          "@command\ndef hello(args, ctx):\n    return 'hi'\n")


@pytest.mark.system
@pytest.mark.timeout(60)
def test_capacity_on_a_worker_without_sleep_is_refused_before_the_run(tmp_path: Path) -> None:
    """0.1.0: exit 0, "completed", with nothing held. The fault declares that it calls
    ``sleep`` (``required_commands``), so validation refuses it, located, nothing started."""
    out = _capacity_run(tmp_path, _HELLO)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "cap.yaml:6:" in out.stderr
    assert "unknown command 'sleep'" in out.stderr
    assert not (tmp_path / "j.json").exists()


@pytest.mark.system
@pytest.mark.timeout(60)
def test_capacity_whose_sleep_holds_nothing_fails_the_run(tmp_path: Path) -> None:
    """A ``sleep`` that fails at once passes validation but holds no slot: the fault's own
    proof (slot-seconds really held) fails the step, and the run (exit 3)."""
    broken = _HELLO + "\n@command\ndef sleep(args, ctx):\n    raise RuntimeError('no')\n"
    out = _capacity_run(tmp_path, broken)
    assert out.returncode == 3, out.stdout + out.stderr
    data = json.loads((tmp_path / "j.json").read_text(encoding="utf-8"))
    fault = data["faults"][0]
    assert data["status"] == "failed"
    assert fault["effect"]["took_effect"] is False
    assert fault["error"].startswith("did not take effect: sleep calls held 0")
    assert "command_error" in fault["error"]


@pytest.mark.unit
@pytest.mark.anyio
async def test_slow_worker_memory_does_not_grow_with_the_events_of_its_step() -> None:
    """0.1.0 kept every checkout/checkin event for the step's whole duration."""
    import tracemalloc

    pool = FakePool(size=2)
    slowed, other = pool.workers
    slowed.replies = {"unslow": {"delayed": 1}}
    ctx = context(SlowWorker, pool, [slowed], latency=0.2)
    await SlowWorker().inject(ctx)
    tracemalloc.start()
    try:
        for round_ in range(2):
            before = tracemalloc.get_traced_memory()[0]
            for i in range(4_000):
                handle = slowed if i % 2 else other
                pool.emit("checkout", handle, at=float(i))
                pool.emit("checkin", handle, at=i + (0.25 if handle is slowed else 0.05))
            grown = tracemalloc.get_traced_memory()[0] - before
            assert grown < 64_000, f"round {round_}: {grown} bytes kept for 8k events"
    finally:
        tracemalloc.stop()
    await SlowWorker().revert(ctx)
    assert ctx.effect["requests_on_slowed"] == 4_000
    assert ctx.effect["added_latency"] == pytest.approx(0.2)


@pytest.mark.unit
def test_a_fault_event_log_counts_rather_than_keeps_every_event() -> None:
    from chaospool._faults._common import EventLog

    pool = FakePool(size=2)
    a, b = pool.workers
    log = EventLog(pool, ("timeout", "crash"))  # type: ignore[arg-type]
    for i in range(3000):
        pool.emit("timeout", a if i % 3 else b, at=float(i))
    pool.emit("checkout", a)  # a kind it does not follow
    pool.emit("crash", b, exitcode=-9)
    log.close()
    pool.emit("timeout", a)  # after close: not seen
    assert (log.count("timeout"), log.count("timeout", [b.pid]), log.count("checkout")) == (
        3000, 1000, 0)
    assert [e.time for e in log.of("timeout", pid=a.pid)] == [1.0]  # the first one, kept
    assert log.of("crash", index=1)[0].data == {"exitcode": -9}
    assert len(log._first) == 3  # (kind, pid) pairs, not events
