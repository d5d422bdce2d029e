"""Session state has one truth, whatever happens to the calls before (docs/design.md, Pool,
"Sessions").

A seeded random mix drives many sessions on several workers: counter increments, reads,
unknown commands, handlers that change the state and then raise, calls abandoned by their
caller (cancelled, or left by the caller's own short timeout) and calls that time out; with
faults, a nemesis also kills workers, partitions them (replies held, then delivered late) and
makes them send a malformed frame. Every outcome is classified as Jepsen does: ``ok`` (the
caller got the value), ``fail`` (certainly no effect: ``CommandError``) or ``info`` (unknown:
the worker died, timed out, or the caller gave up). Then, per session:

* reads never go back: an operation returns at least the highest value any operation that
  completed before it started returned (an increment returns more);
* no acknowledged increment is lost: acknowledged increments return distinct values, all of
  them at most the final value, so the final value is at least their number;
* nothing else is counted: the final value is at most acknowledged + indeterminate increments
  (a raising handler, an unknown command or a discarded reply changed nothing);
* a disagreement between the pool's and a worker's copy heals: a read or an increment never
  fails with a ``CommandError``.

The seed is in the test id: ``pytest -k "consistency and 7"`` replays one mix.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import pool_test_workers
import pytest

from chaospool import Pool
from chaospool.errors import ChaospoolError, CommandError

pytestmark = pytest.mark.anyio

WORKER = "pool_test_workers"
# kind -> (command, args, timeout, whether it may change the session, expected to fail)
KINDS: dict[str, tuple[str, Any, float | None, bool, bool]] = {
    "incr": ("incr", None, None, True, False),
    "slow_incr": ("incr", {"delay": 0.003}, None, True, False),
    "read": ("read", None, None, False, False),
    "unknown": ("no_such_command", None, None, False, True),
    "raise": ("incr_then_raise", None, None, False, True),
    "timeout": ("incr", {"delay": 0.05}, 0.01, True, False),
    "abandon": ("incr", {"delay": 0.004}, None, True, False),
}
WEIGHTS = {"incr": 25, "slow_incr": 8, "read": 30, "unknown": 8, "raise": 8, "timeout": 4,
           "abandon": 12}


@dataclass
class Ledger:
    """One session's history, checked as it happens and at the end."""

    floor: int = 0  # the highest value a completed operation returned
    acked: list[int] = field(default_factory=list)  # values of acknowledged increments
    uncertain: int = 0  # increments whose outcome is unknown
    problems: list[str] = field(default_factory=list)

    def completed(self, kind: str, value: int, floor_at_start: int) -> None:
        changes = KINDS[kind][3]
        if value < floor_at_start or (changes and value == floor_at_start):
            self.problems.append(f"{kind} returned {value} after {floor_at_start} was seen")
        if changes:
            self.acked.append(value)
        self.floor = max(self.floor, value)

    def check_end(self, final: int) -> list[str]:
        problems = list(self.problems)
        if len(set(self.acked)) != len(self.acked):
            problems.append(f"two acknowledged increments returned the same value: "
                            f"{sorted(self.acked)}")
        if final < self.floor or final < len(self.acked):
            problems.append(f"final {final} < seen {self.floor} / acked {len(self.acked)}")
        if final > len(self.acked) + self.uncertain:
            problems.append(f"final {final} > acked {len(self.acked)} + unknown "
                            f"{self.uncertain}: a change that failed was kept")
        return problems


async def _operate(pool: Pool, rng: random.Random, session: str, ledger: Ledger) -> None:
    kind = rng.choices(list(WEIGHTS), list(WEIGHTS.values()))[0]
    command, args, timeout, changes, expect_fail = KINDS[kind]
    floor = ledger.floor
    give_up = rng.uniform(0.0, 0.008) if kind == "abandon" else None
    value: int | None = None
    try:
        with anyio.move_on_after(give_up) as scope:
            value = await pool.execute(command, args, session=session, timeout=timeout)
    except CommandError as exc:  # certainly no effect
        if not expect_fail:
            ledger.problems.append(f"{kind} failed: {exc}")
        return
    except ChaospoolError:  # the worker died or timed out holding it: unknown
        ledger.uncertain += changes
        return
    if scope.cancelled_caught or value is None:
        ledger.uncertain += changes  # the caller gave up: unknown
        return
    if expect_fail:
        ledger.problems.append(f"{kind} answered {value!r}")
        return
    ledger.completed(kind, value, floor)


async def _client(pool: Pool, rng: random.Random, session: str, ledger: Ledger,
                  ops: int) -> None:
    for _ in range(ops):
        await _operate(pool, rng, session, ledger)


async def _nemesis(pool: Pool, rng: random.Random, done: anyio.Event) -> None:
    """Kill, partition (hold, heal: replies arrive late) and corrupt random workers."""
    while not done.is_set():
        await anyio.sleep(rng.uniform(0.005, 0.03))
        live = [h for h in pool.workers if h.state in ("ready", "busy")]
        if not live:
            continue
        handle = rng.choice(live)
        action = rng.choice(("kill", "partition", "corrupt"))
        try:
            if action == "kill":
                handle.signal(signal.SIGKILL)
            elif action == "partition":
                part = handle.partition(rng.choice(("both", "from_worker")), "hold")
                await anyio.sleep(rng.uniform(0.005, 0.04))
                await part.heal()
            else:
                await handle.control("corrupt", {"mode": "garbage", "count": 1}, timeout=1.0)
        except (ProcessLookupError, RuntimeError, ChaospoolError):
            pass  # it died meanwhile, or is partitioned already


async def _final(pool: Pool, session: str) -> int:
    value = await pool.execute("read", session=session, retries=5)
    state = pool.session_state(session)
    assert (state or {}).get("n", 0) == value, (session, state, value)
    return int(value)


async def run_mix(backend: str, seed: int, *, faults: bool, sessions: int, clients: int,
                  ops: int, size: int = 3) -> None:
    ledgers = {f"s{i}": Ledger() for i in range(sessions)}
    async with Pool(WORKER, size=size, max_overflow=1, backend=backend, request_timeout=2.0,
                    checkout_timeout=10.0, health_check=False,
                    restart={"max_restarts": 100_000, "within": 1.0}) as pool:
        done = anyio.Event()
        async with anyio.create_task_group() as tg:
            if faults:
                tg.start_soon(_nemesis, pool, random.Random(f"{seed}:nemesis"), done)
            async with anyio.create_task_group() as load:
                for session, ledger in ledgers.items():
                    for c in range(clients):
                        crng = random.Random(f"{seed}:{session}:{c}")
                        load.start_soon(_client, pool, crng, session, ledger, ops)
            done.set()
        problems = {s: ledger.check_end(await _final(pool, s)) for s, ledger in ledgers.items()}
    bad = {s: p for s, p in problems.items() if p}
    assert not bad, f"seed {seed}: {bad}"
    assert any(ledger.acked for ledger in ledgers.values())  # the mix did run


@pytest.fixture(autouse=True)
def _release_hanging_handlers() -> Iterator[None]:
    pool_test_workers.RELEASE.clear()
    yield
    pool_test_workers.RELEASE.set()


@pytest.mark.unit
@pytest.mark.timeout(60)
@pytest.mark.parametrize("seed", range(12))
async def test_session_consistency_memory(seed: int) -> None:
    with anyio.fail_after(45):
        await run_mix("memory", seed, faults=seed % 2 == 1, sessions=6, clients=3, ops=25)


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.parametrize("seed", range(2))
async def test_session_consistency_processes(seed: int) -> None:
    with anyio.fail_after(45):
        await run_mix("process", seed, faults=False, sessions=5, clients=3, ops=20)


@pytest.mark.chaos
@pytest.mark.timeout(60)
@pytest.mark.parametrize("seed", range(2))
async def test_session_consistency_processes_under_faults(seed: int) -> None:
    with anyio.fail_after(45):
        await run_mix("process", seed, faults=True, sessions=5, clients=3, ops=20)
