"""Suite-wide guards: every test is bounded in time (pytest-timeout, see pyproject) and leaves
no child process behind."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psutil
import pytest

pytest_plugins: list[str] = []


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    before = _children()
    yield
    # A pool's exit returns only after its workers are reaped, so nothing new may remain.
    # Give processes already signalled a brief chance to finish exiting (not a sync sleep:
    # psutil.wait_procs returns as soon as they are gone).
    new = [psutil.Process(pid) for pid in _children() - before if psutil.pid_exists(pid)]
    _gone, alive = psutil.wait_procs(new, timeout=3.0)
    for p in alive:
        p.kill()
    assert not alive, f"test left child processes alive: {[p.pid for p in alive]}"


# Every event loop anyio supports. The tiers that drive the pool (pool, faults, probe) run on all
# of them, so that a loop-specific assumption (uvloop's transports are not asyncio.Transport)
# cannot come back; the rest of the suite stays on plain asyncio to keep CI short.
EVENT_LOOPS = [
    pytest.param("asyncio", id="asyncio"),
    pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    pytest.param("trio", id="trio"),
]
ALL_LOOPS_TIERS = ("pool", "faults", "probe")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "anyio_backend" not in metafunc.fixturenames:
        return
    explicit = any("anyio_backend" in m.args[0]
                   for m in metafunc.definition.iter_markers("parametrize"))
    if not explicit and metafunc.definition.path.parent.name in ALL_LOOPS_TIERS:
        metafunc.parametrize("anyio_backend", EVENT_LOOPS, indirect=True)


@pytest.fixture
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return getattr(request, "param", "asyncio")


@pytest.fixture(autouse=True)
def _outcomes_add_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every journal built in a test keeps ok + fail + info = total (docs/reports.md)."""
    from chaospool._engine import session
    from chaospool._probe.summary import accounting_errors

    build = session.build_journal

    def checked(*args: Any, **kwargs: Any) -> dict[str, Any]:
        journal = build(*args, **kwargs)
        assert not accounting_errors(journal), accounting_errors(journal)
        return journal

    monkeypatch.setattr(session, "build_journal", checked)
