"""A worker is replaced at its death, not at its reap (docs/design.md, "Replacing at death").

The slot serves again as soon as the worker has certainly exited -- its pidfd, from the
zygote, is readable and its exit status is read from the zombie -- while the zygote reaps it.
Never earlier: a worker that only lost its channel, or is stopped, is not dead. The events
keep their order (crash with the exit status -> restart -> start) and every process is still
reaped.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psutil
import pytest
from pool_procs import descendants, exited, gone

from chaospool.errors import WorkerCrashed
from chaospool.pool import Pool, PoolEvent
from chaospool.testing import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.anyio, pytest.mark.timeout(60)]

WORKER = "pool_test_workers"




class Watch:
    """Every event, and whether each restart and start came only after its predecessor's
    death -- checked at the moment the pool says it, not afterwards."""

    def __init__(self, pool: Pool) -> None:
        self.events: list[PoolEvent] = []
        self.early: list[str] = []
        self.serving: dict[int, int | None] = {w.index: w.pid for w in pool.workers}
        # each worker seen serving, by pid: whether *it* lives, even once its pid is reused
        self.procs = {pid: psutil.Process(pid) for pid in self.serving.values() if pid}
        pool.subscribe(self.on_event)

    def lives(self, pid: int) -> bool:
        proc = self.procs.get(pid)
        return not (gone(pid) if proc is None else exited(proc))

    def on_event(self, event: PoolEvent) -> None:
        self.events.append(event)
        if event.kind == "restart" and "replaces" in event.data:
            if self.lives(event.data["replaces"]):
                self.early.append(f"restart while pid {event.data['replaces']} lives")
        elif event.kind == "start":
            old = self.serving.get(event.index)
            if old is not None and old != event.pid and self.lives(old):
                self.early.append(f"slot {event.index} started while pid {old} lives")
            self.serving[event.index] = event.pid
            if event.pid is not None:
                with contextlib.suppress(psutil.NoSuchProcess):  # killed the moment it started
                    self.procs[event.pid] = psutil.Process(event.pid)

    def of(self, pid: int | None) -> list[str]:
        """The kinds of the events about ``pid`` and about its replacement, in order."""
        kinds = []
        for e in self.events:
            if e.pid == pid and e.kind == "crash":
                kinds.append("crash")
            elif e.kind == "restart" and e.data.get("replaces") == pid:
                kinds.append("restart")
        return kinds


@asynccontextmanager
async def proc_pool(**kw: Any) -> AsyncIterator[Pool]:
    kw.setdefault("health_check", False)
    async with Pool(WORKER, **kw) as pool:
        yield pool


@contextmanager
def zygote_stopped(pool: Pool) -> Iterator[int]:
    """The fork server SIGSTOPped: it can neither reap nor report an exit until resumed."""
    zygote: int = pool._backend._proc.pid  # type: ignore[attr-defined]
    os.kill(zygote, signal.SIGSTOP)
    try:
        yield zygote
    finally:
        os.kill(zygote, signal.SIGCONT)


async def spare_ready(pool: Pool) -> None:
    await wait_for(lambda: pool._backend._spare is not None)  # type: ignore[attr-defined]


async def test_the_slot_serves_again_before_the_zygote_reaps_the_dead_worker() -> None:
    # before 0.2's change the replacement waited for the zygote's exit report: with the
    # zygote stopped, the slot never served again
    async with proc_pool(size=1) as pool:
        watch = Watch(pool)
        await spare_ready(pool)
        victim = pool.workers[0]
        with zygote_stopped(pool):
            victim.signal(signal.SIGKILL)
            new = await pool.wait_serving(0, not_pid=victim.pid, timeout=10)
            assert await pool.execute("pid") == new.pid
            # dead and accounted (crash with its signal, restart), but not reaped yet: a
            # zombie, or (exit bells) every thread of it still in its exit
            assert psutil.pid_exists(victim.pid)
            assert gone(victim.pid)
            crash = next(e for e in watch.events if e.kind == "crash")
            assert (crash.pid, crash.data["signal"], crash.data["exitcode"]) == (
                victim.pid, signal.SIGKILL, None)
            assert pool.stats().crashes == pool.stats().restarts == 1
        await wait_for(lambda: not psutil.pid_exists(victim.pid))  # reaped once resumed
        assert watch.of(victim.pid) == ["crash", "restart"]
        kinds = [e.kind for e in watch.events if e.kind in ("crash", "restart", "start")]
        assert kinds == ["crash", "restart", "start"]
        assert watch.early == []


async def test_an_exit_code_is_read_from_the_zombie() -> None:
    async with proc_pool(size=1) as pool:
        watch = Watch(pool)
        await spare_ready(pool)
        with zygote_stopped(pool):
            with pytest.raises(WorkerCrashed) as info:
                await pool.execute("exit_now", {"code": 42})
            assert info.value.exitcode == 42  # the failed call knows it before the reap
            await pool.wait_serving(0, not_pid=info.value.pid, timeout=10)
        crash = next(e for e in watch.events if e.kind == "crash")
        assert (crash.data["exitcode"], crash.data["signal"]) == (42, None)
        await wait_for(lambda: not psutil.pid_exists(info.value.pid))


async def test_a_stopped_worker_that_lost_its_channel_is_replaced_only_once_dead() -> None:
    # its channel is closed (EOF for the pool), yet it lives: it is killed after the grace
    # period, and only then replaced
    async with proc_pool(size=1) as pool:
        watch = Watch(pool)
        victim = pool.workers[0]
        victim.signal(signal.SIGSTOP)
        victim.close_channel()
        new = await pool.wait_serving(0, not_pid=victim.pid, timeout=15)
        assert new.pid != victim.pid
        assert gone(victim.pid)
        assert watch.early == []
        assert watch.of(victim.pid) == ["crash", "restart"]


async def test_closing_right_after_a_death_reaps_everything() -> None:
    before = descendants()
    async with proc_pool(size=2) as pool:
        await spare_ready(pool)
        victim = pool.workers[0]
        victim.signal(signal.SIGKILL)
        await pool.wait_serving(0, not_pid=victim.pid)
    assert not psutil.pid_exists(victim.pid)  # reaped, not a zombie
    assert descendants() == before


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_deaths_of_every_kind_in_a_random_mix(seed: int) -> None:
    """Kills, exit codes and kills mid-call, in a seeded random order, some back to back:
    each restart and start comes after its predecessor's death, each crash carries the
    status of the death, every slot serves again and nothing is left behind."""
    rng = random.Random(seed)
    before = descendants()
    restart = {"max_restarts": 100, "within": 60.0}
    async with proc_pool(size=2, restart=restart) as pool:
        watch = Watch(pool)
        expected: dict[int, tuple[int | None, int | None]] = {}  # pid -> (exitcode, signal)
        for _ in range(12):
            victim = pool.workers[rng.randrange(2)]
            if victim.state not in ("ready", "busy"):
                await pool.wait_serving(victim.index, timeout=10)
                continue
            action = rng.choice(["kill", "exit", "die"])
            if action == "kill":
                try:
                    victim.signal(signal.SIGKILL)
                except ProcessLookupError:
                    # killed by the last step and reaped already, its EOF not yet seen: the
                    # pool still calls it ready, and that first death is the one to see
                    assert victim.pid in expected
                else:
                    expected.setdefault(victim.pid, (None, signal.SIGKILL))  # type: ignore[arg-type]
            else:
                args = {"code": rng.randrange(1, 100)} if action == "exit" else {}
                with pytest.raises(WorkerCrashed) as info:
                    await pool.execute("exit_now" if action == "exit" else "die", args)
                # the call may have reached a worker just killed (its EOF not yet seen):
                # that one died of the first cause
                expected.setdefault(info.value.pid, (  # type: ignore[arg-type]
                    (args["code"], None) if action == "exit" else (None, signal.SIGKILL)))
            if rng.random() < 0.5:
                for index in range(2):
                    await pool.wait_serving(index, timeout=10)
        await wait_for(lambda: all(watch.of(pid) == ["crash", "restart"] for pid in expected),
                       timeout=10)  # the last kill's EOF may be on its way
        for index in range(2):
            await pool.wait_serving(index, not_pid=-1, timeout=10)
        crashes = {e.pid: (e.data["exitcode"], e.data["signal"])
                   for e in watch.events if e.kind == "crash"}
        assert crashes == expected
        assert watch.early == []
        for pid in expected:
            assert watch.of(pid) == ["crash", "restart"]
    for pid in expected:
        assert not psutil.pid_exists(pid)
    assert descendants() == before


@contextmanager
def fds_above_fd_setsize(count: int = 1100) -> Iterator[None]:
    """Hold ``count`` fds, so that every fd the pool opens next is >= 1024 (select's limit)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count + 512)), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(count)]
    try:
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_a_death_is_seen_when_the_pools_fds_are_above_1024() -> None:
    """A large pool, or a host holding many sockets, gives the pool fds >= 1024, which
    ``select`` refuses: the death check raised, and the slot was never replaced (review)."""
    with fds_above_fd_setsize():
        async with proc_pool(size=1) as pool:
            victim = pool.workers[0]
            victim.signal(signal.SIGKILL)
            fresh = await pool.wait_serving(0, not_pid=victim.pid, timeout=10)
            assert fresh.pid != victim.pid
            assert await pool.execute("ping") == "pong"


async def test_a_signal_never_reaches_a_process_that_reused_a_reaped_workers_pid() -> None:
    """Between the zygote's reap and its ``Exited`` reaching the pool, the worker's pid may
    already belong to a stranger: a signal then goes through the pidfd (ESRCH), never by pid."""
    from chaospool._pool.process import _Exit

    proc = psutil.Popen(["sleep", "30"])  # stands in for the worker, in *our* group
    exit_ = _Exit(proc.pid, os.pidfd_open(proc.pid))
    try:
        exit_.send_signal(0)  # alive: reached through its pidfd
        proc.kill()
        proc.wait(10)  # reaped, as the zygote would: the pid is free for anyone now
        with pytest.raises(ProcessLookupError):
            exit_.send_signal(signal.SIGTERM)
    finally:
        exit_.close()
    with pytest.raises(ProcessLookupError):
        exit_.send_signal(signal.SIGTERM)  # once its report came, there is nothing to signal
