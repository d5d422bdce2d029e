"""A run always ends with a journal JSON can hold and an honest status (docs/reports.md).

A plugin fault recording a set, bytes, NaN or an object still gets a journal (the value
converted); an error chaospool did not expect ends the run ``failed`` (exit 3) with the journal
written, never a traceback and exit 1 with ``status: completed``.
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import cli

import chaospool
from chaospool._engine import journal as engine_journal
from chaospool._engine import run as engine_run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ODD_PLUGIN = '''
import dataclasses, math
import chaospool

class Odd:
    def __repr__(self):
        return "<Odd>"

class Weird(chaospool.Fault):
    """Records values JSON cannot hold."""
    name = "weird"

    @dataclasses.dataclass
    class Params:
        pass

    async def inject(self, ctx):
        ctx.record(pids={t.pid for t in ctx.targets}, raw=b"\\x00ok", ratio=math.nan,
                   handle=Odd(), pair=(1, 2))

    async def revert(self, ctx):
        ctx.record(big=math.inf)

@chaospool.hookimpl
def chaospool_register_faults():
    return [Weird]
'''


def _experiment(tmp_path: Path, method: str = "[]") -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent(f"""\
        version: 1
        seed: 1
        duration: 600ms
        plugins: [odd.py]
        pool: {{worker: chaospool.workers.demo, size: 1}}
        load: {{clients: 1}}
        method: {method}
        """))
    (tmp_path / "odd.py").write_text(ODD_PLUGIN)
    return path


@pytest.mark.system
def test_plugin_fault_recording_odd_values_still_gets_a_strict_json_journal(
    tmp_path: Path,
) -> None:
    exp = _experiment(tmp_path, "[{fault: weird, at: 100ms, target: {worker: 0}}]")
    out = cli("run", str(exp), "--journal", str(tmp_path / "j.json"), "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    text = (tmp_path / "j.json").read_text()
    journal = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in journal"))
    (fault,) = journal["faults"]
    assert fault["error"] is None
    effect = fault["effect"]
    assert isinstance(effect["pids"], list)
    assert len(effect["pids"]) == 1
    assert effect["raw"] == "\x00ok"
    assert effect["ratio"] is None
    assert effect["big"] is None
    assert effect["handle"] == "<Odd>"
    assert effect["pair"] == [1, 2]


def test_an_unexpected_error_in_the_run_ends_it_failed_with_a_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_drive(*_args: Any) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(engine_run, "_drive", broken_drive)
    report = chaospool.run(_experiment(tmp_path), journal=tmp_path / "j.json")
    journal = json.loads((tmp_path / "j.json").read_text())
    assert report.status == "failed"
    assert journal["status"] == "failed"
    assert journal["error"] == "KeyError: 'a bug'"
    assert journal["ok"] is False


def test_an_error_while_summarising_still_writes_a_failed_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_summary = engine_journal._summary
    calls: list[int] = []

    def summary_breaks_once(state: Any) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise ZeroDivisionError("division by zero")
        return real_summary(state)

    monkeypatch.setattr(engine_journal, "_summary", summary_breaks_once)
    report = chaospool.run(_experiment(tmp_path), journal=tmp_path / "j.json")
    journal = json.loads((tmp_path / "j.json").read_text())
    assert report.status == journal["status"] == "failed"
    assert journal["error"] == "ZeroDivisionError: division by zero"
    assert isinstance(journal["metrics"], dict)


def test_nan_recorded_by_a_plugin_is_null_in_report_to_dict(tmp_path: Path) -> None:
    exp = _experiment(tmp_path, "[{fault: weird, at: 100ms, target: {worker: 0}}]")
    report = chaospool.run(exp)
    (fault,) = report.to_dict()["faults"]
    assert fault["effect"]["ratio"] is None
    assert not any(isinstance(v, float) and math.isnan(v) for v in fault["effect"].values())
    json.dumps(report.to_dict(), allow_nan=False)
