"""chaospool_run's bookkeeping, with the engine replaced by a recording fake (fast, exact).

The real engine runs in test_fixtures_real.py; here the point is what the fixture passes on
(seed precedence, overrides) and what a failing test's report shows.
"""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.system, pytest.mark.timeout(60)]

FAKE_ENGINE = """
import pytest
import chaospool.experiment

CALLS = []

class FakeReport:
    def __init__(self, ok, seed):
        self.ok = ok
        self._journal = {
            "seed": seed, "status": "completed", "ok": ok,
            "experiment": {"title": "fake cascade", "path": "experiments/fake.yaml"},
            "checks": [
                {"metric": "success_rate", "phase": "overall", "expected": ">= 0.95",
                 "observed": 0.8123456, "ok": ok},
                {"metric": "p99_latency", "phase": "after", "expected": "< 500ms",
                 "observed": 0.12, "ok": True},
            ],
            "faults": [{"fault": "port_crash", "name": "kill-one", "error": None}],
        }

    def to_dict(self):
        return self._journal

def fake_run(source, **options):
    CALLS.append((source, options))
    return FakeReport(source.get("ok", True), options.get("seed", 42))

async def fake_run_async(source, **options):
    return fake_run(source, **options)

@pytest.fixture(autouse=True)
def fake_engine(monkeypatch):
    CALLS.clear()
    monkeypatch.setattr(chaospool.experiment, "run", fake_run)
    monkeypatch.setattr(chaospool.experiment, "run_async", fake_run_async)
    return CALLS

@pytest.fixture
def anyio_backend():
    return "asyncio"
"""


@pytest.fixture
def fake_engine(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(FAKE_ENGINE)
    return pytester


def test_failing_experiment_shows_checks_seed_and_journal(fake_engine: pytest.Pytester) -> None:
    fake_engine.makepyfile(
        """
        def test_cascade(chaospool_run):
            report = chaospool_run({"ok": False}, seed=7)
            assert report.ok
        """
    )
    result = fake_engine.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- chaospool -*",
            "experiment: fake cascade (experiments/fake.yaml)",
            "status: completed   ok: False   seed: 7",
            "journal: *chaospool*journal-0.json",
            "reproduce: pytest test_failing_experiment_shows_checks_seed_and_journal.py"
            "::test_cascade --chaos-seed 7",
            "checks:",
            "  metric        phase    expected  observed  ok",
            "  success_rate  overall  >= 0.95   0.8123    FAILED",
            "  p99_latency   after    < 500ms   0.12      ok",
        ]
    )
    journal_line = next(line for line in result.outlines if line.startswith("journal: "))
    with open(journal_line.removeprefix("journal: ")) as f:
        assert json.load(f)["seed"] == 7


def test_passing_experiment_adds_nothing(fake_engine: pytest.Pytester) -> None:
    fake_engine.makepyfile(
        """
        def test_ok(chaospool_run):
            assert chaospool_run({"ok": True}).ok
        """
    )
    result = fake_engine.runpytest("-rA")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*- chaospool -*")


def test_unrelated_failure_still_shows_the_runs(fake_engine: pytest.Pytester) -> None:
    fake_engine.makepyfile(
        """
        def test_other(chaospool_run):
            chaospool_run({"ok": True}, seed=5)
            assert 1 == 2
        """
    )
    result = fake_engine.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*- chaospool -*", "status: completed   ok: True   seed: 5"])


@pytest.mark.parametrize(
    ("args", "marker", "call", "expected"),
    [
        ((), "", "", "absent"),
        (("--chaos-seed", "99"), "", "", 99),
        ((), "(seed=3)", "", 3),
        (("--chaos-seed", "99"), "(seed=3)", "", 99),
        (("--chaos-seed", "99"), "(seed=3)", "seed=11", 11),
    ],
    ids=["experiment-seed", "option", "marker", "option-over-marker", "call-over-all"],
)
def test_seed_precedence(
    fake_engine: pytest.Pytester,
    args: tuple[str, ...],
    marker: str,
    call: str,
    expected: object,
) -> None:
    fake_engine.makepyfile(
        f"""
        import pytest
        from conftest import CALLS

        @pytest.mark.chaos{marker}
        def test_seed(chaospool_run):
            chaospool_run({{"ok": True}}, {call})
            [(_, options)] = CALLS
            assert options.get("seed", "absent") == {expected!r}
        """
    )
    fake_engine.runpytest(*args).assert_outcomes(passed=1)


def test_overrides_and_async(fake_engine: pytest.Pytester) -> None:
    fake_engine.makepyfile(
        """
        import pytest
        from conftest import CALLS

        @pytest.mark.anyio
        async def test_async(chaospool_run):
            report = await chaospool_run.async_({"ok": True}, overrides={"duration": "1s"})
            assert report.ok
            [(_, options)] = CALLS
            assert options == {"overrides": {"duration": "1s"}}
            assert chaospool_run.journals[0]["ok"] is True
        """
    )
    fake_engine.runpytest().assert_outcomes(passed=1)


def test_sync_call_inside_an_async_test_points_to_async_(fake_engine: pytest.Pytester) -> None:
    fake_engine.makepyfile(
        """
        import pytest

        @pytest.mark.anyio
        async def test_wrong_form(chaospool_run):
            with pytest.raises(RuntimeError, match="use `await chaospool_run.async_"):
                chaospool_run({"ok": True})
        """
    )
    fake_engine.runpytest().assert_outcomes(passed=1)
