"""docs/workers.md runs as written: its worker module, its experiment, its commands."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

import chaospool
from chaospool.testing import wait_for

DOCS = Path(__file__).resolve().parents[2] / "docs"
CHAOSPOOL = Path(sys.executable).with_name("chaospool")
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(lang: str) -> list[str]:
    text = (DOCS / "workers.md").read_text(encoding="utf-8")
    return [body for kind, body in _BLOCK.findall(text) if kind == lang]


def write_example(directory: Path) -> Path:
    (module,) = blocks("python")
    (experiment,) = blocks("yaml")
    assert module.startswith("# inventory_worker.py\n")
    assert experiment.startswith("# inventory.yaml\n")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "inventory_worker.py").write_text(module, encoding="utf-8")
    path = directory / "inventory.yaml"
    path.write_text(experiment, encoding="utf-8")
    return path


@pytest.mark.system
@pytest.mark.timeout(120)
def test_the_example_validates_and_runs_from_another_directory(tmp_path: Path) -> None:
    write_example(tmp_path / "exp")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for line in blocks("sh")[0].splitlines():
        argv = shlex.split(line.replace("inventory", str(tmp_path / "exp" / "inventory"), 1))
        done = subprocess.run([str(CHAOSPOOL), *argv[1:]], cwd=elsewhere, capture_output=True,
                              text=True, timeout=90, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    journal = json.loads((elsewhere / "inventory.json").read_text(encoding="utf-8"))
    assert journal["status"] == "completed"
    assert journal["metrics"]["worker_restarts"] >= 1


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_what_the_page_says_about_ctx_sessions_errors_and_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_example(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    async def main() -> None:
        async with chaospool.Pool(worker="inventory_worker", size=1) as pool:
            reply = await pool.execute("add_item", {"name": "bolts", "count": 2}, session="s")
            assert reply == {"items": 1, "worker": 0}
            await pool.execute("sleep", {"duration": 0.01})  # registered under another name
            pool.workers[0].signal(9)  # the session state survives the crash
            assert await pool.execute("inventory", {}, session="s", retries=3) == {"bolts": 2}
            with pytest.raises(chaospool.CommandError) as raised:
                await pool.execute("fail", {"what": "nuts"})
            assert str(raised.value) == "ValueError: no such thing: 'nuts'"
            with pytest.raises(chaospool.CommandError) as unknown:
                await pool.execute("nope", {})
            assert unknown.value.remote_type == "UnknownCommand"
            # the log is read from the worker's pipe as it comes
            await wait_for(lambda: "about to fail" in "\n".join(pool.workers[0].log))

    anyio.run(main)
