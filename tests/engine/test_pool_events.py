"""The journal's ``events``: the pool's own reactions, with their times, for the timeline."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import chaospool
from chaospool._engine.events import EventLog


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_kill_shows_up_as_a_crash_and_a_replacement_with_times() -> None:
    report = chaospool.run({
        "version": 1, "seed": 1, "duration": "1.5s",
        "pool": {"worker": "chaospool.workers.demo", "size": 2},
        "load": {"clients": 2, "think": "5ms"},
        "method": [{"fault": "port_crash", "at": "0.5s", "target": {"worker": 0}}],
    })
    journal = report.to_dict()
    events = journal["events"]
    kinds = [e["kind"] for e in events]
    assert "crash" in kinds
    assert "restart" in kinds
    crash = next(e for e in events if e["kind"] == "crash")
    killed = journal["faults"][0]["targets"][0]
    assert crash["index"] == killed["index"] == 0
    assert crash["pid"] == killed["pid"]
    assert 0.5 <= crash["t"] < 1.5  # on the run's clock, after the injection
    assert journal["events_dropped"] == 0


@pytest.mark.unit
def test_the_event_list_is_bounded_and_skips_per_call_events() -> None:
    log = EventLog(limit=3)
    for i in range(10):
        log.note(SimpleNamespace(kind="checkout", time=10.0 + i, index=0, pid=1, data={}), 10.0)
        log.note(SimpleNamespace(kind="crash", time=10.0 + i, index=0, pid=1,
                                 data={"exitcode": None, "signal": 9, "big": "x" * 100}), 10.0)
    assert [e["t"] for e in log.items] == [0.0, 1.0, 2.0]
    assert log.items[0] == {"t": 0.0, "kind": "crash", "index": 0, "pid": 1,
                            "exitcode": None, "signal": 9}
    assert log.dropped == 7
