"""Small leaks and silences: broken subscribers, a noisy fork server, workers that die at once.

Each is reported once and bounded, never stored forever nor waited on forever.
"""

from __future__ import annotations

import logging

import anyio
import pytest

from chaospool import Pool, WorkerStartError
from chaospool._pool.events import PoolEvent

pytestmark = pytest.mark.anyio


@pytest.mark.unit
@pytest.mark.timeout(20)
async def test_a_raising_subscriber_is_logged_once_and_counted_not_stored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(event: PoolEvent) -> None:
        raise ValueError(f"cannot handle {event.kind}")

    async with Pool("pool_test_workers", size=1, backend="memory",
                    health_check=False) as pool:
        unsubscribe = pool.subscribe(broken)
        with caplog.at_level(logging.ERROR, logger="chaospool.pool"):
            for _ in range(50):
                assert await pool.execute("ping") == "pong"
        errors = pool.stats().subscriber_errors
        assert errors >= 100  # a checkout and a checkin per call
        logged = [r for r in caplog.records if "subscriber" in r.getMessage()]
        assert len(logged) == 1
        assert logged[0].exc_info is not None
        bus = pool._bus
        assert bus.errors == errors  # a counter, not a list of every exception raised
        assert list(bus.errors_by.values()) == [errors]
        unsubscribe()
        assert bus.errors_by == {}
        await pool.execute("ping")
        assert pool.stats().subscriber_errors == errors


@pytest.mark.integration
@pytest.mark.timeout(30)
async def test_a_malformed_message_from_the_fork_server_is_logged_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 0.1.0: the pool stopped reading the fork server at the first bad message, took it for
    # dead, and failed to start ("did not answer") -- silently
    with caplog.at_level(logging.ERROR, logger="chaospool.pool"):
        async with Pool("pool_zygote_noise", size=2, health_check=False) as pool:
            assert await pool.execute("ping") == "pong"
            victim = pool.workers[0]
            assert victim.pid is not None
            victim.signal(9)
            replaced = await pool.wait_serving(0, not_pid=victim.pid)  # spawns still work
            assert replaced.pid != victim.pid
    assert any("malformed message" in r.getMessage() for r in caplog.records)


@pytest.mark.integration
@pytest.mark.timeout(30)
async def test_a_worker_that_dies_right_after_its_fork_never_stalls_start_up() -> None:
    # 0.1.0: when the fork server's report of the death arrived before the spawner resumed,
    # the pool waited for an exit status nobody would report: start-up hung for start_timeout
    for _ in range(3):
        with anyio.fail_after(20), pytest.raises(WorkerStartError) as info:
            async with Pool("pool_dies_after_fork", size=4, start_timeout=60.0,
                            health_check=False):
                pass
        assert "exited with code 7 during start-up" in str(info.value)
