"""chaospool_pool's process accounting, against a stand-in pool that starts real processes.

The stand-in lets a test leave a pool open, or make its close fail, on purpose: the fixture must
fail the test naming the pids, then close (or kill) what was left. The real pool is exercised in
test_fixtures_real.py.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.system, pytest.mark.timeout(60)]

FAKE_POOL = """
import subprocess
import sys
import types

import pytest

class FakePool:
    \"\"\"Starts `size` sleeping processes; `stubborn` pools ignore their close.\"\"\"

    def __init__(self, worker, size=1, stubborn=False):
        self.size = size
        self.stubborn = stubborn
        self.procs = []
        self.callbacks = []

    def subscribe(self, callback, kinds=None):
        self.callbacks.append(callback)
        return lambda: self.callbacks.remove(callback)

    @property
    def workers(self):
        return [types.SimpleNamespace(index=i, pid=p.pid) for i, p in enumerate(self.procs)]

    def restart(self):
        # a replacement announced only through an event, as the real pool does
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        self.spare = proc
        for cb in self.callbacks:
            cb(types.SimpleNamespace(kind="restart", pid=proc.pid, index=0))
        return proc.pid

    async def __aenter__(self):
        cmd = [sys.executable, "-c", "import time; time.sleep(60)"]
        self.procs = [subprocess.Popen(cmd) for _ in range(self.size)]
        return self

    async def __aexit__(self, *exc):
        if self.stubborn:
            return None
        for p in [*self.procs, *([self.spare] if hasattr(self, "spare") else [])]:
            p.kill()
            p.wait()
        return None

fake = types.ModuleType("chaospool.pool")
fake.Pool = FakePool
sys.modules["chaospool.pool"] = fake

@pytest.fixture
def anyio_backend():
    return "asyncio"

def alive(pid):
    import psutil
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
"""


@pytest.fixture
def fake_pool(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(FAKE_POOL)
    return pytester


def test_a_closed_pool_passes(fake_pool: pytest.Pytester) -> None:
    fake_pool.makepyfile(
        """
        import pytest
        from conftest import alive

        @pytest.mark.anyio
        async def test_closed(chaospool_pool):
            async with chaospool_pool(worker="w", size=2) as pool:
                pids = [w.pid for w in pool.workers]
                assert all(alive(pid) for pid in pids)
                pool.restart()
        """
    )
    fake_pool.runpytest_subprocess().assert_outcomes(passed=1)


def test_a_pool_left_open_fails_naming_pids_and_is_closed(fake_pool: pytest.Pytester) -> None:
    fake_pool.makepyfile(
        """
        import pytest
        from conftest import alive

        PIDS = []

        @pytest.mark.anyio
        async def test_left_open(chaospool_pool):
            pool = await chaospool_pool(worker="w", size=2).__aenter__()
            PIDS.extend(w.pid for w in pool.workers)
            PIDS.append(pool.restart())

        def test_then_gone():
            assert len(PIDS) == 3
            assert not [pid for pid in PIDS if alive(pid)]
        """
    )
    result = fake_pool.runpytest_subprocess()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*chaospool_pool: worker processes still alive after the test: pids [[]*,*,*[]]*"]
    )


def test_a_pool_that_will_not_close_is_killed(fake_pool: pytest.Pytester) -> None:
    fake_pool.makepyfile(
        """
        import pytest
        from conftest import alive

        PIDS = []

        @pytest.mark.anyio
        async def test_stubborn(chaospool_pool):
            async with chaospool_pool(worker="w", size=1, stubborn=True) as pool:
                PIDS.extend(w.pid for w in pool.workers)

        def test_then_gone():
            assert PIDS and not [pid for pid in PIDS if alive(pid)]
        """
    )
    result = fake_pool.runpytest_subprocess()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*still alive after the test: pids*"])


def test_the_test_failure_wins_and_leftovers_are_still_killed(fake_pool: pytest.Pytester) -> None:
    fake_pool.makepyfile(
        """
        import pytest
        from conftest import alive

        PIDS = []

        @pytest.mark.anyio
        async def test_fails_itself(chaospool_pool):
            pool = await chaospool_pool(worker="w").__aenter__()
            PIDS.extend(w.pid for w in pool.workers)
            assert False, "the test's own failure"

        def test_then_gone():
            assert PIDS and not [pid for pid in PIDS if alive(pid)]
        """
    )
    result = fake_pool.runpytest_subprocess()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*the test's own failure*"])
    result.stdout.no_fnmatch_line("*still alive after the test*")
