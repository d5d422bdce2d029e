"""chaospool_run with the real engine: tiny experiments (1 s, one or two workers) in a user's
pytest session -- a passing one, a failing one with its report section, and an async one that
loads a plugin through the experiment's ``plugins:``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.system, pytest.mark.chaos, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[2]

TESTS = """
import json
import pytest

def tiny(**extra):
    return {
        "version": 1,
        "title": "tiny",
        "duration": "1s",
        "pool": {"worker": "chaospool.workers.demo", "size": 2},
        "load": {"clients": 2, "retries": 2, "mix": [{"command": "echo", "args": {"a": 1}}]},
        **extra,
    }

@pytest.mark.chaos
def test_holds(chaospool_run):
    report = chaospool_run(tiny(steady_state={"success_rate": ">= 0.99"}))
    report.assert_ok()
    assert report.metrics.total > 0

@pytest.mark.chaos
def test_deviates(chaospool_run):
    report = chaospool_run(tiny(steady_state={"total": "< 1"}), overrides={"pool.size": "1"})
    assert report.to_dict()["seed"] == 5  # from --chaos-seed
    report.assert_ok()

@pytest.mark.anyio
async def test_plugin_fault(chaospool_run):
    report = await chaospool_run.async_(tiny(
        plugins=[BYZANTINE],
        steady_state={"success_rate": "== 1", "worker_restarts": ">= 1"},
        method=[{"fault": "byzantine_reply", "at": "300ms", "duration": "300ms",
                 "target": {"worker": 0}}],
    ), seed=9)
    report.assert_ok()
    [fault] = report.to_dict()["faults"]
    [outcome] = fault["effect"]["outcomes"]
    assert outcome["replaced_by"] not in (None, outcome["pid"])
"""


def test_experiments_in_a_users_tests(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        "import pytest\n\n@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n"
    )
    byzantine = str(ROOT / "plugins" / "byzantine.py")
    pytester.makepyfile(TESTS.replace("BYZANTINE", repr(byzantine)))
    result = pytester.runpytest_subprocess("--chaos-seed", "5", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_deviates _*",
            "*- chaospool -*",
            "experiment: tiny",
            "status: completed   ok: False   seed: 5",
            "journal: *journal-0.json",
            "reproduce: pytest test_experiments_in_a_users_tests.py::test_deviates --chaos-seed 5",
            "checks:",
            "  metric  phase    expected  observed  ok",
            "  total   overall  < 1       * FAILED",
        ]
    )
    journal_line = next(line for line in result.outlines if line.startswith("journal: "))
    journal = json.loads(Path(journal_line.removeprefix("journal: ")).read_text())
    assert journal["ok"] is False
    assert journal["checks"][0]["metric"] == "total"


INFO_PLUGIN = '''
import dataclasses
from chaospool.fault import Fault
from chaospool.hookspecs import hookimpl

class Census(Fault):
    """Asks each target worker for its own pid and RSS (the control surface's info op)."""
    name = "census"

    @dataclasses.dataclass
    class Params:
        pass

    async def inject(self, ctx):
        ctx.record(seen=[await t.control("info") for t in ctx.targets])

@hookimpl
def chaospool_register_faults():
    return [Census]
'''


def test_entry_point_plugin_in_a_users_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = pytester.mkdir("site")
    (site / "census_faults.py").write_text(INFO_PLUGIN)
    info = site / "census_dist-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: census-dist\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[chaospool]\ncensus = census_faults\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    pytester.makepyfile(
        """
        def test_census(chaospool_run):
            report = chaospool_run({
                "version": 1,
                "duration": "1s",
                "pool": {"worker": "chaospool.workers.demo", "size": 1},
                "method": [{"fault": "census", "at": "200ms", "target": {"worker": 0}}],
            })
            [fault] = report.to_dict()["faults"]
            assert fault["error"] is None
            [target] = fault["targets"]
            [seen] = fault["effect"]["seen"]
            assert seen["pid"] == target["pid"]
            assert seen["rss"] > 0
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
