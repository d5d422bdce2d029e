"""chaospool_pool and monitor with real worker processes, inside a user's pytest session."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

CONFTEST = """
import pytest
import psutil

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param

def no_children():
    return psutil.Process().children(recursive=True) == []

def alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
"""


@pytest.fixture
def session(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    return pytester


def test_a_pool_survives_a_crash_and_closes_clean(session: pytest.Pytester) -> None:
    session.makepyfile(
        """
        import signal
        import pytest
        from chaospool.testing import monitor, wait_for
        from conftest import alive, no_children

        PIDS = []

        @pytest.mark.anyio
        async def test_crash(chaospool_pool):
            async with chaospool_pool(worker="chaospool.workers.demo", size=2) as pool:
                assert [w.index for w in pool.workers] == [0, 1]
                async with monitor(pool) as seen:
                    victim = pool.workers[0].pid
                    PIDS.append(victim)
                    pool.workers[0].signal(signal.SIGKILL)
                    await wait_for(lambda: seen.restarts == 1)
                    assert await pool.execute("echo", {"n": 1}, retries=1) == {"n": 1}
                after = [w.pid for w in pool.workers]
                PIDS.extend(after)
            assert seen.crashes == 1
            assert seen.checkouts == seen.checkins >= 1
            assert victim not in after

        def test_nothing_left():
            assert len(PIDS) == 6  # three pids per backend
            assert not [pid for pid in PIDS if alive(pid)]
            assert no_children()
        """
    )
    session.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=3)


def test_a_pool_left_open_fails_the_test_and_is_closed(session: pytest.Pytester) -> None:
    session.makepyfile(
        """
        import pytest
        from conftest import alive, no_children

        PIDS = []

        @pytest.mark.anyio
        async def test_leaky(chaospool_pool):
            pool = await chaospool_pool(worker="chaospool.workers.demo", size=2).__aenter__()
            PIDS.extend(w.pid for w in pool.workers)
            assert await pool.execute("ping") == "pong"

        def test_closed_afterwards():
            assert len(PIDS) == 4
            assert not [pid for pid in PIDS if alive(pid)]
            assert no_children()  # the pool's helper processes too
        """
    )
    result = session.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_leaky?asyncio?*",
            "*chaospool_pool: worker processes still alive after the test: pids [[]*, *[]]*",
        ]
    )
