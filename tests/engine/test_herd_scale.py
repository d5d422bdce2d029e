"""10,000 concurrent herd callers: every one ends with exactly one recorded outcome."""

from __future__ import annotations

import pytest

import chaospool

pytestmark = [pytest.mark.performance, pytest.mark.chaos]


@pytest.mark.timeout(90)
def test_ten_thousand_simultaneous_callers_all_accounted_for() -> None:
    report = chaospool.run({
        "version": 1, "title": "10k herd", "duration": "4s", "seed": 1,
        "pool": {"worker": "chaospool.workers.demo", "size": 4, "max_queue": 5000,
                 "checkout_timeout": "20s"},
        "load": {"clients": 1},
        "method": [{"fault": "thundering_herd", "at": "0.5s", "requests": 10_000}],
    })
    assert report.status == "completed", report.to_dict().get("error")
    effect = report.faults[0].effect
    assert effect["requests"] == 10_000
    # max_queue 5000 < 10 000 callers: some are refused at once, none is lost
    assert effect["succeeded"] + sum(effect["errors_by_kind"].values()) == 10_000
    assert effect["errors_by_kind"].get("queue_full", 0) > 0
    assert effect["max_queue_depth"] <= 5000
