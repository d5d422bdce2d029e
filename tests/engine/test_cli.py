"""The CLI as a user meets it: exit codes, located errors, dry runs, journals, SIGINT."""

from __future__ import annotations

import importlib.metadata
import json
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from engine_helpers import EXPERIMENTS, ROOT, assert_adds_up, cli, load_journal

import chaospool
from chaospool.testing import wait_for

pytestmark = pytest.mark.system


def test_version() -> None:
    out = cli("--version")
    assert out.returncode == 0
    assert chaospool.__version__ in out.stdout
    assert importlib.metadata.version("chaospool") == chaospool.__version__


def test_validate_every_shipped_experiment() -> None:
    files = sorted(str(p) for p in EXPERIMENTS.glob("*.yaml"))
    out = cli("validate", *files)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(": ok") == len(files)


def test_bad_file_every_error_located_exit_2_nothing_started(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\n"
        "duraton: 5s\n"
        "pool:\n"
        "  worker: chaospool.workers.demo\n"
        "  size: -1\n"
        "method:\n"
        "  - {fault: port_crsh, at: 1s}\n"
        "  - {fault: slow_worker, at: 2s, latency: fast}\n",
        encoding="utf-8",
    )
    for command in ("validate", "run"):
        out = cli(command, str(bad), cwd=tmp_path)
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) >= 4, out.stderr
        assert all(line.startswith(f"{bad}:") for line in lines), out.stderr
        assert any(":2:1:" in line and "duration" in line for line in lines)  # did-you-mean
        assert any("port_crash" in line for line in lines)
        assert any("fast" in line for line in lines)
    assert not (tmp_path / "chaospool-journal.json").exists()


def test_yaml_tags_that_construct_objects_are_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.yaml"
    evil.write_text("version: 1\npool:\n  worker: !!python/object/apply:os.system [echo hi]\n",
                    encoding="utf-8")
    out = cli("run", str(evil), cwd=tmp_path)
    assert out.returncode == 2
    assert f"{evil}:3:" in out.stderr
    assert "hi" not in out.stdout


def test_dry_run_prints_the_same_schedule_for_the_same_seed(tmp_path: Path) -> None:
    exp = tmp_path / "drawn.yaml"
    exp.write_text(
        "version: 1\nduration: 30s\npool: {worker: chaospool.workers.demo, size: 8}\n"
        "method:\n  - {fault: port_crash, at: 1s, repeat: 4, every: 2s, target: {count: 2}}\n",
        encoding="utf-8",
    )
    runs = [cli("run", str(exp), "--dry-run", "--seed", str(seed), cwd=tmp_path)
            for seed in (5, 5, 6, 7, 8)]
    assert all(r.returncode == 0 for r in runs)
    assert runs[0].stdout == runs[1].stdout
    assert "port_crash#4" in runs[0].stdout
    assert "slots" in runs[0].stdout
    assert len({r.stdout.split("\n", 2)[2] for r in runs}) > 1  # other seeds, other targets
    assert not (tmp_path / "chaospool-journal.json").exists()


def test_faults_json_lists_builtins_with_defaults() -> None:
    out = cli("faults", "--json")
    assert out.returncode == 0
    catalog = {f["name"]: f for f in json.loads(out.stdout)}
    assert {"port_crash", "timeout", "network_partition", "resource_exhaustion",
            "thundering_herd", "slow_worker", "memory_leak"} <= set(catalog)
    assert catalog["slow_worker"]["params"]["latency"] == pytest.approx(0.2)
    assert catalog["port_crash"]["params"]["signal"] == "SIGKILL"
    assert all(f["source"] == "builtin" for f in catalog.values())


@pytest.mark.timeout(60)
def test_run_writes_journal_and_exit_1_when_a_tolerance_fails(tmp_path: Path) -> None:
    journal = tmp_path / "j.json"
    out = cli("run", str(EXPERIMENTS / "baseline.yaml"), "--set", "duration=1s",
              "--set", "steady_state.total=> 100000000", "--journal", str(journal),
              "--junit", str(tmp_path / "r.xml"), cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    data = load_journal(journal)
    assert data["status"] == "completed"
    assert data["ok"] is False
    assert_adds_up(data)
    failed = [c for c in data["checks"] if not c["ok"]]
    assert [c["metric"] for c in failed] == ["total"]
    # the reproduce command replays the overrides too, quoted for a shell
    assert data["reproduce"].endswith(
        "--seed 1 --set duration=1s --set 'steady_state.total=> 100000000'")
    assert "<failure" in (tmp_path / "r.xml").read_text(encoding="utf-8")


# imports where validation imports it (`python -c`), fails where the pool's workers start
WORKER_FAILING_IN_POOL = """
import sys
from chaospool.workers.demo import *
if sys.argv[0] != "-c":
    raise RuntimeError("no_such_module_xyz: the database is down")
"""


@pytest.mark.timeout(60)
def test_exit_3_when_the_pool_cannot_start(tmp_path: Path) -> None:
    (tmp_path / "flaky_worker.py").write_text(WORKER_FAILING_IN_POOL, encoding="utf-8")
    journal = tmp_path / "j.json"
    out = cli("run", str(EXPERIMENTS / "baseline.yaml"), "--set", "duration=1s",
              "--set", "pool.worker=flaky_worker", "--journal", str(journal), cwd=tmp_path)
    assert out.returncode == 3, out.stdout + out.stderr
    data = load_journal(journal)
    assert data["status"] == "failed"
    assert data["ok"] is False
    assert "no_such_module_xyz" in (data["error"] or "")
    assert data["metrics"]["total"] == 0


FAILING_PLUGIN = '''
import dataclasses
import chaospool

class Explode(chaospool.Fault):
    """A fault whose inject raises (for the exit-3 test)."""
    name = "explode"

    @dataclasses.dataclass
    class Params:
        duration: float = 0.2

    async def inject(self, ctx):
        raise RuntimeError("boom")

@chaospool.hookimpl
def chaospool_register_faults():
    return [Explode]
'''


@pytest.mark.timeout(60)
def test_exit_3_when_a_fault_raises_and_the_others_are_still_reverted(tmp_path: Path) -> None:
    (tmp_path / "explode.py").write_text(FAILING_PLUGIN, encoding="utf-8")
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        "version: 1\nduration: 2s\nplugins: [explode.py]\n"
        "pool: {worker: chaospool.workers.demo, size: 2}\n"
        "method:\n"
        "  - {fault: explode, at: 0.2s}\n"
        "  - {fault: timeout, at: 0.2s, duration: 0.5s, target: {worker: 1}}\n",
        encoding="utf-8",
    )
    out = cli("run", str(exp), "--journal", str(tmp_path / "j.json"), cwd=tmp_path)
    assert out.returncode == 3, out.stdout + out.stderr
    data = load_journal(tmp_path / "j.json")
    assert data["status"] == "failed"
    by_fault = {f["fault"]: f for f in data["faults"]}
    assert by_fault["explode"]["error"] == "RuntimeError: boom"
    assert by_fault["timeout"]["error"] is None
    assert by_fault["timeout"]["reverted_at"] is not None
    assert_adds_up(data)


@pytest.mark.timeout(60)
def test_sigint_mid_fault_reverts_reaps_and_writes_an_aborted_journal(tmp_path: Path) -> None:
    exp = tmp_path / "long.yaml"
    exp.write_text(
        "version: 1\nduration: 60s\nplugins: [" + str(ROOT / "plugins" / "events_jsonl.py") + "]\n"
        "pool: {worker: chaospool.workers.demo, size: 2, request_timeout: 30s,"
        " health_check: {interval: 30s, timeout: 30s}}\n"
        "method:\n  - {fault: timeout, name: freeze, at: 0.5s, duration: 50s, how: stop,"
        " target: {worker: 0}}\n",
        encoding="utf-8",
    )
    events = tmp_path / "events.jsonl"
    journal = tmp_path / "j.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaospool.cli", "run", str(exp), "--journal", str(journal)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**__import__("os").environ, "CHAOSPOOL_EVENTS_PATH": str(events)},
    )
    try:
        wait_for(lambda: events.exists() and '"fault_start"' in events.read_text(), timeout=30)
        family = psutil.Process(proc.pid).children(recursive=True)
        assert any(p.status() == psutil.STATUS_STOPPED for p in family), "fault not active"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)  # docs/getting-started.md: within 10 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out + err
    data = load_journal(journal)
    assert data["status"] == "aborted"
    assert data["ok"] is False
    assert data["faults"][0]["reverted_at"] is not None
    _gone, alive = psutil.wait_procs(family, timeout=5)
    assert not alive, f"left alive: {[p.pid for p in alive]}"
    assert_adds_up(data)


@pytest.mark.timeout(60)
def test_journal_on_stdout_survives_a_reader_that_closes_early(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaospool.cli", "run", str(EXPERIMENTS / "baseline.yaml"),
         "--set", "duration=0.5s", "--journal", "-"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the journal is written (`| head -c 0`)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=30) == 0
    assert "BrokenPipeError" not in err
    assert "Traceback" not in err
