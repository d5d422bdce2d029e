"""Which event loop the engine's front doors run on: uvloop where installed, or the one chosen
with ``CHAOSPOOL_LOOP`` / ``chaospool run --loop`` (docs/design.md, "Performance")."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import EXPERIMENTS, cli, load_journal

import chaospool
from chaospool._engine import loop

# A fault that records the class of the loop it runs on (the engine's loop, seen from inside).
LOOP_PLUGIN = '''
import asyncio
import chaospool

class WhichLoop(chaospool.Fault):
    name = "which_loop"

    async def inject(self, ctx):
        ctx.record(loop=type(asyncio.get_running_loop()).__module__)

    async def revert(self, ctx):
        pass

@chaospool.hookimpl
def chaospool_register_faults():
    return [WhichLoop]
'''

EXPERIMENT: dict[str, Any] = {
    "version": 1, "duration": "0.3s", "seed": 1, "load": {"clients": 1},
    "pool": {"worker": "chaospool.workers.demo", "size": 1},
    "method": [{"fault": "which_loop", "at": "0.1s"}],
}


@pytest.fixture
def plugin(tmp_path: Path) -> str:
    path = tmp_path / "which_loop.py"
    path.write_text(LOOP_PLUGIN)
    return str(path)


def _loop_module() -> str:
    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    return loop.run(which)


@pytest.mark.unit
def test_uvloop_by_default_and_the_plain_loop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loop.ENV, raising=False)
    assert loop.choose() == "uvloop"  # installed with chaospool where it has wheels
    assert _loop_module().startswith("uvloop")
    monkeypatch.setenv(loop.ENV, " AsyncIO ")
    assert loop.choose() == "asyncio"
    assert _loop_module().startswith("asyncio")
    assert loop.choose("uvloop") == "uvloop"  # --loop wins over the environment


@pytest.mark.unit
def test_unknown_or_missing_loops_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(loop.ENV, "tokio")
    with pytest.raises(loop.LoopChoiceError, match=r"CHAOSPOOL_LOOP: unknown event loop 'tokio'"):
        loop.choose()
    with pytest.raises(loop.LoopChoiceError, match=r"--loop: unknown event loop 'qt'"):
        loop.choose("qt")
    monkeypatch.setattr(loop, "_installed", lambda module: False)
    with pytest.raises(loop.LoopChoiceError, match="uvloop is not installed"):
        loop.choose("uvloop")
    assert loop.choose("asyncio") == "asyncio"


@pytest.mark.system
def test_chaospool_run_runs_the_engine_on_the_chosen_loop(
    plugin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(loop.ENV, raising=False)
    report = chaospool.run(EXPERIMENT, plugins=[plugin])
    assert report.faults[0].effect["loop"].startswith("uvloop")
    monkeypatch.setenv(loop.ENV, "asyncio")
    report = chaospool.run(EXPERIMENT, plugins=[plugin])
    assert report.faults[0].effect["loop"].startswith("asyncio")


@pytest.mark.system
def test_cli_loop_option(plugin: str, tmp_path: Path) -> None:
    journal = tmp_path / "j.json"
    out = cli("run", str(EXPERIMENTS / "baseline.yaml"), "--set", "duration=0.3s",
              "--set", "method=[{fault: which_loop, at: 0.1s}]", "--plugin", plugin,
              "--loop", "asyncio", "-q", "--journal", str(journal), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert load_journal(journal)["faults"][0]["effect"]["loop"].startswith("asyncio")
    bad = cli("run", str(EXPERIMENTS / "baseline.yaml"), "--loop", "tokio",
              "--journal", str(journal), cwd=tmp_path, env={loop.ENV: "asyncio"})
    assert bad.returncode == 2
    assert "--loop: unknown event loop 'tokio'" in bad.stderr
    assert bad.stdout == ""  # nothing started
