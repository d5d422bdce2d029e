"""The pool with real worker subprocesses (forked from the zygote)."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
from pool_procs import descendants, gone

from chaospool.errors import (
    CommandError,
    ProtocolError,
    RequestTimeout,
    WorkerCrashed,
    WorkerStartError,
)
from chaospool.pool import Pool, PoolEvent
from chaospool.testing import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.anyio, pytest.mark.timeout(30)]

WORKER = "pool_test_workers"
MB = 1024 * 1024


@asynccontextmanager
async def proc_pool(**kw: Any) -> AsyncIterator[Pool]:
    kw.setdefault("health_check", False)
    kw.setdefault("worker", WORKER)
    async with Pool(**kw) as pool:
        yield pool


def record(pool: Pool) -> list[PoolEvent]:
    events: list[PoolEvent] = []
    pool.subscribe(events.append)
    return events




async def test_demo_worker_round_trip_and_clean_exit() -> None:
    before = descendants()
    async with proc_pool(worker="chaospool.workers.demo", size=2) as pool:
        pids = {w.pid for w in pool.workers}
        assert len(pids) == 2
        assert all(pid is not None and pool.owns(pid) for pid in pids)
        assert await pool.execute("ping") == "pong"
        assert await pool.execute("echo", {"a": 1}) == {"a": 1}
        assert await pool.execute("compute", {"n": 1000}) >= 0
        sig = {"inputs": ["q"], "outputs": ["a"]}
        prog = await pool.execute("create_program", {"signature": sig}, session="s1")
        assert await pool.execute("list_programs", session="s1") == {
            "programs": [prog["program_id"]]}
        out = await pool.execute("execute", {"program_id": prog["program_id"],
                                             "inputs": {"q": "hi"}}, session="s1")
        assert out == {"outputs": {"a": "a(q='hi')"}}
        with pytest.raises(CommandError, match="no program"):
            await pool.execute("execute", {"program_id": "nope"}, session="s1")
        assert await pool.execute("sleep", {"duration": 0.01}) == 0.01
        assert await pool.execute("alloc", {"mb": 1}) == {"kept_mb": 1}
    # exit returns only after every worker and the zygote are reaped: no zombie, no orphan
    assert descendants() == before
    assert all(not psutil.pid_exists(pid) for pid in pids if pid is not None)


async def test_crash_mid_request_fails_only_that_request() -> None:
    async with proc_pool(size=2) as pool:
        events = record(pool)
        results: dict[str, Any] = {}

        async def call(name: str, command: str, args: Any) -> None:
            try:
                results[name] = await pool.execute(command, args)
            except WorkerCrashed as exc:
                results[name] = exc

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "victim", "hang", {"duration": 30})
            await wait_for(lambda: pool.stats().busy_workers == 1)
            victim = next(w for w in pool.workers if w.state == "busy")
            tg.start_soon(call, "bystander", "echo", "fine")
            victim.signal(signal.SIGKILL)
        crashed = results["victim"]
        assert isinstance(crashed, WorkerCrashed)
        assert crashed.signal == signal.SIGKILL
        assert crashed.pid == victim.pid
        assert "SIGKILL" in str(crashed)
        assert results["bystander"] == "fine"
        replacement = await pool.wait_serving(victim.index, not_pid=victim.pid)
        assert await pool.execute("ping") == "pong"
        # reaped -- soon, not by then: the slot serves again at the death, before the reap
        # (docs/design.md, "Replacing at death")
        await wait_for(lambda: not psutil.pid_exists(victim.pid), timeout=10)  # type: ignore[arg-type]
        crash = next(e for e in events if e.kind == "crash")
        assert crash.data["signal"] == signal.SIGKILL
        assert crash.pid == victim.pid
        assert replacement.pid != victim.pid
        assert pool.stats().crashes == 1
        assert pool.stats().restarts == 1


async def test_exit_code_is_reported_and_retries_recover(tmp_path: Path) -> None:
    async with proc_pool(size=1) as pool:
        with pytest.raises(WorkerCrashed) as info:
            await pool.execute("exit_now", {"code": 7})
        assert info.value.exitcode == 7
        assert info.value.signal is None
        assert "exited with code 7" in str(info.value)
        marker = str(tmp_path / "died")
        # attempt 1 kills its worker; the retry runs on the replacement and answers
        assert await pool.execute("die_once", {"marker": marker}, retries=1) == "survived"
        assert pool.stats().crashes == 2
        with pytest.raises(WorkerCrashed):  # without retries the crash reaches the caller
            await pool.execute("die_once", {"marker": str(tmp_path / "again")})


async def test_hang_times_out_and_the_worker_is_replaced_not_reused() -> None:
    async with proc_pool(size=1, request_timeout=0.3) as pool:
        events = record(pool)
        first = pool.workers[0]
        with pytest.raises(RequestTimeout, match="killed"):
            await pool.execute("hang", {"duration": 30})
        assert await pool.execute("pid", timeout=5) != first.pid
        await wait_for(lambda: not psutil.pid_exists(first.pid))  # type: ignore[arg-type]
        assert "timeout" in [e.kind for e in events]


async def test_health_check_finds_a_stopped_worker() -> None:
    health = {"interval": 0.1, "timeout": 0.3}
    async with proc_pool(size=1, health_check=health) as pool:
        events = record(pool)
        first = pool.workers[0]
        first.signal(signal.SIGSTOP)
        assert first.status() == "stopped" or await wait_for(lambda: first.status() == "stopped")
        await pool.wait_serving(0, not_pid=first.pid, timeout=10)
        assert "health_fail" in [e.kind for e in events]
        await wait_for(lambda: not psutil.pid_exists(first.pid))  # type: ignore[arg-type]


async def test_health_check_finds_a_blocked_worker() -> None:
    async with proc_pool(size=1, health_check={"interval": 0.1, "timeout": 0.3}) as pool:
        events = record(pool)
        first = pool.workers[0]
        await first.control("block")  # alive and running, but answers nothing
        await pool.wait_serving(0, not_pid=first.pid, timeout=10)
        assert "health_fail" in [e.kind for e in events]


async def test_print_in_a_worker_never_corrupts_the_channel() -> None:
    async with proc_pool(size=1) as pool:
        handle = pool.workers[0]
        assert await pool.execute("noisy") == "quiet now"
        assert await pool.execute("ping") == "pong"
        await wait_for(lambda: any("stderr line from the worker" in line for line in handle.log))
        assert any("noise line 199" in line for line in handle.log)
        assert len(handle.log) <= 50  # the last lines only
        assert pool.stats().crashes == 0


async def test_import_failure_is_a_worker_start_error_with_traceback() -> None:
    before = descendants()
    with pytest.raises(WorkerStartError) as info:
        async with Pool("pool_broken_worker", size=2):
            pass
    assert "marker 7f3a" in str(info.value)
    assert "Traceback" in str(info.value)
    assert "pool_broken_worker.py" in str(info.value)
    assert descendants() == before


async def test_unknown_module_is_a_worker_start_error() -> None:
    with pytest.raises(WorkerStartError, match="No module named"):
        async with Pool("no_such_module_for_chaospool", size=1):
            pass


async def test_bad_input_gives_typed_errors_and_the_pool_keeps_serving() -> None:
    async with proc_pool(size=1) as pool:
        pid = await pool.execute("pid")
        with pytest.raises(CommandError) as info:
            await pool.execute("nope")
        assert info.value.remote_type == "UnknownCommand"
        with pytest.raises(CommandError) as info:
            await pool.execute("boom", "x")
        assert str(info.value) == "ValueError: boom x"
        assert "Traceback" in info.value.remote_traceback
        with pytest.raises(CommandError, match="cannot be serialised"):
            await pool.execute("unserialisable")
        assert await pool.execute("pid") == pid  # the same worker, still usable


async def test_corrupt_frames_break_only_that_worker() -> None:
    for mode in ("garbage", "truncate"):
        async with proc_pool(size=2) as pool:
            events = record(pool)
            served = await pool.execute("pid")  # LIFO: this worker is handed out next too
            target = next(w for w in pool.workers if w.pid == served)
            await target.control("corrupt", {"mode": mode, "count": 1})
            results = []
            for _ in range(4):
                try:
                    results.append(await pool.execute("pid"))
                except ProtocolError as exc:
                    results.append(exc)
            errors = [r for r in results if isinstance(r, ProtocolError)]
            assert len(errors) == 1
            assert errors[0].pid == target.pid
            await pool.wait_serving(target.index, not_pid=target.pid)
            assert results[-1] != target.pid
            assert await pool.execute("ping") == "pong"
            assert any(e.kind == "crash" and e.data["reason"] == "protocol" for e in events)


async def test_session_survives_the_death_of_its_worker() -> None:
    async with proc_pool(worker="chaospool.workers.demo", size=2) as pool:
        sig = {"inputs": ["q"], "outputs": ["a"]}
        created = [await pool.execute("create_program", {"signature": sig}, session="s")
                   for _ in range(2)]
        holder = pool.worker_for_session("s")
        assert holder is not None
        holder.signal(signal.SIGKILL)
        await pool.wait_serving(holder.index, not_pid=holder.pid)
        assert pool.worker_for_session("s") is None
        listed = await pool.execute("list_programs", session="s")
        assert listed == {"programs": sorted(c["program_id"] for c in created)}


async def test_max_memory_recycles_a_big_worker() -> None:
    async with proc_pool(worker="chaospool.workers.demo", size=1, max_memory="80MB") as pool:
        events = record(pool)
        first = pool.workers[0]
        await pool.execute("alloc", {"mb": 100})  # above the limit after this request
        await pool.wait_serving(0, not_pid=first.pid)
        recycle = next(e for e in events if e.kind == "recycle")
        assert recycle.data["reason"] == "max_memory"
        assert recycle.data["rss"] > 80 * MB
        assert await pool.execute("ping") == "pong"


async def test_max_requests_recycles_real_workers() -> None:
    async with proc_pool(size=2, max_requests=5) as pool:
        pids = [await pool.execute("pid") for _ in range(30)]
        assert len(set(pids)) >= 6
        assert pool.stats().recycles >= 5


async def test_leak_control_grows_rss() -> None:
    async with proc_pool(size=1) as pool:
        handle = pool.workers[0]
        before = handle.rss()
        assert before is not None
        await handle.control("leak", {"rate": 200 * MB, "limit": 40 * MB})
        await wait_for(lambda: (handle.rss() or 0) > before + 30 * MB, timeout=10)
        result = await handle.control("unleak")
        assert result["leaked"] >= 30 * MB


async def test_control_ops_work_while_a_command_runs() -> None:
    async with proc_pool(size=1) as pool:
        handle = pool.workers[0]
        async with anyio.create_task_group() as tg:
            tg.start_soon(pool.execute, "hang", {"duration": 0.5})
            await wait_for(lambda: handle.state == "busy")
            info = await handle.control("info", timeout=2)
            assert info["pid"] == handle.pid
            assert info["threads"] >= 2
            assert await handle.control("pool_test_workers:double", {"x": 2}) == {
                "double": 4, "index": 0}
            opened = await handle.control("fds", {"amount": 10})
            assert opened == {"opened": 10}
            assert (await handle.control("unfds"))["closed"] == 10
            await handle.control("cpu", {"threads": 1, "duration": 5})
            assert (await handle.control("uncpu"))["threads"] == 1


async def test_close_channel_is_seen_as_a_crash_and_replaced() -> None:
    async with proc_pool(size=1) as pool:
        events = record(pool)
        first = pool.workers[0]
        first.close_channel()
        await pool.wait_serving(0, not_pid=first.pid)
        assert any(e.kind == "crash" for e in events)
        await wait_for(lambda: not psutil.pid_exists(first.pid))  # type: ignore[arg-type]


async def test_partition_at_the_process_seam() -> None:
    async with proc_pool(size=1, request_timeout=5) as pool:
        part = pool.workers[0].partition("to_worker", "hold")
        async with anyio.create_task_group() as tg:
            got: list[Any] = []

            async def call() -> None:
                got.append(await pool.execute("echo", "held"))

            tg.start_soon(call)
            await wait_for(lambda: part.counts["held"] == 1)
            await part.heal()
        assert got == ["held"]


async def test_sixteen_workers_start_and_stop() -> None:
    before = descendants()
    async with proc_pool(size=16) as pool:
        assert len({w.pid for w in pool.workers}) == 16
        assert all(w.state == "ready" for w in pool.workers)
        workers = {w.pid for w in pool.workers}
        # workers lead their own process group (signals to the group reach grandchildren)
        assert all(os.getpgid(pid) == pid for pid in workers if pid is not None)
    assert descendants() == before


async def test_a_killed_fork_server_takes_its_workers_and_is_restarted() -> None:
    async with proc_pool(size=2) as pool:
        zygote = pool._backend._proc  # type: ignore[attr-defined]
        old = [w.pid for w in pool.workers]
        zygote.send_signal(signal.SIGKILL)
        # PR_SET_PDEATHSIG kills every worker with it; the pool starts a new fork server
        for index, pid in enumerate(old):
            await pool.wait_serving(index, not_pid=pid, timeout=10)
        await wait_for(lambda: all(gone(pid) for pid in old if pid is not None))
        assert await pool.execute("ping") == "pong"
        assert pool._backend._proc is not zygote  # type: ignore[attr-defined]


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_smoke_with_real_workers(anyio_backend: str) -> None:
    async with proc_pool(size=2, request_timeout=0.3) as pool:
        assert await pool.execute("ping", timeout=5) == "pong"
        first = pool.workers[0]
        first.signal(signal.SIGKILL)
        await pool.wait_serving(0, not_pid=first.pid)
        with pytest.raises(RequestTimeout):
            await pool.execute("hang", {"duration": 30})
        assert await pool.execute("echo", 1, timeout=5) == 1


async def test_heartbeats_are_answered_while_a_command_runs() -> None:
    health = {"interval": 0.05, "timeout": 0.3}
    async with proc_pool(worker="chaospool.workers.demo", size=1, health_check=health) as pool:
        events = record(pool)
        # a second of pure-Python CPU work on the command thread: the control thread still
        # answers every ping (it needs the GIL only briefly, at the switch interval)
        assert await pool.execute("compute", {"n": 3_000_000}) >= 0
        assert await pool.execute("sleep", {"duration": 0.5}) == 0.5
        assert "health_fail" not in [e.kind for e in events]
        assert pool.stats().restarts == 0


async def test_overflow_workers_are_real_and_reaped_when_they_retire() -> None:
    async with proc_pool(size=1, max_overflow=1, overflow_idle=0.2) as pool:
        events = record(pool)
        async with anyio.create_task_group() as tg:
            for _ in range(2):
                tg.start_soon(pool.execute, "hang", {"duration": 0.3})
        assert pool.stats().overflow_workers == 1
        overflow = pool.workers[1]
        assert overflow.overflow
        assert overflow.pid is not None
        await wait_for(lambda: any(e.kind == "retire" for e in events), timeout=5)
        await wait_for(lambda: [w.index for w in pool.workers] == [0])
        assert gone(overflow.pid)  # type: ignore[arg-type]  # reaped by the time it is dropped


async def test_a_dead_workers_grandchildren_die_with_it() -> None:
    async with proc_pool(size=1) as pool:
        first = pool.workers[0]
        grandchild = await pool.execute("spawn_child")
        assert os.getpgid(grandchild) == first.pid  # in the worker's own process group
        os.kill(first.pid, signal.SIGKILL)  # type: ignore[arg-type]  # the worker alone
        await pool.wait_serving(0, not_pid=first.pid)
        await wait_for(lambda: gone(grandchild))


async def test_killing_an_idle_worker_of_an_idle_pool() -> None:
    async with proc_pool(size=2) as pool:
        events = record(pool)
        idle = pool.workers[0]
        idle.signal(signal.SIGKILL)
        await wait_for(lambda: idle.state in ("stopping", "dead"))
        assert [await pool.execute("ping") for _ in range(10)] == ["pong"] * 10
        await pool.wait_serving(0, not_pid=idle.pid)
        await wait_for(lambda: pool.stats().ready_workers == 2)
        assert [e.kind for e in events].count("crash") == 1
        assert pool.stats().errors == 0


async def spare_of(pool: Pool) -> int:
    """The pid of the pool's spare worker, once it is forked (docs/design.md, "Spare worker")."""
    backend = pool._backend
    await wait_for(lambda: backend._spare is not None)  # type: ignore[attr-defined]
    return backend._spare.pid  # type: ignore[attr-defined, no-any-return]


async def test_a_replacement_is_the_spare_and_knows_its_slot() -> None:
    async with proc_pool(size=2, strategy="fifo") as pool:  # fifo: calls alternate workers
        spare = await spare_of(pool)
        assert not pool.owns(spare)  # not a slot's worker until it is taken
        victim = pool.workers[1]
        victim.signal(signal.SIGKILL)
        new = await pool.wait_serving(1, not_pid=victim.pid)
        assert new.pid == spare
        # its index came with Start, its control thread started then: both work
        assert {await pool.execute("index") for _ in range(20)} == {0, 1}
        assert await new.control("pool_test_workers:double", {"x": 2}) == {"double": 4,
                                                                           "index": 1}
        assert await spare_of(pool) != spare  # a new spare is forked for the next one


async def test_a_spare_killed_while_idle_is_never_handed_out() -> None:
    async with proc_pool(size=1) as pool:
        events = record(pool)
        spare = await spare_of(pool)
        os.kill(spare, signal.SIGKILL)
        await wait_for(lambda: gone(spare))
        first = pool.workers[0]
        first.signal(signal.SIGKILL)
        new = await pool.wait_serving(0, not_pid=first.pid)
        assert new.pid not in (spare, first.pid)  # a fresh fork served instead
        assert await pool.execute("ping") == "pong"
        assert [e.kind for e in events].count("crash") == 1  # the spare's death is no crash
        assert pool.stats().restarts == 1


async def test_the_spare_is_reaped_when_the_pool_closes() -> None:
    before = descendants()
    async with proc_pool(size=1) as pool:
        spare = await spare_of(pool)
    assert gone(spare)
    assert descendants() == before
