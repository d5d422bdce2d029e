"""The consistency checker (docs/reports.md, "Consistency"): per-session counters checked the
way Jepsen checks a counter -- and a pool with a session-cache bug is caught."""

from __future__ import annotations

import contextlib
import copy
import random
import signal
from types import SimpleNamespace
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from probe_fakes import Load, Mix, RealClock, StepClock

from chaospool._probe import Aggregator, Checker, Probe, summarize
from chaospool._probe.consistency import INCR, READ
from chaospool._worker.builtins import COMMANDS as BUILTINS

OK, FAIL, INFO = 0, 1, 2


def ops(checker: Checker, *steps: tuple[str, int, int | None]) -> None:
    """Run ``(f, outcome, counter)`` operations one after another on session 0."""
    for t, (f, outcome, counter) in enumerate(steps):
        value = None if counter is None else (counter, 100 + t)
        checker.busy[0] = 1
        checker.complete(0, f, float(t), t + 0.5, outcome, 1, value)


@pytest.mark.unit
def test_a_read_missing_an_acknowledged_increment_is_a_lost_update() -> None:
    checker = Checker(1)
    ops(checker, (INCR, OK, 1), (INCR, OK, 2), (READ, OK, 1))
    assert (checker.lost_updates, checker.stale_reads) == (1, 1)
    [lost, stale] = checker.findings
    assert lost["kind"] == "lost_update"
    assert lost["observed"] == 1
    # the operations involved: the last acknowledged increment and the read, with pids
    assert [o["f"] for o in lost["operations"]] == [INCR, READ]
    assert lost["operations"][0]["pid"] == 101
    assert lost["operations"][1]["invoke"] == 2.0
    assert stale["kind"] == "stale_read"


@pytest.mark.unit
def test_a_read_going_backwards_is_a_stale_read() -> None:
    checker = Checker(1)
    # the second increment is indeterminate: a read may see it (2) -- and then never lose it
    ops(checker, (INCR, OK, 1), (INCR, INFO, None), (READ, OK, 2), (READ, OK, 1))
    assert (checker.lost_updates, checker.stale_reads, checker.overcounts) == (0, 1, 0)


@pytest.mark.unit
def test_info_increments_widen_the_bounds_and_nothing_more() -> None:
    checker = Checker(1)
    ops(checker, (INCR, OK, 1), (INCR, INFO, None), (INCR, FAIL, None), (READ, OK, 2))
    assert (checker.lost_updates, checker.stale_reads, checker.overcounts) == (0, 0, 0)
    ops(checker, (READ, OK, 3))  # the failed increment cannot have applied
    assert checker.overcounts == 1
    assert checker.to_dict()["increments_acknowledged"] == 1
    assert checker.to_dict()["increments_indeterminate"] == 1


@pytest.mark.unit
def test_findings_are_bounded_and_memory_is_per_session() -> None:
    checker = Checker(3)
    for i in range(100):
        ops(checker, (INCR, OK, 1 + i), (READ, OK, 0))
    assert checker.lost_updates == 100
    assert len(checker.findings) == 10
    assert all(len(getattr(checker, a)) == 3 for a in ("low", "high", "seen", "last_ack"))


class SessionCachePool:
    """Workers that keep the session states they served, and a pool that owns the truth.

    ``buggy``: a worker serves its cached copy even when another worker changed the session
    since (the class of bug docs/design.md's session cache guards against) -- and the reply
    writes that older state back. Calls may also be abandoned mid-way (``abandon`` share):
    the caller gets a RequestTimeout while the worker's change is kept or not at random.
    """

    def __init__(self, rng: random.Random, *, workers: int = 3, buggy: bool = False) -> None:
        self.rng = rng
        self.truth: dict[str, dict[str, Any]] = {}
        self.caches: list[dict[str, dict[str, Any]]] = [{} for _ in range(workers)]
        self.buggy = buggy

    async def execute(self, command: str, args: Any = None, *, session: str | None = None,
                      timeout: float | None = None,  # noqa: ASYNC109  reason: Pool's signature
                      retries: int = 0) -> Any:
        await anyio.lowlevel.checkpoint()
        if command not in BUILTINS or session is None:
            return args if command == "echo" else "pong"
        worker = self.rng.randrange(len(self.caches))
        cache = self.caches[worker]
        if self.buggy and session in cache:
            state = copy.deepcopy(cache[session])
        else:
            state = copy.deepcopy(self.truth.get(session, {}))
        result = BUILTINS[command](args, SimpleNamespace(session=state))
        self.truth[session] = state
        cache[session] = copy.deepcopy(state)
        return result


async def checked_run(pool: Any, seconds: float = 3.0) -> Probe:
    load = Load(clients=6, sessions=4, consistency=True, mix=(Mix("ping"),))
    probe = Probe(pool, load, random.Random(3), StepClock(0.0005), recorder=Aggregator(0.1))
    await probe.run(seconds)
    return probe


@pytest.mark.unit
@pytest.mark.anyio
@pytest.mark.timeout(20)
async def test_a_pool_serving_a_stale_session_copy_is_caught() -> None:
    probe = await checked_run(SessionCachePool(random.Random(1), buggy=True))
    assert probe.checker is not None
    found = probe.checker.to_dict()
    assert found["increments_acknowledged"] > 50
    assert found["lost_updates"] > 0
    assert found["findings"], found
    first = found["findings"][0]
    assert first["operations"]
    assert all("pid" in o for o in first["operations"])
    s = summarize(probe.recorder, end=3.0, consistency=found)
    assert s["metrics"]["lost_updates"] == found["lost_updates"] > 0


@pytest.mark.unit
@pytest.mark.anyio
@pytest.mark.timeout(20)
async def test_the_same_pool_without_the_bug_passes() -> None:
    probe = await checked_run(SessionCachePool(random.Random(1), buggy=False))
    assert probe.checker is not None
    found = probe.checker.to_dict()
    assert found["increments_acknowledged"] > 50
    assert found["reads"] > 50
    assert (found["lost_updates"], found["stale_reads"], found["overcounts"]) == (0, 0, 0)


async def storm_run(pool: Any, seed: int) -> tuple[Probe, int]:
    """The probe with its checker on, on ``pool``, while 2 of its 4 workers are SIGKILLed
    every 25 ms, 30 times (the crash storm of /work/shared/POOL_NOTES); sessions move between
    workers all the time -- their worker died, or was busy with a 5 ms call."""
    load = Load(clients=8, sessions=6, retries=2, consistency=True,
                mix=(Mix("sleep", 1, {"duration": 0.005}),))
    probe = Probe(pool, load, random.Random(seed), RealClock(), recorder=Aggregator(0.1))
    rng = random.Random(seed)

    async def storm() -> None:
        for _ in range(30):
            serving = [h for h in pool.workers if h.pid and h.state in ("ready", "busy")]
            for handle in rng.sample(serving, k=min(2, len(serving))):
                with contextlib.suppress(ProcessLookupError):  # died in the meantime
                    handle.signal(signal.SIGKILL)
            await anyio.sleep(0.025)  # pacing the kills, not waiting for anything

    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run, 2.0)
        tg.start_soon(storm)
    return probe, pool.stats().restarts


@pytest.mark.chaos
@pytest.mark.anyio
@pytest.mark.timeout(60)
async def test_the_real_pool_keeps_session_counters_through_a_crash_storm() -> None:
    from chaospool.pool import Pool

    async with Pool("chaospool.workers.demo", size=4, request_timeout=2.0,
                    restart={"max_restarts": 1000, "within": 10.0}) as pool:
        probe, restarts = await storm_run(pool, seed=7)
    assert probe.checker is not None
    found = probe.checker.to_dict()
    assert restarts > 10
    assert found["increments_acknowledged"] > 20
    assert found["reads"] > 20
    assert (found["lost_updates"], found["stale_reads"], found["overcounts"]) == (0, 0, 0), found


@pytest.mark.chaos
@pytest.mark.anyio
@pytest.mark.timeout(60)
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the bug is the runtime's, not a loop's
@pytest.mark.parametrize(("backend", "runtime"),
                         [("memory", "planted"), ("process", "planted"), ("memory", "real")])
async def test_a_worker_runtime_serving_stale_sessions_is_caught_and_the_real_one_passes(
        backend: str, runtime: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13's planted bug, in the worker runtime under the real pool: a session cache that
    trusts any copy it holds (``probe_stale_worker.StaleSessionCache``, the 0.1.0 kind of bug)
    makes the checker report lost updates or stale reads, with the operations and the real
    worker pids involved; the unmodified runtime passes the same crash storm with none (on the
    process backend: the test above, on every loop)."""
    from probe_stale_cache import StaleSessionCache  # no side effect: planted below

    from chaospool._worker import runtime as worker_runtime
    from chaospool.pool import Pool

    worker = "chaospool.workers.demo"
    if runtime == "planted" and backend == "memory":
        monkeypatch.setattr(worker_runtime, "SessionCache", StaleSessionCache)
    elif runtime == "planted":
        worker = "probe_stale_worker"  # imported by the zygote only: its workers carry it
    async with Pool(worker, size=4, backend=backend, request_timeout=2.0,
                    restart={"max_restarts": 1000, "within": 10.0}) as pool:
        probe, restarts = await storm_run(pool, seed=7)
    assert probe.checker is not None
    found = probe.checker.to_dict()
    assert restarts > 10
    assert found["increments_acknowledged"] > 20
    assert found["reads"] > 20
    if runtime == "real":
        assert (found["lost_updates"], found["stale_reads"], found["overcounts"]) == (0, 0, 0), (
            found)
        return
    assert found["lost_updates"] + found["stale_reads"] > 0, found
    first = found["findings"][0]
    assert first["kind"] in ("lost_update", "stale_read")
    assert first["operations"], first
    assert all(isinstance(op["pid"], int) for op in first["operations"])  # who served it
    s = summarize(probe.recorder, end=2.0, consistency=found)
    assert s["metrics"]["lost_updates"] == found["lost_updates"]
    assert s["metrics"]["stale_reads"] == found["stale_reads"]
