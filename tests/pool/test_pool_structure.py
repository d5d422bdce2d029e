"""The pool's parts and seams (docs/design.md, "Pool"): what the composition promises.

Every option is a typed read-only property of ``Pool``; ``WorkerHandle`` reaches the pool only
through ``WorkerOps``; worker states and stop reasons are ``str`` enums that read, compare and
serialise as the strings they replaced; every backend's link answers ``rss``/``status``.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import os
import signal
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest

from chaospool._options import POOL_OPTIONS
from chaospool._pool import handle as handle_module
from chaospool._pool.backend import Measured
from chaospool._pool.backends import BACKENDS
from chaospool._pool.config import PoolConfig
from chaospool._pool.kinds import StopReason, WorkerState
from chaospool._pool.memory import MemoryBackend
from chaospool._pool.ops import WorkerOps
from chaospool._pool.surface import Meter
from chaospool._pool.worker import Partition, Worker
from chaospool.pool import Pool, PoolEvent, WorkerHandle
from chaospool.testing import wait_for

pytestmark = [pytest.mark.unit, pytest.mark.timeout(20)]

WORKER = "pool_test_workers"
CONFIG_FIELDS = [f.name for f in dataclasses.fields(PoolConfig)]


def test_the_field_list_covers_every_pool_option() -> None:
    # the list below is derived, not written out: a new option cannot slip past the next test
    assert {o.field for o in POOL_OPTIONS if o.field} <= set(CONFIG_FIELDS)


@pytest.mark.parametrize("name", CONFIG_FIELDS)
def test_every_config_field_is_a_typed_read_only_property(name: str) -> None:
    # 0.1.0: Pool.__getattr__ forwarded any config field, untyped, and hid typos until run time
    prop = inspect.getattr_static(Pool, name)
    assert isinstance(prop, property), f"Pool.{name} is not a property"
    assert prop.fset is None
    hints = typing.get_type_hints(prop.fget)
    assert hints["return"] == typing.get_type_hints(PoolConfig)[name]  # mypy sees the type
    pool = Pool(WORKER, size=3, max_overflow=1, request_timeout=1.5, backend="memory")
    assert getattr(pool, name) == getattr(pool.config, name)
    with pytest.raises(AttributeError):
        setattr(pool, name, getattr(pool.config, name))


def test_pool_has_no_attribute_forwarding() -> None:
    assert "__getattr__" not in vars(Pool)
    pool = Pool(WORKER, backend="memory")
    with pytest.raises(AttributeError):
        pool.sizes  # type: ignore[attr-defined]  # noqa: B018  reason: the lookup is the test


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, TYPE_CHECKING blocks included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_handle_imports_neither_the_pool_nor_its_halves() -> None:
    # 0.1.0: handle.py imported core (for types) and called the pool's privates
    imported = _imported_modules(Path(handle_module.__file__))
    pool_modules = {m.rsplit(".", 1)[-1] for m in imported if m.startswith("chaospool._pool.")}
    assert pool_modules <= {"ops", "worker", "kinds"}
    tree = ast.parse(inspect.getsource(handle_module))
    privates = {node.attr for node in ast.walk(tree)
                if isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")}
    assert privates == {"_ops", "_w"}  # its own slots: no pool private (_control, _psproc...)


class RecordingOps:
    """A WorkerOps that records what the handle asks of it."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def signal(self, w: Worker, sig: int) -> None:
        self.calls.append(("signal", w, sig))

    def close_channel(self, w: Worker) -> None:
        self.calls.append(("close_channel", w))

    async def control(self, w: Worker, op: str, args: Mapping[str, Any] | None,
                      timeout: float) -> Any:  # noqa: ASYNC109  reason: the seam's signature
        self.calls.append(("control", w, op, args, timeout))
        return {"ok": op}

    def partition(self, w: Worker, direction: str, mode: str) -> Partition:
        self.calls.append(("partition", w, direction, mode))
        return Partition(direction, mode, lambda part: None)

    def rss(self, w: Worker) -> int | None:
        self.calls.append(("rss", w))
        return 123

    def status(self, w: Worker) -> str | None:
        self.calls.append(("status", w))
        return "sleeping"


@pytest.mark.anyio
async def test_a_handle_does_everything_through_worker_ops() -> None:
    ops = RecordingOps()
    _: WorkerOps = ops  # the protocol is what the handle is given (checked by mypy in CI)
    w = Worker(2, overflow=True)
    h = WorkerHandle(ops, w)
    h.signal(signal.SIGSTOP)
    h.close_channel()
    assert await h.control("info", {"a": 1}, timeout=0.5) == {"ok": "info"}
    assert h.partition("to_worker", "hold").direction == "to_worker"
    assert h.rss() == 123
    assert h.status() == "sleeping"
    assert [c[0] for c in ops.calls] == ["signal", "close_channel", "control", "partition",
                                         "rss", "status"]
    assert all(c[1] is w for c in ops.calls)
    assert (h.index, h.overflow, h.state, h.node) == (2, True, "starting", None)


def test_worker_states_and_stop_reasons_read_as_their_strings() -> None:
    assert [s.value for s in WorkerState] == ["starting", "ready", "busy", "stopping", "dead"]
    assert WorkerState.READY == "ready"
    assert f"{WorkerState.BUSY}" == "busy"
    assert str(StopReason.CRASH) == "crash"
    record = {"state": WorkerState.DEAD, "reason": StopReason.HALF_OPEN}
    assert json.dumps(record) == '{"state": "dead", "reason": "half_open"}'
    assert msgspec.json.encode(record) == b'{"state":"dead","reason":"half_open"}'


@pytest.mark.anyio
async def test_a_handles_state_and_event_reasons_serialise_as_before() -> None:
    events: list[PoolEvent] = []
    async with Pool(WORKER, size=1, backend="memory", health_check=False) as pool:
        pool.subscribe(events.append)
        first = pool.workers[0]
        assert first.state == "ready"
        assert isinstance(first.state, WorkerState)
        first.signal(signal.SIGKILL)
        await pool.wait_serving(0, not_pid=first.pid)
        assert first.state == "dead"
    crash = next(e for e in events if e.kind == "crash")
    restart = next(e for e in events if e.kind == "restart")
    assert json.loads(json.dumps(dict(crash.data)))["reason"] == "crash"
    assert json.dumps({"reason": restart.data["reason"]}) == '{"reason": "crash"}'


@pytest.mark.anyio
async def test_the_memory_backend_answers_status_and_rss_from_its_link() -> None:
    async with Pool(WORKER, size=1, backend="memory", health_check=False) as pool:
        handle = pool.workers[0]
        w = pool._slots[0]
        assert w is not None
        assert isinstance(w.link, Measured)
        assert handle.status() == "running"
        assert handle.rss() is None  # a fake worker shares the pool's process
        handle.signal(signal.SIGSTOP)
        assert handle.status() == "stopped"
        handle.signal(signal.SIGCONT)
        assert handle.status() == "running"
        handle.signal(signal.SIGKILL)
        await wait_for(lambda: handle.state == "dead", timeout=5)
        assert handle.status() is None
        with pytest.raises(ProcessLookupError):
            handle.signal(signal.SIGTERM)


@pytest.mark.integration
@pytest.mark.anyio
async def test_the_process_backend_answers_status_and_rss_from_its_link() -> None:
    async with Pool(WORKER, size=1, health_check=False) as pool:
        handle = pool.workers[0]
        assert (handle.rss() or 0) > 1_000_000
        handle.signal(signal.SIGSTOP)
        await wait_for(lambda: handle.status() == "stopped", timeout=5)
        handle.signal(signal.SIGCONT)
        await wait_for(lambda: handle.status() != "stopped", timeout=5)


def test_a_backend_is_one_registered_name(monkeypatch: pytest.MonkeyPatch) -> None:
    assert list(BACKENDS) == ["process", "memory", "ray"]
    with pytest.raises(ValueError, match="backend must be 'process', 'memory', 'ray' or a "):
        Pool(WORKER, backend="nope")
    with pytest.raises(ValueError, match="ray settings need backend='ray'"):
        Pool(WORKER, backend="memory", ray={"nodes": 1})
    made: list[str] = []

    def fake(config: PoolConfig, settings: Mapping[str, Any] | None) -> MemoryBackend:
        made.append(config.worker)
        return MemoryBackend(config.worker)

    monkeypatch.setitem(BACKENDS, "fake", fake)  # what a new backend's registration is
    pool = Pool(WORKER, backend="fake")
    assert isinstance(pool._backend, MemoryBackend)
    assert made == [WORKER]


class _LinkWithoutMeasures:
    """A link of a backend written before ``Measured``: no rss(), no status()."""

    def exit_status(self) -> None:
        return None


@pytest.mark.anyio
async def test_a_link_that_cannot_measure_gets_the_answers_of_0_1_0() -> None:
    w = Worker(0, overflow=False)
    w.link = _LinkWithoutMeasures()  # type: ignore[assignment]
    w.pid = os.getpid()
    w.state = WorkerState.READY
    fake, real = Meter(real_processes=False), Meter(real_processes=True)
    assert fake.rss(w) is None
    assert fake.status(w) == "running"
    assert (real.rss(w) or 0) > 1_000_000  # psutil on the pid: this very process
    assert real.status(w) == "running"
    w.state = WorkerState.DEAD
    assert real.rss(w) is None
    assert fake.status(w) is None


@pytest.mark.anyio
async def test_the_request_paths_clock_is_its_loops_timer_clock() -> None:
    # asyncio's loop.time() is time.monotonic() in a Python method: the pool calls monotonic
    # itself there; any loop with a clock of its own (uvloop: libuv's) keeps that one
    import asyncio
    import time

    import anyio

    from chaospool._pool.flag import asyncio_loop

    async with Pool("chaospool.workers.demo", size=1, backend="memory",
                    health_check=False) as pool:
        clock = pool._state.clock
        loop = asyncio_loop()
        if loop is None:
            assert clock is anyio.current_time
        elif type(loop).time is asyncio.BaseEventLoop.time:
            assert clock is time.monotonic
            assert abs(clock() - loop.time()) < 0.01
        else:
            assert clock == loop.time
