"""``chaospool explore`` and ``chaospool shrink`` end to end, through the installed command:
dry-run determinism, exit codes, and the planted weakness found, replayed and shrunk."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from explore_helpers import PLANTED_PAUSE, PLANTED_SEED, REPO, builtin_registry, planted

from chaospool._dsl import load
from chaospool.testing import wait_for

pytestmark = [pytest.mark.system]

LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): \S")


def _command() -> list[str]:
    script = Path(sys.executable).parent / "chaospool"
    if script.exists():
        return [str(script)]
    found = shutil.which("chaospool")
    return [found] if found else [sys.executable, "-m", "chaospool.cli"]


def cli(cwd: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FRAGILE_WORKER_PAUSE": PLANTED_PAUSE}
    return subprocess.run([*_command(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False, env=env)


def write(path: Path, doc: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return str(path)


@pytest.mark.timeout(60)
def test_dry_run_is_byte_identical_for_a_seed_and_each_document_runnable(tmp_path: Path) -> None:
    exp = write(tmp_path / "e.yaml", planted(explore={"steps": "1..3", "budget": 9}))
    first = cli(tmp_path, "explore", exp, "--dry-run", "--seed", "11")
    second = cli(tmp_path, "explore", exp, "--dry-run", "--seed", "11")
    other = cli(tmp_path, "explore", exp, "--dry-run", "--seed", "12")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert first.stdout != other.stdout
    docs = first.stdout.split("---\n")
    assert len(docs) == 9
    registry = builtin_registry()
    for number, text in enumerate(docs, start=1):
        doc = yaml.safe_load(text)
        assert "explore" not in doc
        experiment = load(doc, registry=registry)  # an ordinary, valid experiment
        assert experiment.method
        assert f"--seed 11 --schedule {number}\n" in text
    # --schedule K prints exactly the K-th document, whatever --budget says
    only = cli(tmp_path, "explore", exp, "--dry-run", "--seed", "11", "--schedule", "7",
               "--budget", "3")
    assert only.stdout == docs[6]
    assert not (tmp_path / "chaospool-journal.json").exists()


@pytest.mark.timeout(30)
def test_invalid_explore_section_exits_2_located(tmp_path: Path) -> None:
    exp = write(tmp_path / "bad.yaml", planted(explore={"faults": ["timeot"], "steps": "2..1"}))
    result = cli(tmp_path, "explore", exp, "--dry-run")
    assert result.returncode == 2
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2
    assert all(LOCATED.match(line) for line in errors), errors
    assert "did you mean 'timeout'" in result.stderr
    assert cli(tmp_path, "shrink", str(tmp_path / "missing.yaml")).returncode == 2
    tiny = write(tmp_path / "tiny.yaml", planted(explore={
        "faults": ["port_crash"], "steps": 1, "window": ["500ms", "500ms"]}))
    beyond = cli(tmp_path, "explore", tiny, "--schedule", "50")  # 2 signals x 2 modes x 3 slots
    assert beyond.returncode == 2
    assert "there is no schedule 50" in beyond.stderr


@pytest.mark.timeout(60)
def test_node_faults_on_a_process_pool_are_refused_by_validate_run_and_explore(
    tmp_path: Path,
) -> None:
    exp = write(tmp_path / "nodes.yaml", planted(
        method=[{"fault": "node_crash", "at": "100ms"}],
        explore={"faults": ["timeout", "node_freeze"]}))
    journal = tmp_path / "j.json"
    for args in (("validate", exp), ("run", exp, "--journal", str(journal)),
                 ("explore", exp, "--journal", str(journal))):
        result = cli(tmp_path, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        errors = result.stderr.strip().splitlines()
        assert [LOCATED.match(line) is not None for line in errors] == [True, True], errors
        assert all("needs 'pool.backend: ray'" in line for line in errors)
        assert not journal.exists()  # nothing started


@pytest.mark.timeout(60)
def test_explore_exits_0_when_no_schedule_fails(tmp_path: Path) -> None:
    exp = write(tmp_path / "calm.yaml", planted(duration="500ms", explore={
        "faults": ["slow_worker"], "steps": 1, "budget": 2, "window": ["10%", "50%"]}))
    result = cli(tmp_path, "explore", exp, "--seed", "3", "--journal", str(tmp_path / "j.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "schedule 2/2: slow_worker" in result.stdout
    assert "no schedule failed a tolerance (2 run, seed 3)" in result.stdout


@pytest.mark.timeout(60)
def test_shrink_exits_1_when_the_input_does_not_fail(tmp_path: Path) -> None:
    doc = planted(duration="500ms", method=[{"fault": "slow_worker", "at": "100ms",
                                             "duration": "100ms", "latency": "10ms"}])
    exp = write(tmp_path / "fine.yaml", doc)
    out = tmp_path / "min.yaml"
    result = cli(tmp_path, "shrink", exp, "--runs", "2", "--min-fails", "1", "--out", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "nothing written" in result.stdout
    assert not out.exists()


@pytest.mark.timeout(90)
def test_planted_weakness_found_shrunk_and_the_minimal_file_fails_under_run(
    tmp_path: Path,
) -> None:
    """The fragile worker breaks only when slot 1 is stopped long enough: explore finds it at
    schedule 2 of the fixed seed, and shrink returns exactly that one step, made smaller."""
    exp = write(tmp_path / "planted.yaml", planted())
    failing, journal = tmp_path / "failing.yaml", tmp_path / "j.json"
    found = cli(tmp_path, "explore", exp, "--seed", str(PLANTED_SEED), "--out", str(failing),
                "--journal", str(journal), "--runs", "1", "--min-fails", "1", "--max-runs", "10",
                timeout=80)
    assert found.returncode == 1, found.stdout + found.stderr
    lines = found.stdout.strip().splitlines()
    assert "schedule 1/6: timeout at 350ms for 50ms on all -> ok (0 passed before it)" in lines
    assert f"replay: chaospool explore {exp} --seed {PLANTED_SEED} --schedule 2" in lines
    minimal = tmp_path / "chaospool-minimal.yaml"  # beside --out
    assert lines[-1] == f"minimal: {minimal}"
    assert f"run it: chaospool run {minimal}" in lines
    assert journal.exists()
    drawn = load(str(failing), registry=builtin_registry())
    assert [(s.fault, s.target.workers) for s in drawn.method] == [("timeout", (0, 1))]
    before = drawn.method[0]
    assert re.search(r"# reproduction: failed success_rate \(overall\) in 1 of 1",
                     minimal.read_text())
    result = load(str(minimal), registry=builtin_registry())
    assert len(result.method) == 1
    step = result.method[0]
    assert (step.fault, step.target.kind, step.target.workers) == ("timeout", "worker", (1,))
    assert step.duration is not None
    assert before.duration is not None
    assert step.at + step.duration < before.at + before.duration  # times shrunk
    assert result.duration <= drawn.duration
    again = cli(tmp_path, "run", str(minimal), "--journal", str(tmp_path / "run.json"))
    assert again.returncode == 1, again.stdout + again.stderr  # an ordinary, failing experiment


@pytest.mark.timeout(60)
def test_no_shrink_writes_the_failing_schedule_and_ends_with_the_replay_line(
    tmp_path: Path,
) -> None:
    exp = write(tmp_path / "planted.yaml", planted())
    out = tmp_path / "failing.yaml"
    result = cli(tmp_path, "explore", exp, "--seed", str(PLANTED_SEED), "--schedule", "2",
                 "--no-shrink", "--out", str(out), "--journal", str(tmp_path / "j.json"))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("schedule 2/2: timeout")  # only that schedule ran
    assert lines[-1] == f"replay: chaospool explore {exp} --seed {PLANTED_SEED} --schedule 2"
    assert out.exists()
    assert not (tmp_path / "chaospool-minimal.yaml").exists()


@pytest.mark.timeout(120)
def test_written_files_run_from_anywhere_with_the_worker_beside_the_source(
    tmp_path: Path,
) -> None:
    """The worker module lives only beside the source experiment; explore runs from a third
    directory and writes to a fourth: the failing and minimal files each find the worker
    wherever they are run from (0.2 wrote files whose worker did not import)."""
    source, out_dir, cwd, later = (tmp_path / d for d in ("src", "out", "cwd", "later"))
    for folder in (source, out_dir, cwd, later):
        folder.mkdir()
    shutil.copy(REPO / "experiments" / "fragile_worker.py", source / "ux_fragile.py")
    doc = planted()
    del doc["pythonpath"]  # nothing but the experiment's own directory holds the worker
    doc["pool"] = {**doc["pool"], "worker": "ux_fragile"}
    exp = write(source / "planted.yaml", doc)
    failing = out_dir / "failing.yaml"
    found = cli(cwd, "explore", exp, "--seed", str(PLANTED_SEED), "--schedule", "2",
                "--out", str(failing), "--journal", str(out_dir / "j.json"), "--runs", "1",
                "--min-fails", "1", "--max-runs", "2", timeout=100)
    assert found.returncode == 1, found.stdout + found.stderr
    minimal = out_dir / "chaospool-minimal.yaml"
    for written in (failing, minimal):
        assert yaml.safe_load(written.read_text())["pythonpath"] == [os.path.join("..", "src")]
        checked = cli(later, "validate", str(written))
        assert checked.returncode == 0, checked.stdout + checked.stderr
    again = cli(later, "run", str(minimal),
                "--journal", str(later / "run.json"))
    assert again.returncode == 1, again.stdout + again.stderr  # it fails, it does not error
    beside = cli(out_dir, "run", minimal.name, "--journal", str(later / "run2.json"))
    assert beside.returncode == 1, beside.stdout + beside.stderr


def _has_workers(proc: subprocess.Popen[str]) -> bool:
    try:
        return len(psutil.Process(proc.pid).children(recursive=True)) >= 3
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.mark.timeout(40)
def test_sigint_reverts_reaps_and_exits_130(tmp_path: Path,
                                            started: list[subprocess.Popen[str]]) -> None:
    exp = write(tmp_path / "long.yaml", planted(duration="30s", explore={
        "faults": ["slow_worker"], "steps": 1, "budget": 3, "window": ["0%", "10%"]}))
    proc = subprocess.Popen([*_command(), "explore", exp, "--journal", str(tmp_path / "j.json")],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started.append(proc)
    wait_for(lambda: _has_workers(proc), timeout=20)
    family = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 130, out + err
    _gone, alive = psutil.wait_procs(family, timeout=5)
    assert not alive
    data = yaml.safe_load((tmp_path / "j.json").read_text())  # JSON is YAML
    assert data["status"] == "aborted"

