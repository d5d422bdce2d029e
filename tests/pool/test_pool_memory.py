"""Pool logic on the in-memory backend: fast, deterministic, no subprocess."""

from __future__ import annotations

import signal
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pool_test_workers
import pytest

from chaospool._pool.backend import ExitStatus, LinkClosed
from chaospool._pool.memory import MemoryBackend
from chaospool._wire.protocol import Hello
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
from chaospool.pool import Pool, PoolEvent
from chaospool.testing import wait_for

pytestmark = [pytest.mark.unit, pytest.mark.anyio, pytest.mark.timeout(20)]

WORKER = "pool_test_workers"


@pytest.fixture(autouse=True)
def _release_hanging_handlers() -> Iterator[None]:
    pool_test_workers.RELEASE.clear()
    yield
    pool_test_workers.RELEASE.set()  # hanging handler threads of killed fake workers end


@asynccontextmanager
async def mem_pool(**kw: Any) -> AsyncIterator[Pool]:
    kw.setdefault("health_check", False)
    kw.setdefault("worker", WORKER)
    async with Pool(backend="memory", **kw) as pool:
        yield pool


def record(pool: Pool) -> list[PoolEvent]:
    events: list[PoolEvent] = []
    pool.subscribe(events.append)
    return events


async def test_execute_and_stats() -> None:
    async with mem_pool(size=2) as pool:
        assert await pool.execute("ping") == "pong"
        assert await pool.execute("echo", {"x": [1, 2]}) == {"x": [1, 2]}
        assert await pool.execute("renamed") == "by another name"
        stats = pool.stats()
        assert (stats.ready_workers, stats.busy_workers, stats.checkouts) == (2, 0, 3)
        assert [w.index for w in pool.workers] == [0, 1]
        assert all(w.state == "ready" for w in pool.workers)
        assert pool.size == 2
        assert pool.request_timeout == 30.0


async def test_lifo_hands_out_the_last_checked_in_worker() -> None:
    async with mem_pool(size=3, strategy="lifo") as pool:
        seen = [await pool.execute("index") for _ in range(4)]
        assert len(set(seen)) == 1  # the same (most recently returned) worker every time


async def test_fifo_rotates_through_idle_workers() -> None:
    async with mem_pool(size=3, strategy="fifo") as pool:
        seen = [await pool.execute("index") for _ in range(6)]
        # the first round follows the order the workers became ready, which trio randomises
        assert sorted(seen[:3]) == [0, 1, 2]
        assert seen[3:] == seen[:3]


async def test_queue_full_at_once_and_cancelled_waiter_leaves_queue() -> None:
    async with mem_pool(size=1, max_queue=1, checkout_timeout=10) as pool:
        events = record(pool)
        async with anyio.create_task_group() as tg:
            tg.start_soon(pool.execute, "hang", {"duration": 10})
            await wait_for(lambda: pool.stats().busy_workers == 1)
            waiter_scope = anyio.CancelScope()

            async def waiter() -> None:
                with waiter_scope:
                    await pool.execute("ping")

            tg.start_soon(waiter)
            await wait_for(lambda: pool.stats().queue_depth == 1)
            with anyio.fail_after(1):  # refused at once, not after checkout_timeout
                with pytest.raises(QueueFull):
                    await pool.execute("ping")
            assert any(e.kind == "queue_full" for e in events)
            waiter_scope.cancel()
            await wait_for(lambda: pool.stats().queue_depth == 0)
            pool_test_workers.RELEASE.set()
        # the cancelled waiter was never handed the worker: it is idle, not leaked
        await wait_for(lambda: pool.stats().ready_workers == 1)
        assert await pool.execute("ping") == "pong"


async def test_checkout_timeout() -> None:
    async with mem_pool(size=1, checkout_timeout=0.1) as pool:
        events = record(pool)
        async with anyio.create_task_group() as tg:
            tg.start_soon(pool.execute, "hang", {"duration": 10})
            await wait_for(lambda: pool.stats().busy_workers == 1)
            with pytest.raises(CheckoutTimeout):
                await pool.execute("ping")
            pool_test_workers.RELEASE.set()
        assert [e.kind for e in events].count("checkout_timeout") == 1
        assert pool.stats().queue_depth == 0


async def test_waiters_are_served_fifo() -> None:
    async with mem_pool(size=1, checkout_timeout=5) as pool:
        order: list[int] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(pool.execute, "hang", {"duration": 10})
            await wait_for(lambda: pool.stats().busy_workers == 1)

            async def call(i: int) -> None:
                await pool.execute("echo", i)
                order.append(i)

            for i in range(5):
                tg.start_soon(call, i)
                await wait_for(lambda i=i: pool.stats().queue_depth == i + 1)
            pool_test_workers.RELEASE.set()
        assert order == [0, 1, 2, 3, 4]


async def test_unknown_command_and_handler_error_keep_the_pool_serving() -> None:
    async with mem_pool(size=1) as pool:
        with pytest.raises(CommandError) as info:
            await pool.execute("nope")
        assert info.value.remote_type == "UnknownCommand"
        with pytest.raises(CommandError) as info:
            await pool.execute("boom", 3)
        assert str(info.value) == "ValueError: boom 3"
        assert "raise ValueError" in info.value.remote_traceback
        with pytest.raises(CommandError) as info:
            await pool.execute("unserialisable")
        assert info.value.remote_type == "UnserialisableResult"
        assert "cannot be serialised" in str(info.value)
        assert await pool.execute("ping") == "pong"
        assert pool.stats().restarts == 0  # the worker stayed usable throughout


async def test_request_timeout_kills_and_replaces_the_worker() -> None:
    async with mem_pool(size=1, request_timeout=0.1) as pool:
        events = record(pool)
        first = pool.workers[0]
        with pytest.raises(RequestTimeout):
            await pool.execute("hang", {"duration": 10})
        assert first.state in ("stopping", "dead")  # never checked back in
        replacement = await pool.wait_serving(0, not_pid=first.pid)
        assert replacement.pid != first.pid
        # (a call that must succeed gets time: 0.1 s is the hang's budget, not a loaded CI's)
        assert await pool.execute("ping", timeout=5) == "pong"
        kinds = [e.kind for e in events]
        assert "timeout" in kinds
        assert "restart" in kinds
        assert pool.stats().timeouts == 1


async def test_crash_fails_only_the_held_request_and_session_survives() -> None:
    async with mem_pool(size=2, strategy="fifo") as pool:
        assert (await pool.execute("count", session="s"))["n"] == 1
        holder = pool.worker_for_session("s")
        assert holder is not None
        assert (await pool.execute("count", session="s"))["n"] == 2  # affinity: same worker
        assert pool.worker_for_session("s") == holder
        async with anyio.create_task_group() as tg:
            results: list[Any] = []

            async def hang_on(n: int) -> None:
                try:
                    results.append(await pool.execute("hang", {"duration": 10}))
                except WorkerCrashed as exc:
                    results.append(exc)

            tg.start_soon(hang_on, 0)
            await wait_for(lambda: pool.stats().busy_workers == 1)
            busy = next(w for w in pool.workers if w.state == "busy")
            busy.signal(signal.SIGKILL)
            await wait_for(lambda: len(results) == 1)
        assert isinstance(results[0], WorkerCrashed)
        assert results[0].signal == signal.SIGKILL
        if holder.state != "dead":  # make sure the worker that held the session is gone too
            holder.signal(signal.SIGKILL)
        await wait_for(lambda: holder.state == "dead")
        assert pool.worker_for_session("s") is None
        # the session's state lives in the pool: the next worker continues from n=2
        assert (await pool.execute("count", session="s"))["n"] == 3
        assert pool.session_state("s") == {"n": 3}


async def test_affinity_is_a_preference_not_a_requirement() -> None:
    async with mem_pool(size=2, checkout_timeout=2) as pool:
        await pool.execute("count", session="s")
        holder = pool.worker_for_session("s")
        assert holder is not None
        async with anyio.create_task_group() as tg:
            tg.start_soon(pool.execute, "hang", {"duration": 10})  # LIFO: takes the holder
            await wait_for(lambda: holder.state == "busy")
            assert (await pool.execute("count", session="s"))["n"] == 2  # served elsewhere
            pool_test_workers.RELEASE.set()
        assert pool.worker_for_session("s") != holder


async def test_dead_workers_affinity_is_dropped_at_once() -> None:
    async with mem_pool(size=2) as pool:
        await pool.execute("count", session="s")
        holder = pool.worker_for_session("s")
        assert holder is not None
        holder.signal(signal.SIGKILL)
        await wait_for(lambda: holder.state == "dead")
        assert pool.worker_for_session("s") is None


async def test_max_requests_recycles_without_deadlock() -> None:
    async with mem_pool(size=1, max_requests=3) as pool:
        events = record(pool)
        pids = [await pool.execute("echo", i) for i in range(10)]
        assert pids == list(range(10))
        recycles = [e for e in events if e.kind == "recycle"]
        assert len(recycles) == 3
        assert recycles[0].data["reason"] == "max_requests"
        assert pool.stats().recycles == 3
        assert pool.stats().circuit_open is False  # recycles are not failures


async def test_overflow_worker_lingers_then_retires() -> None:
    async with mem_pool(size=1, max_overflow=1, overflow_idle=0.2) as pool:
        events = record(pool)
        async with anyio.create_task_group() as tg:
            tg.start_soon(pool.execute, "hang", {"duration": 10})
            await wait_for(lambda: pool.stats().busy_workers == 1)
            assert await pool.execute("ping") == "pong"  # served by a new overflow worker
            assert pool.stats().overflow_workers == 1
            assert [w.index for w in pool.workers] == [0, 1]
            assert pool.workers[1].overflow
            # it lingers (still there right after its request) ...
            assert await pool.execute("ping") == "pong"
            assert [e.kind for e in events].count("start") == 1
            # ... then retires once idle for overflow_idle
            await wait_for(lambda: any(e.kind == "retire" for e in events), timeout=5)
            await wait_for(lambda: pool.stats().overflow_workers == 0)
            pool_test_workers.RELEASE.set()
        assert pool.stats().restarts == 0  # a retired overflow worker is not replaced


async def test_lazy_pool_starts_workers_on_demand() -> None:
    async with mem_pool(size=2, lazy=True) as pool:
        assert pool.workers == []
        assert await pool.execute("ping") == "pong"
        assert len(pool.workers) == 1


async def test_restart_intensity_opens_the_circuit() -> None:
    async with mem_pool(size=1, restart={"max_restarts": 2, "within": 30}) as pool:
        events = record(pool)
        for _ in range(3):
            w = await pool.wait_serving(0, timeout=5)
            w.signal(signal.SIGKILL)
            await wait_for(lambda w=w: w.state == "dead")
        await wait_for(lambda: pool.stats().circuit_open)
        with pytest.raises(CircuitOpen, match="max_restarts=2"):
            await pool.execute("ping")
        assert [e.kind for e in events].count("circuit_open") == 1
        assert pool.stats().restarts == 2


async def test_circuit_half_opens_after_the_window() -> None:
    async with mem_pool(size=1, restart={"max_restarts": 0, "within": 0.3}) as pool:
        events = record(pool)
        pool.workers[0].signal(signal.SIGKILL)
        await wait_for(lambda: pool.stats().circuit_open)
        await wait_for(lambda: not pool.stats().circuit_open, timeout=5)
        await pool.wait_serving(0, timeout=5)
        assert await pool.execute("ping") == "pong"
        assert "circuit_half_open" in [e.kind for e in events]


async def test_corrupt_reply_is_a_protocol_error_and_the_worker_is_replaced() -> None:
    for mode in ("garbage", "truncate"):
        async with mem_pool(size=1) as pool:
            first = pool.workers[0]
            await first.control("corrupt", {"mode": mode, "count": 1})
            with pytest.raises(ProtocolError, match="malformed frame"):
                await pool.execute("ping")
            await pool.wait_serving(0, not_pid=first.pid)
            assert await pool.execute("ping") == "pong"
            assert pool.stats().crashes == 1


async def test_control_ops_and_plugin_op() -> None:
    async with mem_pool(size=1) as pool:
        handle = pool.workers[0]
        assert await handle.control("pool_test_workers:double", {"x": 21}) == {
            "double": 42, "index": 0}
        await handle.control("slow", {"latency": 0.05})
        assert await pool.execute("ping") == "pong"
        await handle.control("unslow")
        with pytest.raises(CommandError, match="unknown control op"):
            await handle.control("nope")
        info = await handle.control("info")
        assert set(info) == {"pid", "rss", "threads", "fds"}


async def test_block_silences_the_worker_until_unblocked() -> None:
    async with mem_pool(size=1, request_timeout=5) as pool:
        handle = pool.workers[0]
        await handle.control("block")
        async with anyio.create_task_group() as tg:
            got: list[Any] = []

            async def call() -> None:
                got.append(await pool.execute("ping"))

            tg.start_soon(call)
            await wait_for(lambda: pool.stats().busy_workers == 1)
            assert got == []
            await handle.control("unblock")
        assert got == ["pong"]


async def test_partition_drop_makes_the_request_time_out() -> None:
    async with mem_pool(size=1, request_timeout=0.2) as pool:
        handle = pool.workers[0]
        part = handle.partition("to_worker", "drop")
        with pytest.raises(RequestTimeout):
            await pool.execute("ping")
        await part.heal()
        assert part.counts["dropped"] == 1
        await pool.wait_serving(0, not_pid=handle.pid)


async def test_partition_hold_delivers_late_and_never_to_another_caller() -> None:
    async with mem_pool(size=1, request_timeout=5) as pool:
        handle = pool.workers[0]
        part = handle.partition("from_worker", "hold")
        scope = anyio.CancelScope()
        results: list[Any] = []

        async def gives_up() -> None:
            with scope:
                results.append(await pool.execute("echo", "first"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(gives_up)
            await wait_for(lambda: part.counts["held"] == 1)
            scope.cancel()  # the caller gives up: its reply is held, then must be discarded
        await part.heal()
        assert part.counts == {"dropped": 0, "held": 1, "delivered_late": 0, "late_discarded": 1}
        assert results == []
        # the worker is returned after the late reply: the next caller gets its own answer
        assert await pool.execute("echo", "second") == "second"


async def test_partition_hold_then_heal_delivers_held_reply() -> None:
    async with mem_pool(size=1, request_timeout=5) as pool:
        part = pool.workers[0].partition("both", "hold")
        async with anyio.create_task_group() as tg:
            got: list[Any] = []

            async def call() -> None:
                got.append(await pool.execute("echo", 5))

            tg.start_soon(call)
            await wait_for(lambda: part.counts["held"] == 1)
            await part.heal()
        assert got == [5]
        assert part.counts["delivered_late"] >= 1


async def test_health_check_finds_a_silent_worker() -> None:
    async with mem_pool(size=1, health_check={"interval": 0.05, "timeout": 0.1}) as pool:
        events = record(pool)
        first = pool.workers[0]
        part = first.partition("from_worker", "drop")  # pongs vanish: a partitioned link
        await pool.wait_serving(0, not_pid=first.pid, timeout=5)
        assert "health_fail" in [e.kind for e in events]
        await part.heal()


async def test_handles_refuse_dead_incarnations_and_owns() -> None:
    async with mem_pool(size=1) as pool:
        handle = pool.workers[0]
        assert handle.pid is not None
        assert pool.owns(handle.pid)
        handle.signal(signal.SIGKILL)
        await wait_for(lambda: handle.state == "dead")
        with pytest.raises(ProcessLookupError):
            handle.signal(signal.SIGTERM)
        with pytest.raises(ProcessLookupError):
            await handle.control("info")
        assert not pool.owns(handle.pid)
        assert handle.rss() is None
        assert handle.status() is None


async def test_closed_pool_raises_pool_closed() -> None:
    async with mem_pool(size=1) as pool:
        pass
    with pytest.raises(PoolClosed):
        await pool.execute("ping")
    with pytest.raises(PoolClosed):
        await Pool(WORKER, backend="memory").execute("ping")


async def test_import_failure_is_a_worker_start_error() -> None:
    with pytest.raises(WorkerStartError, match="marker 7f3a"):
        async with Pool("pool_broken_worker", backend="memory"):
            pass


async def test_bad_options_are_refused() -> None:
    for kw in ({"size": 0}, {"strategy": "random"}, {"max_overflow": -1},
               {"restart": {"max_restart": 1}}, {"max_memory": "lots"}):
        with pytest.raises(ValueError, match=r"must|unknown|max_memory: bad size"):
            Pool(WORKER, backend="memory", **kw)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_smoke(anyio_backend: str) -> None:
    async with mem_pool(size=2, request_timeout=0.2) as pool:
        assert await pool.execute("ping", timeout=5) == "pong"
        assert (await pool.execute("count", session="t", timeout=5))["n"] == 1
        with pytest.raises(RequestTimeout):
            await pool.execute("hang", {"duration": 10})
        await pool.wait_serving(0)


class _DiesAtStart:
    """A Link whose worker exits (code 3) before its Hello: the start-up failure case."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.log: deque[str] = deque(["about to die"], maxlen=50)

    async def send(self, msg: Any) -> None:
        raise LinkClosed("gone")

    def send_nowait(self, msg: Any) -> bool:
        raise LinkClosed("gone")

    async def receive(self) -> list[Any]:
        raise LinkClosed("EOF")

    async def serve(self, deliver: Any) -> None:
        return None

    def signal(self, sig: int) -> None:
        raise ProcessLookupError(sig)

    def close(self) -> None:
        return None

    async def wait(self) -> ExitStatus:
        return ExitStatus(3, None)

    def exit_status(self) -> ExitStatus | None:
        return ExitStatus(3, None)


class FlakyBackend(MemoryBackend):
    """Real fake workers for the first ``good`` spawns, then workers that die at start-up."""

    def __init__(self, worker: str, good: int) -> None:
        super().__init__(worker)
        self.good = good

    async def spawn(self, index: int) -> Any:
        if self.good > 0:
            self.good -= 1
            return await super().spawn(index)
        return _DiesAtStart(2_000_000_000 + index)


async def test_a_worker_that_exits_during_startup_fails_the_pool_start() -> None:
    with pytest.raises(WorkerStartError, match="exited with code 3 during start-up") as info:
        async with Pool(WORKER, size=2, backend=FlakyBackend(WORKER, good=1),
                        health_check=False):
            pass
    assert info.value.exitcode == 3
    assert "about to die" in str(info.value)  # the worker's last log lines come along


async def test_replacements_that_cannot_start_open_the_circuit() -> None:
    backend = FlakyBackend(WORKER, good=1)
    async with Pool(WORKER, size=1, backend=backend, health_check=False,
                    restart={"max_restarts": 3, "within": 30}) as pool:
        events = record(pool)
        pool.workers[0].signal(signal.SIGKILL)
        await wait_for(lambda: pool.stats().circuit_open, timeout=10)
        with pytest.raises(CircuitOpen):
            await pool.execute("ping")
        assert [e.kind for e in events].count("restart") == 3


class _NeverSaysHello(_DiesAtStart):
    """A worker that starts but never answers its handshake (until killed)."""

    def __init__(self, pid: int) -> None:
        super().__init__(pid)
        self.killed = anyio.Event()

    async def receive(self) -> list[Any]:
        await self.killed.wait()
        raise LinkClosed("EOF")

    def signal(self, sig: int) -> None:
        self.killed.set()

    async def wait(self) -> ExitStatus:
        await self.killed.wait()
        return ExitStatus(None, signal.SIGKILL)

    def exit_status(self) -> ExitStatus | None:
        return ExitStatus(None, signal.SIGKILL) if self.killed.is_set() else None


class SilentBackend(MemoryBackend):
    async def spawn(self, index: int) -> Any:
        return _NeverSaysHello(2_100_000_000 + index)


async def test_the_handshake_is_bounded_by_start_timeout() -> None:
    with anyio.fail_after(5), pytest.raises(WorkerStartError, match="no handshake within"):
        async with Pool(WORKER, size=1, backend=SilentBackend(WORKER), start_timeout=0.2,
                        health_check=False):
            pass


class _SpeaksAnotherVersion(_NeverSaysHello):
    async def receive(self) -> list[Any]:
        return [Hello(99, self.pid, ["ping"])]


class OtherVersionBackend(MemoryBackend):
    async def spawn(self, index: int) -> Any:
        return _SpeaksAnotherVersion(2_200_000_000 + index)


async def test_a_protocol_version_mismatch_is_a_worker_start_error() -> None:
    with anyio.fail_after(5), pytest.raises(WorkerStartError, match="protocol version 99"):
        async with Pool(WORKER, size=1, backend=OtherVersionBackend(WORKER),
                        health_check=False):
            pass


async def test_module_object_worker_spec() -> None:
    async with mem_pool(worker="pool_test_workers:COMMANDS", size=1) as pool:
        assert await pool.execute("hello", "you") == "hello you"
        assert sorted(pool.commands) == ["hello", "ping"]
