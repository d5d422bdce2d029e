"""Hostile and absurd values at run time: a call that cannot travel is the call's fault.

Args that cannot be encoded (an integer beyond 64 bits) or that would not fit in a frame, a
reply or a session state larger than the frame limit: each is a ``CommandError`` saying so, and
the worker is kept -- never a ``worker_crashed`` retried in a loop, never a restart
(docs/design.md, Pool, "Protocol"). The memory-backend tests lower the frame limit; one process
test crosses the real 64 MiB one.
"""

from __future__ import annotations

import math
import random
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from chaospool import CommandError, Pool
from chaospool._probe import Probe
from chaospool._probe.recorder import OUTCOME_KINDS
from chaospool._wire import protocol as p

pytestmark = pytest.mark.anyio

WORKER = "pool_test_workers"
SMALL_FRAME = 80_000  # minus the 64 KiB of headroom: payloads up to about 14 kB


def _kept(pool: Pool, pid: int | None) -> None:
    assert pool.workers[0].pid == pid
    stats = pool.stats()
    assert (stats.restarts, stats.crashes) == (0, 0)


@pytest.mark.unit
@pytest.mark.timeout(20)
@pytest.mark.parametrize("args", [2**64, -(2**64), {"n": [1, 2**70]}, object()])
async def test_args_that_cannot_be_encoded_are_a_command_error(args: Any) -> None:
    # 0.1.0: a ProtocolError -- a WorkerCrashed, so the probe retried it as a crash
    async with Pool(WORKER, size=1, backend="memory", health_check=False) as pool:
        pid = pool.workers[0].pid
        with pytest.raises(CommandError) as info:
            await pool.execute("echo", args, retries=3)
        assert info.value.remote_type == "UnserialisableArgs"
        assert info.value.kind == "command_error"
        assert await pool.execute("ping") == "pong"
        _kept(pool, pid)


@pytest.mark.unit
@pytest.mark.timeout(20)
async def test_a_reply_larger_than_a_frame_is_a_command_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(p, "MAX_FRAME", SMALL_FRAME)
    async with Pool(WORKER, size=1, backend="memory", health_check=False) as pool:
        pid = pool.workers[0].pid
        with pytest.raises(CommandError, match=r"FrameTooLarge: .*frame limit"):
            await pool.execute("big", {"size": SMALL_FRAME + 1})
        assert await pool.execute("big", {"size": 10}) == b"x" * 10
        _kept(pool, pid)


@pytest.mark.unit
@pytest.mark.timeout(20)
async def test_a_session_change_larger_than_a_frame_is_refused_and_not_applied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(p, "MAX_FRAME", SMALL_FRAME)
    async with Pool(WORKER, size=1, backend="memory", health_check=False) as pool:
        pid = pool.workers[0].pid
        await pool.execute("incr", session="s")
        with pytest.raises(CommandError, match="FrameTooLarge"):
            await pool.execute("grow", {"key": "blob", "size": SMALL_FRAME + 1}, session="s")
        assert pool.session_state("s") == {"n": 1}
        assert await pool.execute("incr", session="s") == 2
        _kept(pool, pid)


@pytest.mark.unit
@pytest.mark.timeout(20)
async def test_args_that_would_not_fit_in_a_frame_are_refused_before_sending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(p, "MAX_FRAME", SMALL_FRAME)
    async with Pool(WORKER, size=1, backend="memory", health_check=False) as pool:
        pid = pool.workers[0].pid
        with pytest.raises(CommandError, match="FrameTooLarge"):
            await pool.execute("echo", "x" * 20_000)
        await pool.execute("grow", {"key": "a", "size": 8000}, session="s")
        with pytest.raises(CommandError, match="session's state"):  # 8 kB state + 8 kB args
            await pool.execute("echo", "y" * 8000, session="s")
        assert await pool.execute("echo", "y" * 100, session="s") == "y" * 100
        _kept(pool, pid)


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_a_reply_beyond_the_real_frame_limit_keeps_its_worker() -> None:
    # 0.1.0: the pool read the length as a corrupt stream and killed the worker (ProtocolError)
    async with Pool(WORKER, size=1, health_check=False) as pool:
        pid = pool.workers[0].pid
        with pytest.raises(CommandError, match="FrameTooLarge"):
            await pool.execute("big", {"size": p.MAX_FRAME + 1})
        with pytest.raises(CommandError, match="FrameTooLarge"):
            await pool.execute("echo", b"x" * p.MAX_FRAME)
        assert await pool.execute("ping") == "pong"
        _kept(pool, pid)


class _Load:
    clients = 2
    rate = None
    think = 0.0
    sessions = None
    retries = 3

    class mix_entry:
        command = "echo"
        weight = 1.0
        args = 2**64

    mix = (mix_entry,)


class _Refusing:
    """A pool whose every call fails before it awaits anything."""

    calls = 0

    async def execute(self, command: str, args: Any = None, *, session: str | None = None,
                      timeout: float | None = None, retries: int = 0) -> Any:  # noqa: ASYNC109  reason: mirrors Pool.execute
        self.calls += 1
        raise CommandError("UnserialisableArgs", "no")


@pytest.mark.unit
@pytest.mark.timeout(20)
async def test_the_probe_records_unencodable_args_as_command_errors_and_yields() -> None:
    async with Pool(WORKER, size=1, backend="memory", health_check=False) as pool:
        probe = Probe(pool, _Load(), random.Random(1), anyio.current_time)
        stopped_after = math.inf

        async def stop_soon() -> None:
            nonlocal stopped_after
            await anyio.lowlevel.checkpoint()  # runs only if the probe's clients yield
            stopped_after = len(probe.recorder)
            probe.stop()

        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_soon)
            await probe.run(anyio.current_time() + 5.0)
        assert stopped_after < 100
        kinds = {OUTCOME_KINDS[c] for c in probe.recorder.codes}
        assert kinds == {"command_error"}
        assert set(probe.recorder.attempts) == {1}  # not retried as a crash
        assert pool.stats().restarts == 0


@pytest.mark.unit
@pytest.mark.timeout(20)
async def test_a_client_loop_yields_even_when_its_pool_fails_without_awaiting() -> None:
    refusing = _Refusing()
    probe = Probe(refusing, _Load(), random.Random(1), anyio.current_time)
    seen = math.inf

    async def stop_soon() -> None:
        nonlocal seen
        await anyio.lowlevel.checkpoint()
        seen = refusing.calls
        probe.stop()

    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_soon)
        await probe.run(anyio.current_time() + 2.0)
    assert seen < 100
