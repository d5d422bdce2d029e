"""Overlapping faults on one worker compose (docs/faults.md, "Overlapping faults on one
worker"): every worker-side effect is kept per step token, each undo ends only its own step's
effect, and a blocked worker still answers control operations."""

from __future__ import annotations

import random
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaospool._faults import MemoryLeak, SlowWorker, Timeout
from chaospool._worker import controls
from chaospool._worker.runtime import ControlRuntime
from chaospool.fault import FaultContext
from chaospool.pool import Pool

DEMO = "chaospool.workers.demo"
MB = 1_000_000


class Levers(ControlRuntime):
    """A runtime whose delay can be read back (the levers are write-only on the real one)."""

    def __init__(self) -> None:
        super().__init__(lambda frame: None, worker_index=0, pid=1)
        self.delay = (0.0, 0.0)

    def set_delay(self, latency: float, jitter: float = 0.0) -> None:
        super().set_delay(latency, jitter)
        self.delay = (latency, jitter)


_ops = st.lists(
    st.tuples(st.sampled_from(["slow", "unslow", "block", "unblock"]),
              st.sampled_from("abcd"), st.sampled_from([0.0, 0.01, 0.2, 1.0])),
    max_size=40,
)


@pytest.mark.unit
@settings(max_examples=200, deadline=None)
@given(_ops)
def test_slow_and_block_steps_compose_whatever_the_interleaving(ops: list[Any]) -> None:
    """Model: the delay is the largest of the active steps'; blocked while any step blocks."""
    rt = Levers()
    slowed: dict[str, float] = {}
    blocking: set[str] = set()
    for op, token, latency in ops:
        args = {"token": token, "latency": latency}
        getattr(controls, op)(args, rt)  # block without duration: until its own unblock
        if op == "slow":
            slowed[token] = latency
        elif op == "unslow":
            slowed.pop(token, None)
        elif op == "block":
            blocking.add(token)
        else:
            blocking.discard(token)
        assert rt.delay[0] == max(slowed.values(), default=0.0)
        assert rt.blocked is bool(blocking)


@pytest.mark.unit
def test_a_blocking_step_whose_own_deadline_passed_no_longer_counts() -> None:
    rt = Levers()
    controls.block({"token": "short", "duration": 0.0}, rt)
    controls.block({"token": "long"}, rt)
    controls.unblock({"token": "long"}, rt)
    assert rt.blocked is False


@pytest.mark.unit
def test_each_unslow_counts_the_replies_delayed_while_its_own_step_was_active() -> None:
    rt = Levers()
    controls.slow({"token": "a", "latency": 0.0, "jitter": 0.0}, rt)
    rt.delayed_replies += 2  # as send_reply counts them
    controls.slow({"token": "b", "latency": 0.0}, rt)
    rt.delayed_replies += 3
    assert controls.unslow({"token": "a"}, rt)["delayed"] == 5
    rt.delayed_replies += 1
    assert controls.unslow({"token": "b"}, rt)["delayed"] == 4


@pytest.mark.unit
def test_leaks_cpu_and_fds_are_kept_per_step() -> None:
    rt = Levers()
    rng = random.Random(3)
    steps = {t: rng.randrange(1, 5) for t in "abc"}
    for token, amount in steps.items():
        controls.fds({"token": token, "amount": amount}, rt)
        controls.leak({"token": token, "rate": 1e9, "limit": amount * 4096}, rt)
        controls.cpu({"token": token, "threads": 1, "duration": 5}, rt)
    try:
        remaining = set(steps)
        for token in rng.sample(sorted(steps), len(steps)):
            assert controls.unfds({"token": token}, rt)["closed"] == steps[token]
            assert controls.uncpu({"token": token}, rt)["threads"] == 1
            assert 0 < controls.unleak({"token": token}, rt)["leaked"] <= steps[token] * 4096
            remaining.discard(token)
            for other in remaining:  # the other steps' effects are untouched
                assert f"chaospool-cpu{other}-0" in rt.thread_names()
                assert len(rt.state["tokens:fds"][other]) == steps[other]
    finally:
        for token in steps:
            controls.uncpu({"token": token}, rt)
            controls.unleak({"token": token}, rt)
            controls.unfds({"token": token}, rt)
    assert rt.thread_names() == []


# --- on a real pool --------------------------------------------------------------------------


def ctx_for(fault: Any, pool: Pool, duration: float, **params: Any) -> FaultContext:
    return FaultContext(params=fault.Params(**params), targets=[pool.workers[0]], pool=pool,
                        rng=random.Random(1), duration=duration)


@pytest.mark.integration
@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_two_slow_steps_on_one_worker_each_revert_only_their_own() -> None:
    async with Pool(worker=DEMO, size=1, health_check={"interval": 0}) as pool:
        outer = ctx_for(SlowWorker, pool, 5.0, latency=0.02)
        inner = ctx_for(SlowWorker, pool, 5.0, latency=0.01)
        await SlowWorker().inject(outer)
        await SlowWorker().inject(inner)
        await pool.execute("ping")
        await SlowWorker().revert(outer)  # the inner step is still on
        for _ in range(3):
            await pool.execute("ping")
        await SlowWorker().revert(inner)
        assert outer.effect["restored"][0]["delayed_replies"] == 1
        assert inner.effect["restored"][0]["delayed_replies"] == 4  # the outer's end kept it
        assert (outer.effect["took_effect"], inner.effect["took_effect"]) == (True, True)
        assert (await pool.workers[0].control("unslow"))["latency"] == 0.0


@pytest.mark.integration
@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_slow_inside_a_memory_leak_and_overlapping_leaks_compose() -> None:
    async with Pool(worker=DEMO, size=1, health_check={"interval": 0}) as pool:
        leak = ctx_for(MemoryLeak, pool, 5.0, rate=400 * MB, limit=40 * MB)
        other = ctx_for(MemoryLeak, pool, 5.0, rate=400 * MB, limit=20 * MB)
        slow = ctx_for(SlowWorker, pool, 5.0, latency=0.01)
        await MemoryLeak().inject(leak)
        await MemoryLeak().inject(other)
        await SlowWorker().inject(slow)
        await pool.execute("ping")
        await SlowWorker().revert(slow)
        await MemoryLeak().revert(other)
        assert other.effect["leaks"][0]["leaked"] <= 20 * MB
        threads = (await pool.workers[0].control("info"))["threads"]
        await MemoryLeak().revert(leak)  # its own leak was still running, untouched
        assert leak.effect["leaks"][0]["leaked"] >= 20 * MB
        assert (await pool.workers[0].control("info"))["threads"] <= threads
        assert all(c.effect["took_effect"] for c in (leak, other, slow))


@pytest.mark.integration
@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_a_blocked_worker_still_answers_other_faults_control_ops() -> None:
    async with Pool(worker=DEMO, size=1, health_check={"interval": 0},
                    request_timeout=20) as pool:
        block = ctx_for(Timeout, pool, 10.0, how="block")
        slow = ctx_for(SlowWorker, pool, 5.0, latency=0.01)
        await Timeout().inject(block)
        with anyio.fail_after(3):  # 0.1.0 held these replies until the block ended
            await SlowWorker().inject(slow)
            await SlowWorker().revert(slow)
        assert slow.effect["restored"][0]["restored"] is True
        await Timeout().revert(block)
        assert block.effect["took_effect"] is True
        assert await pool.execute("ping") == "pong"


# --- refused before anything runs: one partition per worker at a time --------------------------


def _load(tmp_path: Any, steps: list[str]) -> Any:
    from chaospool._dsl.loader import load
    from chaospool._faults import BUILTIN_FAULTS

    path = tmp_path / "e.yaml"
    path.write_text("version: 1\nduration: 5s\npool: {worker: chaospool.workers.demo, size: 3}\n"
                    "method:\n" + "".join(f"  - {s}\n" for s in steps), encoding="utf-8")
    return load(path, registry={cls.name: cls for cls in BUILTIN_FAULTS})


_CUT = "{fault: network_partition, name: %s, at: %s, duration: 1s, target: %s}"


@pytest.mark.unit
@pytest.mark.parametrize(("a", "b", "refused"), [
    (("0s", "{worker: 0}"), ("500ms", "{worker: 0}"), True),
    (("0s", "{worker: 0}"), ("500ms", "{count: 1}"), True),   # a drawn target may be worker 0
    (("0s", "{worker: 0}"), ("0s", "{workers: [1, 2]}"), False),
    (("0s", "{worker: 0}"), ("1s", "{worker: 0}"), False),    # one ends as the other starts
    (("0s", "all"), ("900ms", "{worker: 2}"), True),
])
def test_overlapping_partitions_on_one_worker_are_refused_naming_both_steps(
    tmp_path: Any, a: tuple[str, str], b: tuple[str, str], refused: bool
) -> None:
    from chaospool.errors import ExperimentError

    steps = [_CUT % ("cut-a", *a), _CUT % ("cut-b", *b)]
    if not refused:
        assert len(_load(tmp_path, steps).method) == 2
        return
    with pytest.raises(ExperimentError) as info:
        _load(tmp_path, steps)
    text = str(info.value)
    assert "e.yaml:6:5" in text  # located at the later step
    assert "'cut-a' (method[0]) and 'cut-b' (method[1])" in text
