"""The engine waits on the run's clock, not on the loop's timers: libuv's (uvloop) resolve to
1 ms, so a single sleep may end early -- a fault reverted at 0.9996 s of a 1 s run (seen in CI)."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from chaospool._engine import faults

pytestmark = [pytest.mark.unit, pytest.mark.anyio]


async def test_a_timer_firing_early_does_not_end_the_wait_early(
        monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    sleeps: list[float] = []

    async def early_sleep(delay: float) -> None:
        # a timer of 1 ms resolution: wakes 0.4 ms early unless less than 1 ms is left
        sleeps.append(delay)
        now[0] += delay - 0.0004 if delay > 0.001 else delay
        await anyio.lowlevel.checkpoint()

    monkeypatch.setattr(faults.anyio, "sleep", early_sleep)
    await faults.sleep_until(lambda: now[0], 1.0)
    assert now[0] >= 1.0
    assert len(sleeps) == 2  # the early wake-up, then the rest


async def test_a_deadline_already_past_does_not_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_sleep(delay: float) -> None:
        raise AssertionError(f"slept {delay}")

    monkeypatch.setattr(faults.anyio, "sleep", no_sleep)
    await faults.sleep_until(lambda: 2.0, 1.0)
