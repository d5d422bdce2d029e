"""``chaospool.testing.assert_explores_ok``: explore inside a test, fail with the minimal YAML."""

from __future__ import annotations

import pytest
import yaml
from explore_helpers import PLANTED_PAUSE, PLANTED_SEED, builtin_registry, planted

from chaospool._dsl import load
from chaospool.testing import assert_explores_ok, assert_explores_ok_async

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(autouse=True)
def _short_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    # workers inherit the environment as it is when the pool starts
    monkeypatch.setenv("FRAGILE_WORKER_PAUSE", PLANTED_PAUSE)


def test_a_failing_schedule_fails_the_test_with_the_minimal_yaml() -> None:
    with pytest.raises(AssertionError) as info:
        assert_explores_ok(planted(), seed=PLANTED_SEED, budget=3, max_runs=4)
    message = str(info.value)
    assert message.startswith(f"explore: schedule 2 of seed {PLANTED_SEED} failed success_rate")
    _head, _, text = message.partition("`chaospool run` it):\n\n")
    assert text, message
    minimal = yaml.safe_load(text)
    assert "explore" not in minimal
    experiment = load(minimal, registry=builtin_registry())
    assert [s.fault for s in experiment.method] == ["timeout"]
    assert experiment.method[0].target.workers == (1,)  # shrunk from workers [0, 1]


@pytest.mark.anyio
async def test_async_variant_passes_when_nothing_fails() -> None:
    calm = planted(duration="500ms", explore={"faults": ["slow_worker"], "steps": 1,
                                              "budget": 1, "window": ["10%", "50%"]})
    await assert_explores_ok_async(calm, seed=1, budget=1)


@pytest.mark.anyio
async def test_the_sync_helper_refuses_to_run_inside_an_event_loop() -> None:
    with pytest.raises(RuntimeError, match="assert_explores_ok_async"):
        assert_explores_ok(planted())
