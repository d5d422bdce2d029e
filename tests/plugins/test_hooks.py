"""Hooks: a plugin's exception is collected with its name, never raised into the engine."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from chaospool import hookimpl
from chaospool._plugins import Hooks, plugin_manager

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @hookimpl
    def chaospool_experiment_start(self, experiment: Any, seed: int) -> None:
        self.calls.append(("start", seed))

    @hookimpl
    def chaospool_before_fault(self, step: Any, ctx: Any) -> None:
        self.calls.append(("before", step))

    @hookimpl
    def chaospool_after_fault(self, record: dict[str, Any]) -> None:  # a subset of the args
        self.calls.append(("after", record["fault"]))

    @hookimpl
    def chaospool_pool_event(self, event: Any) -> None:
        self.calls.append(("event", event.kind))

    @hookimpl
    def chaospool_experiment_end(self, journal: dict[str, Any]) -> None:
        self.calls.append(("end", journal["status"]))


class Broken:
    @hookimpl(tryfirst=True)  # runs before Recorder: its failure must not hide Recorder
    def chaospool_before_fault(self, step: Any, ctx: Any) -> None:
        raise RuntimeError("disk full")

    @hookimpl(tryfirst=True)
    def chaospool_pool_event(self, event: Any) -> None:
        raise ValueError(f"cannot handle {event.kind}")


def test_every_hook_reaches_the_plugin() -> None:
    pm = plugin_manager()
    recorder = Recorder()
    pm.register(recorder, name="recorder")
    hooks = Hooks(pm)
    hooks.experiment_start(SimpleNamespace(title="t"), 7)
    hooks.before_fault("step-1", SimpleNamespace())
    callback = hooks.pool_event_callback()
    assert callback is not None
    callback(SimpleNamespace(kind="checkout"))
    hooks.after_fault("step-1", SimpleNamespace(), {"fault": "port_crash"})
    hooks.experiment_end(SimpleNamespace(), {"status": "completed"})
    assert recorder.calls == [
        ("start", 7),
        ("before", "step-1"),
        ("event", "checkout"),
        ("after", "port_crash"),
        ("end", "completed"),
    ]
    assert hooks.errors == []


def test_a_raising_plugin_is_collected_with_its_name() -> None:
    pm = plugin_manager()
    recorder = Recorder()
    pm.register(recorder, name="recorder")
    pm.register(Broken(), name="broken-plugin")
    hooks = Hooks(pm)
    hooks.before_fault("step-1", SimpleNamespace())
    callback = hooks.pool_event_callback()
    assert callback is not None
    for kind in ("checkout", "checkin", "checkout"):
        callback(SimpleNamespace(kind=kind))
    assert recorder.calls == [
        ("before", "step-1"),
        ("event", "checkout"),
        ("event", "checkin"),
        ("event", "checkout"),
    ]
    errors = {e.hook: e for e in hooks.errors}
    assert errors["chaospool_before_fault"].to_dict() == {
        "plugin": "broken-plugin",
        "hook": "chaospool_before_fault",
        "error": "RuntimeError: disk full",
        "count": 1,
    }
    event_error = errors["chaospool_pool_event"]
    assert event_error.count == 3  # one entry per plugin and hook, counted
    assert str(event_error) == (
        "plugin 'broken-plugin' raised in chaospool_pool_event: "
        "ValueError: cannot handle checkout (3 times)"
    )


def test_no_listener_means_no_subscription() -> None:
    assert Hooks(plugin_manager()).pool_event_callback() is None


def test_base_exceptions_are_not_swallowed() -> None:
    class Interrupting:
        @hookimpl
        def chaospool_experiment_start(self) -> None:
            raise KeyboardInterrupt

    pm = plugin_manager()
    pm.register(Interrupting())
    with pytest.raises(KeyboardInterrupt):
        Hooks(pm).experiment_start(None, 1)


class SubscribablePool:
    def __init__(self) -> None:
        self.callbacks: list[Any] = []

    def subscribe(self, callback: Any, kinds: Any = None) -> Any:
        self.callbacks.append(callback)
        return lambda: self.callbacks.remove(callback)


def test_subscribe_pool_only_when_someone_listens() -> None:
    pool = SubscribablePool()
    Hooks(plugin_manager()).subscribe_pool(pool)()
    assert pool.callbacks == []

    pm = plugin_manager()
    recorder = Recorder()
    pm.register(recorder)
    unsubscribe = Hooks(pm).subscribe_pool(pool)
    [callback] = pool.callbacks
    callback(SimpleNamespace(kind="restart"))
    unsubscribe()
    assert pool.callbacks == []
    assert recorder.calls == [("event", "restart")]
