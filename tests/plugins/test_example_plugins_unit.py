"""The example plugins' logic against stand-in handles (fast); real pools: the integration file."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chaospool._plugins import Hooks, fault_infos, plugin_manager
from chaospool.errors import ProtocolError, WorkerCrashed
from chaospool.fault import FaultContext

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

ROOT = Path(__file__).resolve().parents[2]


class Handle:
    def __init__(self, index: int, pid: int, *, dies: bool = False, early: bool = False) -> None:
        self.index, self.pid, self.state = index, pid, "ready"
        self.dies = dies  # the worker sent its bad frame: the pool killed it
        self.early = early  # ... even before the corrupt operation was acknowledged
        self.calls: list[tuple[str, Any]] = []

    async def control(self, op: str, args: Any = None, **options: Any) -> Any:
        self.calls.append((op, args))
        if op == "corrupt" and self.early:
            self.state = "dead"
            raise ProtocolError("sent a malformed frame while running a control op", pid=self.pid)
        if op == "uncorrupt" and self.dies:
            raise WorkerCrashed("protocol error", pid=self.pid)
        return {"remaining": 1} if op == "uncorrupt" else None

    def status(self) -> str | None:
        return None if self.state == "dead" else "running"


class Pool:
    def __init__(self) -> None:
        self.listeners: list[Callable[[Any], None]] = []
        self.waited: list[tuple[int, int | None]] = []

    def owns(self, pid: int) -> bool:
        return True

    def subscribe(self, callback: Callable[[Any], None], kinds: Any = None) -> Callable[[], None]:
        self.listeners.append(callback)
        return lambda: self.listeners.remove(callback)

    def emit(self, kind: str, index: int, pid: int) -> None:
        for listener in list(self.listeners):
            listener(SimpleNamespace(kind=kind, index=index, pid=pid, data={"exitcode": -9}))

    async def wait_serving(self, index: int, *, not_pid: int | None = None, **options: Any) -> Any:
        self.waited.append((index, not_pid))
        return SimpleNamespace(index=index, pid=9000 + index)


def context(params: Any, targets: list[Handle], pool: Pool) -> FaultContext:
    """A FaultContext over stand-ins (typed loosely: they mimic WorkerHandle and Pool)."""
    loose: Any = (targets, pool)
    return FaultContext(params=params, targets=loose[0], pool=loose[1], rng=random.Random(1))


@pytest.fixture
def byzantine() -> Any:
    pm = plugin_manager([str(ROOT / "plugins" / "byzantine.py")])
    info = fault_infos(pm)["byzantine_reply"]
    assert info.describe()["params"] == {"mode": "garbage", "count": 1, "duration": 1.0}
    return info.cls


@pytest.mark.anyio
async def test_byzantine_corrupts_then_settles_each_target(byzantine: Any) -> None:
    liar, quiet = Handle(0, 100, dies=True), Handle(1, 101)
    pool = Pool()
    ctx = context(byzantine.Params(mode="truncate", count=2), [liar, quiet], pool)
    fault = byzantine()
    await fault.inject(ctx)
    token = ctx.actions.token  # the step's own: overlapping steps undo only their own filter
    assert liar.calls == [("corrupt", {"mode": "truncate", "count": 2, "token": token})]
    pool.emit("crash", 0, 100)  # the pool saw the bad frame and killed the liar
    pool.emit("crash", 5, 555)  # someone else's crash: not this fault's evidence
    liar.state = "dead"
    await fault.revert(ctx)
    assert pool.listeners == []
    assert quiet.calls[-1] == ("uncorrupt", {"token": token})
    assert pool.waited == [(0, 100)]
    assert ctx.effect["corrupted"] == [{"index": 0, "pid": 100}, {"index": 1, "pid": 101}]
    assert ctx.effect["outcomes"] == [
        {"index": 0, "pid": 100, "replaced_by": 9000},
        {"index": 1, "pid": 101, "replaced_by": None, "uncorrupt": {"remaining": 1}},
    ]
    assert ctx.effect["crashes"] == [{"index": 0, "pid": 100, "data": {"exitcode": -9}}]


@pytest.mark.anyio
async def test_byzantine_worker_dying_during_revert_is_a_replacement(byzantine: Any) -> None:
    handle, pool = Handle(0, 100, dies=True), Pool()  # still "ready" as revert starts
    ctx = context(byzantine.Params(), [handle], pool)
    fault = byzantine()
    await fault.inject(ctx)
    await fault.revert(ctx)
    assert ctx.effect["outcomes"] == [{"index": 0, "pid": 100, "replaced_by": 9000}]


@pytest.mark.anyio
async def test_byzantine_worker_lying_before_the_ack_is_the_fault_working(byzantine: Any) -> None:
    handle, pool = Handle(0, 100, early=True), Pool()
    ctx = context(byzantine.Params(), [handle], pool)
    fault = byzantine()
    await fault.inject(ctx)
    assert ctx.effect["lied_before_ack"] == [100]
    await fault.revert(ctx)
    assert ctx.effect["outcomes"] == [{"index": 0, "pid": 100, "replaced_by": 9000}]


@pytest.mark.anyio
async def test_byzantine_other_inject_errors_propagate(byzantine: Any) -> None:
    class Refusing(Handle):
        async def control(self, op: str, args: Any = None, **options: Any) -> Any:
            raise WorkerCrashed("worker 0 is dead", pid=self.pid)

    ctx = context(byzantine.Params(), [Refusing(0, 100)], Pool())
    with pytest.raises(WorkerCrashed):
        await byzantine().inject(ctx)


def test_byzantine_count_must_be_positive(byzantine: Any) -> None:
    with pytest.raises(ValueError, match="count must be at least 1"):
        byzantine.Params(count=0)


def test_events_jsonl_writes_one_line_per_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "events.jsonl"
    monkeypatch.setenv("CHAOSPOOL_EVENTS_PATH", str(out))
    pm = plugin_manager([str(ROOT / "plugins" / "events_jsonl.py")])
    hooks = Hooks(pm)
    callback = hooks.pool_event_callback()
    assert callback is not None
    step = SimpleNamespace(fault="port_crash", name="kill-one")
    ctx = SimpleNamespace(targets=[SimpleNamespace(index=1, pid=4243)])
    hooks.experiment_start(SimpleNamespace(title="demo"), 42)
    callback(SimpleNamespace(kind="checkout", time=time.monotonic(), index=0, pid=4242, data={}))
    hooks.before_fault(step, ctx)
    record = {"error": None, "injected_at": 1.0, "reverted_at": 1.2}
    hooks.after_fault(step, ctx, record)
    hooks.experiment_end(SimpleNamespace(), {"status": "completed", "ok": True})
    assert hooks.errors == []
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["type"] for line in lines] == [
        "experiment_start",
        "pool_event",
        "fault_start",
        "fault_end",
        "experiment_end",
    ]
    assert lines[0] == {"type": "experiment_start", "t": 0.0, "title": "demo", "seed": 42}
    assert (lines[1]["kind"], lines[1]["pid"]) == ("checkout", 4242)
    assert lines[2]["targets"] == [{"index": 1, "pid": 4243}]
    assert lines[3]["reverted_at"] == 1.2
    assert lines[4]["ok"] is True
    assert all(0 <= line["t"] < 10 for line in lines)
    # a second run appends, opening with its own experiment_start
    hooks.experiment_start(SimpleNamespace(title="again"), 43)
    hooks.experiment_end(SimpleNamespace(), {"status": "aborted", "ok": False})
    assert len(out.read_text().splitlines()) == 7


def test_events_jsonl_outside_a_run_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CHAOSPOOL_EVENTS_PATH", raising=False)
    hooks = Hooks(plugin_manager([str(ROOT / "plugins" / "events_jsonl.py")]))
    hooks.experiment_end(SimpleNamespace(), {"status": "failed", "ok": False})
    assert hooks.errors == []
    assert not (tmp_path / "chaospool-events.jsonl").exists()


# -- checks_csv: a report format as a plugin ------------------------------------------------


def test_checks_csv_reporter_is_found_by_name_and_writes_every_check(tmp_path: Path) -> None:
    import csv

    from chaospool._plugins import reporters

    found = reporters(plugin_manager([str(ROOT / "plugins" / "checks_csv.py")]))
    checks = [
        {"metric": "success_rate", "phase": "overall", "expected": ">= 0.95",
         "observed": 0.97, "ok": True},
        {"metric": "p99_latency", "phase": "after", "expected": "< 500ms, \"quoted\"",
         "observed": None, "ok": False},
    ]
    target = tmp_path / "checks.csv"
    found["csv"].write({"metrics": {}, "checks": checks}, str(target))
    with target.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["metric", "phase", "expected", "observed", "ok"]
    assert rows[1] == ["success_rate", "overall", ">= 0.95", "0.97", "True"]
    assert rows[2] == ["p99_latency", "after", "< 500ms, \"quoted\"", "", "False"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checks.csv"]
