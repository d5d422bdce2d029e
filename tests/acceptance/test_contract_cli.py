"""The command line and the experiment file as a new user meets them (docs/getting-started.md,
docs/dsl.md, docs/reports.md): the ``chaospool`` console script, its exit codes,
the DSL's defaults and errors, and every journal key with its definition.

Runs are short (about a second, small pools) so that the file stays well under a minute.
"""

from __future__ import annotations

import itertools
import json
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

import chaospool
from chaospool.testing import wait_for

pytestmark = pytest.mark.system

KINDS = {"checkout_timeout", "queue_full", "request_timeout", "worker_crashed", "circuit_open",
         "command_error", "pool_closed", "wrong_reply"}
METRICS = {"total", "succeeded", "errors", "recovered", "success_rate", "error_rate",
           "throughput", "mean_latency", "p50_latency", "p90_latency", "p95_latency",
           "p99_latency", "p999_latency", "max_latency", "worker_restarts", "recovery_time",
           "errors_by_kind"}
LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): \S")


def _command() -> list[str]:
    """The installed console script (what ``pip install .`` puts on PATH)."""
    script = Path(sys.executable).parent / "chaospool"
    if script.exists():
        return [str(script)]
    found = shutil.which("chaospool")
    return [found] if found else [sys.executable, "-m", "chaospool.cli"]


def cli(*args: str, cwd: Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_command(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def journal_of(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


QUICK = """\
version: 1
title: quick
duration: 1
pool: {worker: chaospool.workers.demo, size: 2}
load: {clients: 2, think: 1ms}
"""


# -- §2: run, outputs, exit codes ---------------------------------------------------------------


def test_version(tmp_path: Path) -> None:
    out = cli("--version", cwd=tmp_path)
    assert out.returncode == 0
    assert chaospool.__version__ in out.stdout


FULL = """\
version: 1
title: every key
seed: 7
duration: 1200ms
pool: {worker: chaospool.workers.demo, size: 3, request_timeout: 2s}
load:
  clients: 3
  retries: 2
  sessions: 4
  mix:
    - {command: echo, weight: 3, args: {x: 1}}
    - {command: ping, weight: 1}
steady_state:
  success_rate: ">= 50%"
  error_rate: "<= 0.5"
  recovered: ">= 0"
  total: "> 0"
  errors: ">= 0"
  throughput: "> 5/s"
  mean_latency: "< 1s"
  p50_latency: "< 1s"
  p90_latency: "< 1s"
  p95_latency: "< 1s"
  p99_latency: "< 1500ms"
  p999_latency: "< 2s"
  max_latency: "!= 0"
  worker_restarts: ">= 1"
  recovery_time: "< 60s"
  before: {success_rate: "== 100%"}
  during: {total: ">= 0"}
  after: {errors: "== 0"}
method:
  - {fault: slow_worker, name: slow, at: 300ms, duration: 300ms, target: {worker: 0},
     latency: 5ms}
  - {fault: port_crash, at: 400ms, target: {count: 1}}
"""


def test_run_writes_every_journal_key_with_its_definition(tmp_path: Path) -> None:
    exp = write(tmp_path / "full.yaml", FULL)
    out = cli("run", str(exp), "--html", "r.html", "--junit", "r.xml", "--verbose",
              cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    data = journal_of(tmp_path / "chaospool-journal.json")  # the default path, in the cwd
    assert data["chaospool_version"] == chaospool.__version__
    assert data["seed"] == 7
    for key in ("started_at", "ended_at"):
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", data[key]), data[key]
    assert data["experiment"]["title"] == "every key"
    assert data["experiment"]["path"] == str(exp)
    assert re.fullmatch(r"[0-9a-f]{64}", data["experiment"]["sha256"])
    assert (data["status"], data["ok"]) == ("completed", True)
    _check_metrics(data)
    _check_checks(data)
    _check_faults(data)
    _check_timeline(data)
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<svg" in html
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"https?:", html)  # self-contained
    junit = (tmp_path / "r.xml").read_text(encoding="utf-8")
    assert junit.count("<testcase") == len(data["checks"])
    assert "<failure" not in junit


def _check_metrics(data: dict[str, Any]) -> None:
    m = data["metrics"]
    assert set(m) >= METRICS
    assert m["total"] == m["succeeded"] + m["errors"] > 0
    assert set(m["errors_by_kind"]) == KINDS
    assert sum(m["errors_by_kind"].values()) == m["errors"]
    assert m["success_rate"] == pytest.approx(m["succeeded"] / m["total"])
    assert m["error_rate"] == pytest.approx(m["errors"] / m["total"])
    assert m["worker_restarts"] >= 1  # the port_crash's slot was refilled
    assert set(data["phases"]) == {"before", "during", "after"}
    for phase in data["phases"].values():
        assert set(phase) >= METRICS
        assert phase["total"] == phase["succeeded"] + phase["errors"]
    for key in ("total", "succeeded", "errors", "recovered"):
        assert sum(p[key] for p in data["phases"].values()) == m[key], key
    assert data["phases"]["before"]["total"] > 0
    assert data["phases"]["after"]["total"] > 0


def _check_checks(data: dict[str, Any]) -> None:
    checks = {(c["metric"], c["phase"]): c for c in data["checks"]}
    assert len(checks) == len(data["checks"]) == 18
    assert {c["phase"] for c in data["checks"]} == {"overall", "before", "during", "after"}
    for c in data["checks"]:
        assert set(c) >= {"metric", "phase", "expected", "observed", "ok"}
        assert c["ok"] is True
    assert checks["success_rate", "overall"]["expected"] == ">= 50%"
    assert checks["throughput", "overall"]["observed"] == data["metrics"]["throughput"]
    assert checks["success_rate", "before"]["observed"] == 1.0


def _check_faults(data: dict[str, Any]) -> None:
    slow, crash = data["faults"]
    for f in (slow, crash):
        assert set(f) >= {"fault", "name", "targets", "injected_at", "reverted_at", "effect",
                          "error"}
        assert f["error"] is None
        assert isinstance(f["effect"], dict)
        assert 0 < f["injected_at"] <= f["reverted_at"]
        for target in f["targets"]:
            assert set(target) == {"index", "pid"}
            assert isinstance(target["index"], int)
            assert target["pid"] > 0
    assert (slow["fault"], slow["name"]) == ("slow_worker", "slow")
    assert [t["index"] for t in slow["targets"]] == [0]
    assert slow["reverted_at"] - slow["injected_at"] >= 0.29  # its duration: 300ms
    assert crash["fault"] == "port_crash"
    assert len(crash["targets"]) == 1
    assert crash["injected_at"] >= 0.39  # at: 400ms


def _check_timeline(data: dict[str, Any]) -> None:
    m, buckets = data["metrics"], data["timeline"]
    for b in buckets:
        assert set(b) >= {"t", "succeeded", "errors", "recovered", "p99_latency",
                          "faults_active"}
    assert sum(b["succeeded"] for b in buckets) == m["succeeded"]
    assert sum(b["errors"] for b in buckets) == m["errors"]
    assert sum(b["recovered"] for b in buckets) == m["recovered"]
    widths = {round(b2["t"] - b1["t"], 6) for b1, b2 in itertools.pairwise(buckets)}
    assert len(widths) == 1
    width = widths.pop()
    assert 0 < width <= 1.0
    assert buckets[0]["t"] == 0  # t is the bucket's start
    assert any("slow" in b["faults_active"] for b in buckets)


def test_journal_to_stdout_and_several_experiments(tmp_path: Path) -> None:
    one = write(tmp_path / "one.yaml", QUICK.replace("duration: 1", "duration: 300ms"))
    two = write(tmp_path / "two.yaml", QUICK.replace("duration: 1", "duration: 300ms"))
    single = cli("run", str(one), "--journal", "-", cwd=tmp_path)
    assert single.returncode == 0, single.stderr
    assert json.loads(single.stdout)["experiment"]["path"] == str(one)  # stdout is the journal
    assert "PASSED" in single.stderr  # and the verdict is not lost
    both = cli("run", str(one), str(two), "--journal", "-", "--quiet", cwd=tmp_path)
    assert both.returncode == 0, both.stderr
    journals = json.loads(both.stdout)  # several: still one JSON document (an array)
    assert [j["experiment"]["path"] for j in journals] == [str(one), str(two)]
    files = cli("run", str(one), str(two), "--journal", "j.json", "-q", cwd=tmp_path)
    assert files.returncode == 0, files.stderr
    assert journal_of(tmp_path / "j.one.json")["experiment"]["path"] == str(one)
    assert journal_of(tmp_path / "j.two.json")["experiment"]["path"] == str(two)
    assert not (tmp_path / "chaospool-journal.json").exists()
    (tmp_path / "sub").mkdir()
    same_stem = write(tmp_path / "sub" / "one.yaml", one.read_text(encoding="utf-8"))
    twice = cli("run", str(one), str(same_stem), "-q", "--junit", "r.xml", cwd=tmp_path)
    assert twice.returncode == 0, twice.stderr
    assert journal_of(tmp_path / "chaospool-journal.one.json")["experiment"]["path"] == str(one)
    assert journal_of(tmp_path / "chaospool-journal.one-2.json")["experiment"]["path"] == str(
        same_stem)  # not overwritten
    assert (tmp_path / "r.one-2.xml").exists()


def test_set_and_seed_override_the_experiment(tmp_path: Path) -> None:
    exp = write(tmp_path / "q.yaml", QUICK.replace("duration: 1", "duration: 30s"))
    out = cli("run", str(exp), "--seed", "99", "--set", "duration=400ms", "--set",
              "pool.size=3", "--journal", "j.json", "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    data = journal_of(tmp_path / "j.json")
    assert data["seed"] == 99
    assert data["ended_at"] != data["started_at"]
    assert data["metrics"]["total"] > 0
    bad = cli("run", str(exp), "--set", "pool.sise=3", cwd=tmp_path)
    assert bad.returncode == 2
    assert "did you mean 'size'" in bad.stderr


def test_exit_1_when_a_tolerance_fails_and_junit_has_the_failure(tmp_path: Path) -> None:
    exp = write(tmp_path / "f.yaml", QUICK.replace("duration: 1", "duration: 300ms")
                + 'steady_state: {total: "< 0", success_rate: ">= 0.5"}\n')
    out = cli("run", str(exp), "--junit", "f.xml", "--journal", "f.json", cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    data = journal_of(tmp_path / "f.json")
    assert (data["status"], data["ok"]) == ("completed", False)
    assert [c["ok"] for c in data["checks"]] == [False, True]
    junit = (tmp_path / "f.xml").read_text(encoding="utf-8")
    assert junit.count("<testcase") == 2
    assert junit.count("<failure") == 1


def test_exit_3_when_the_pool_cannot_start(tmp_path: Path) -> None:
    # imports where validation imports it (`python -c`), fails where the pool starts workers
    write(tmp_path / "flaky_mod_x.py", "import sys\nfrom chaospool.workers.demo import *\n"
                                       "if sys.argv[0] != '-c':\n    raise RuntimeError('down')\n")
    exp = write(tmp_path / "ns.yaml", "version: 1\nduration: 1s\npool: {worker: flaky_mod_x}\n")
    out = cli("run", str(exp), "--journal", "ns.json", cwd=tmp_path)
    assert out.returncode == 3, out.stdout + out.stderr
    assert journal_of(tmp_path / "ns.json")["status"] == "failed"


def test_exit_2_when_the_worker_module_does_not_import(tmp_path: Path) -> None:
    exp = write(tmp_path / "ns.yaml", "version: 1\nduration: 1s\npool: {worker: no_such_mod_x}\n")
    out = cli("run", str(exp), "--journal", "ns.json", cwd=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.startswith(f"{exp}:3:16: pool.worker: worker module 'no_such_mod_x'")
    assert not (tmp_path / "ns.json").exists()


BOOM_PLUGIN = '''\
import dataclasses
import chaospool

class Boom(chaospool.Fault):
    """Raises in inject or revert."""
    name = "boom"

    @dataclasses.dataclass
    class Params:
        where: str = "inject"

    async def inject(self, ctx):
        if ctx.params.where == "inject":
            raise RuntimeError("kaboom")

    async def revert(self, ctx):
        if ctx.params.where == "revert":
            raise ValueError("nope")

@chaospool.hookimpl
def chaospool_register_faults():
    return [Boom]
'''


@pytest.mark.parametrize("spec", ["./boomplug.py", "boomplug"])
def test_exit_3_when_a_plugin_fault_raises_and_the_others_are_reverted(
    tmp_path: Path, spec: str
) -> None:
    # "boomplug" is a module name: the current directory is importable, as with python -m
    write(tmp_path / "boomplug.py", BOOM_PLUGIN)
    exp = write(tmp_path / "boom.yaml", """\
version: 1
duration: 1s
pool: {worker: chaospool.workers.demo, size: 2}
load: {clients: 2}
method:
  - {fault: slow_worker, at: 100ms, duration: 500ms, target: {worker: 0}, latency: 1ms}
  - {fault: boom, name: in-inject, at: 200ms}
  - {fault: boom, name: in-revert, at: 300ms, where: revert}
""")
    out = cli("run", str(exp), "--plugin", spec, "--journal", "b.json", cwd=tmp_path)
    assert out.returncode == 3, out.stdout + out.stderr
    data = journal_of(tmp_path / "b.json")
    assert data["status"] == "failed"
    errors = {f["name"]: f["error"] for f in data["faults"]}
    assert errors == {"slow_worker": None, "in-inject": "RuntimeError: kaboom",
                      "in-revert": "ValueError: nope"}
    assert data["faults"][0]["reverted_at"] is not None


def test_a_worker_module_in_the_current_directory_imports(tmp_path: Path) -> None:
    write(tmp_path / "myworker.py", "from chaospool.worker import command\n\n"
          "@command\ndef hello(args, ctx):\n    return 'hi'\n")
    exp = write(tmp_path / "mine.yaml", "version: 1\nduration: 300ms\n"
                "pool: {worker: myworker, size: 1}\n"
                "load: {clients: 1, mix: [{command: hello, weight: 1}]}\n"
                'steady_state: {success_rate: "== 1", total: "> 0"}\n')
    out = cli("run", str(exp), "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


def test_refused_calls_do_not_starve_the_pool(tmp_path: Path) -> None:
    # max_queue: 0 refuses every waiting call at once; clients without think time retry at
    # once, and the pool must still serve the calls it accepted.
    exp = write(tmp_path / "q.yaml", "version: 1\nduration: 1s\n"
                "pool: {worker: chaospool.workers.demo, size: 1, max_queue: 0}\n"
                "load: {clients: 3}\n")
    out = cli("run", str(exp), "-q", "--journal", "q.json", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    m = journal_of(tmp_path / "q.json")["metrics"]
    assert m["errors_by_kind"]["queue_full"] == m["errors"] > 0
    assert m["succeeded"] >= 50, m  # was a handful: the refused clients never yielded


# -- interrupts -----------------------------------------------------------------------------------

LONG = """\
version: 1
duration: 60s
pool: {worker: chaospool.workers.demo, size: 2, request_timeout: 30s}
load: {clients: 2, think: 1ms}
method:
  - {fault: timeout, name: freeze, at: 0s, duration: 50s, how: stop, target: {worker: 0}}
"""


@pytest.fixture
def popen(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _start(procs: list[subprocess.Popen[str]], cwd: Path, *args: str,
           env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen([*_command(), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    procs.append(proc)
    return proc


def _stopped_worker(pid: int) -> bool:
    try:
        family = psutil.Process(pid).children(recursive=True)
        return any(p.status() == psutil.STATUS_STOPPED for p in family)
    except psutil.NoSuchProcess:
        return False


@pytest.mark.timeout(40)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_reverts_reaps_and_exits_130(
    tmp_path: Path, popen: list[subprocess.Popen[str]], signum: signal.Signals
) -> None:
    exp = write(tmp_path / "long.yaml", LONG)
    second = write(tmp_path / "second.yaml", LONG)
    proc = _start(popen, tmp_path, "run", str(exp), str(second), "--journal", "j.json")
    wait_for(lambda: _stopped_worker(proc.pid), timeout=20)  # the fault is active
    family = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=10)  # docs/getting-started.md: within 10 s
    assert proc.returncode == 130, out + err
    data = journal_of(tmp_path / "j.long.json")
    assert (data["status"], data["ok"]) == ("aborted", False)
    assert data["faults"][0]["reverted_at"] is not None
    _gone, alive = psutil.wait_procs(family, timeout=5)
    assert not alive, [p.pid for p in alive]
    assert not (tmp_path / "j.second.json").exists()  # the interrupt stopped the command


@pytest.mark.timeout(40)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_before_the_run_starts_still_exits_130(
    tmp_path: Path, popen: list[subprocess.Popen[str]], signum: signal.Signals
) -> None:
    # The plugin's import blocks on a FIFO: the signal lands while experiments still load.
    fifo = tmp_path / "gate"
    os.mkfifo(fifo)
    write(tmp_path / "gate_plugin.py", f"open({str(fifo)!r}).read()\n")
    exp = write(tmp_path / "long.yaml", LONG + "plugins: [gate_plugin.py]\n")
    proc = _start(popen, tmp_path, "run", str(exp), "--journal", "j.json")
    # Opening the write end returns once the plugin has opened the read end: from then on
    # the command is loading, and the signal lands before any run could have started.
    with fifo.open("w"):
        proc.send_signal(signum)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, out + err
    assert journal_of(tmp_path / "j.json")["status"] == "aborted"


# -- dry run --------------------------------------------------------------------------------------

DRAWN = """\
version: 1
duration: 2m
pool: {worker: chaospool.workers.demo, size: 8}
method:
  - {fault: port_crash, name: kill-some, at: 1s, target: {count: 3}}
  - {fault: slow_worker, at: 2.5, target: {worker: 5}, latency: 50ms}
  - {fault: timeout, at: 1.5m, target: {fraction: 0.5}, how: block}
  - {fault: network_partition, at: 250ms, target: {workers: [0, 2]}, mode: hold}
  - {fault: memory_leak, at: 3s, target: {session: s1}}
  - {fault: slow_worker, name: everyone, at: 4s, target: all}
  - {fault: thundering_herd, at: 5s, requests: 10}
"""


def test_dry_run_prints_the_schedule_and_starts_nothing(tmp_path: Path) -> None:
    exp = write(tmp_path / "d.yaml", DRAWN)
    runs = {seed: cli("run", str(exp), "--dry-run", "--seed", seed, cwd=tmp_path)
            for seed in ("1", "2")}
    again = cli("run", str(exp), "--dry-run", "--seed", "1", cwd=tmp_path)
    for out in (*runs.values(), again):
        assert out.returncode == 0, out.stderr
    assert again.stdout == runs["1"].stdout  # same seed, same schedule
    lines = runs["1"].stdout.splitlines()
    step = next(line for line in lines if "kill-some" in line)
    assert "1s" in step
    assert "port_crash" in step
    assert "SIGKILL" in step
    assert len(re.findall(r"\d", step.split("slots", 1)[1].split("signal")[0])) == 3
    assert any("slow_worker" in ln and "slots 5" in ln and "latency" in ln for ln in lines)
    assert any("network_partition" in ln and "0,2" in ln and "hold" in ln for ln in lines)
    assert any("everyone" in ln and "0,1,2,3,4,5,6,7" in ln for ln in lines)
    assert any("session s1" in ln for ln in lines)
    # seeds draw {count: N} and {fraction: f}; across many seeds the draws must differ
    drawn = {cli("run", str(exp), "--dry-run", "--seed", str(s), cwd=tmp_path).stdout
             for s in range(3, 6)} | {runs["1"].stdout, runs["2"].stdout}
    assert len(drawn) > 1
    assert list(tmp_path.glob("*.json")) == []  # no journal


def test_dry_run_of_an_invalid_experiment_exits_2(tmp_path: Path) -> None:
    exp = write(tmp_path / "d.yaml", "version: 1\npool: {worker: chaospool.workers.demo}\n"
                "method: [{fault: port_crsh}]\n")
    out = cli("run", str(exp), "--dry-run", cwd=tmp_path)
    assert out.returncode == 2
    assert re.match(rf"{re.escape(str(exp))}:3:\d+: .*port_crash", out.stderr)


# -- faults ---------------------------------------------------------------------------------------

BUILTIN_DEFAULTS = {
    "port_crash": {"signal": "SIGKILL", "mode": "kill"},
    "timeout": {"duration": 2.0, "how": "stop"},
    "network_partition": {"duration": 1.0, "direction": "both", "mode": "drop"},
    "thundering_herd": {"requests": 1000, "command": "ping", "args": {}},
    "slow_worker": {"latency": 0.2, "jitter": 0.0, "duration": 5.0},
    "memory_leak": {"rate": 50_000_000, "limit": 500_000_000, "duration": 10.0},
}


def test_faults_json_shape_and_plugins(tmp_path: Path) -> None:
    write(tmp_path / "boomplug.py", BOOM_PLUGIN)
    out = cli("faults", "--json", "--plugin", "boomplug.py", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    entries = json.loads(out.stdout)
    assert isinstance(entries, list)
    for e in entries:
        # the contract's keys, plus what a tool needs to write a step (docs/faults.md)
        assert set(e) == {"name", "description", "params", "source", "types", "units",
                          "choices", "pool_level", "pool_level_when", "backends"}
        assert isinstance(e["params"], dict)
        assert e["description"]
    by_name = {e["name"]: e for e in entries}
    node_faults = {"node_crash", "node_freeze"}  # CONTRACT §9, the Ray backend's
    assert set(by_name) == set(BUILTIN_DEFAULTS) | {"resource_exhaustion", "boom"} | node_faults
    for name, params in BUILTIN_DEFAULTS.items():
        assert by_name[name]["params"] == params, name
        assert by_name[name]["source"] == "builtin"
    resource = by_name["resource_exhaustion"]["params"]
    assert (resource["resource"], resource["duration"]) == ("capacity", 5.0)
    assert by_name["boom"]["params"] == {"where": "inject"}
    assert by_name["boom"]["source"] not in ("builtin", "")
    text = cli("faults", cwd=tmp_path)
    assert text.returncode == 0
    assert all(name in text.stdout for name in BUILTIN_DEFAULTS)


# -- report ---------------------------------------------------------------------------------------


def test_report_re_renders_a_journal(tmp_path: Path) -> None:
    exp = write(tmp_path / "q.yaml", QUICK.replace("duration: 1", "duration: 300ms"))
    assert cli("run", str(exp), "-q", "--journal", "j.json", cwd=tmp_path).returncode == 0
    out = cli("report", "j.json", "--html", "again.html", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "<svg" in (tmp_path / "again.html").read_text(encoding="utf-8")
    assert cli("report", "q.yaml", "--html", "x.html", cwd=tmp_path).returncode == 2


# -- §3: DSL defaults and errors ------------------------------------------------------------------


def test_defaults_when_keys_are_absent() -> None:
    e = chaospool.load_experiment({"version": 1, "pool": {"worker": "chaospool.workers.demo"}})
    assert (e.seed, e.duration, e.method, e.steady_state) == (None, 30.0, (), ())
    p = e.pool
    assert (p.size, p.max_overflow, p.strategy, p.checkout_timeout, p.request_timeout) == (
        4, 0, "lifo", 5.0, 30.0)
    assert (p.max_queue, p.max_restarts, p.restart_within, p.max_memory, p.max_requests) == (
        1000, 20, 10.0, None, None)
    assert (p.overflow_idle, p.lazy, p.health_interval, p.health_timeout) == (5.0, False, 1.0,
                                                                              1.0)
    load = e.load
    assert (load.clients, load.rate, load.think, load.sessions, load.retries) == (
        4, None, 0.0, None, 0)
    assert [(m.command, m.weight) for m in load.mix] == [("ping", 1)]


def test_value_forms() -> None:
    e = chaospool.load_experiment({
        "version": 1, "duration": 2.5,
        "pool": {"worker": "chaospool.workers.demo", "max_memory": "300MB",
                 "checkout_timeout": "250ms", "request_timeout": "1.5m"},
        "load": {"rate": "500/s"},
    })
    assert (e.duration, e.pool.checkout_timeout, e.pool.request_timeout) == (2.5, 0.25, 90.0)
    assert e.pool.max_memory == 300_000_000
    assert e.load.rate == 500.0


def test_seed_absent_is_drawn_and_recorded(tmp_path: Path) -> None:
    exp = write(tmp_path / "q.yaml", QUICK.replace("duration: 1", "duration: 200ms"))
    out = cli("run", str(exp), "--journal", "j.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    seed = journal_of(tmp_path / "j.json")["seed"]
    assert isinstance(seed, int)
    assert f"--seed {seed}" in out.stdout + out.stderr  # the reproduce command


BAD_FILES = {
    "yaml.yaml": ("version: 1\npool: {worker: chaospool.workers.demo\n", ["invalid YAML"]),
    "keys.yaml": ("version: 1\npool:\n  worker: chaospool.workers.demo\n  sise: 4\n"
                  "duraton: 3s\n", ["did you mean 'size'", "did you mean 'duration'"]),
    "fault.yaml": ("version: 1\npool: {worker: chaospool.workers.demo}\n"
                   "method:\n  - {fault: port_crsh}\n  - {fault: slow_worker, latncy: 1s}\n",
                   ["port_crash", "latency"]),
    "types.yaml": ("version: 1\npool:\n  worker: chaospool.workers.demo\n  size: four\n"
                   "  lazy: maybe\n", ["four", "maybe"]),
    "units.yaml": ("version: 1\nduration: 3 parsecs\npool:\n  worker: chaospool.workers.demo\n"
                   "  max_memory: 12XB\n", ["parsecs", "12XB"]),
    "negative.yaml": ("version: 1\npool:\n  worker: chaospool.workers.demo\n"
                      "  max_memory: -5MB\nmethod:\n  - {fault: memory_leak, limit: -1MB}\n",
                      ["-5MB", "-1MB"]),
    "tag.yaml": ("version: 1\npool:\n  worker: !!python/object/apply:os.system"
                 " ['touch PWNED']\n", ["python/object"]),
    "tolerance.yaml": ("version: 1\npool: {worker: chaospool.workers.demo}\nsteady_state:\n"
                       '  success_rate: "~ 1"\n  sucess_rate: ">= 1"\n',
                       ["~ 1", "did you mean 'success_rate'"]),
}


def test_invalid_input_is_located_and_refused_before_anything_starts(tmp_path: Path) -> None:
    paths = [write(tmp_path / name, text) for name, (text, _) in BAD_FILES.items()]
    good = write(tmp_path / "good.yaml", QUICK)
    for command in ("validate", "run"):
        out = cli(command, str(good), *map(str, paths), cwd=tmp_path)
        assert out.returncode == 2, out.stdout + out.stderr
        lines = out.stderr.strip().splitlines()
        assert lines, out.stdout
        assert all(LOCATED.match(line) for line in lines), out.stderr
        for path, (name, (_, needles)) in zip(paths, BAD_FILES.items(), strict=True):
            mine = [ln for ln in lines if ln.startswith(f"{path}:")]
            assert len(mine) >= len(needles), (name, out.stderr)
            for needle in needles:
                assert any(needle in ln for ln in mine), (name, needle, out.stderr)
    assert list(tmp_path.glob("*.json")) == []
    assert not (tmp_path / "PWNED").exists()
    ok = cli("validate", str(good), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr


# -- the run's end bounds every revert --------------------------------------------------------

STORM = """\
version: 1
duration: {duration}
pool: {{worker: chaospool.workers.demo, size: 1, restart: {{max_restarts: 1, within: 120s}}}}
load: {{clients: 1, think: 1ms}}
method:
  - {{fault: port_crash, name: kill, at: 100ms, repeat: 3, every: 200ms, target: {{worker: 0}}}}
"""


def test_a_revert_waiting_through_an_open_circuit_does_not_stretch_the_run(
    tmp_path: Path,
) -> None:
    # The second kill exceeds the restart intensity: the slot stays empty for 120 s, so
    # port_crash's revert (wait until the slot serves again) cannot finish within the run,
    # and the third kill has nothing to kill.
    exp = write(tmp_path / "storm.yaml", STORM.format(duration="1s"))
    out = cli("run", str(exp), "-q", "--journal", "j.json", cwd=tmp_path, timeout=30)
    data = journal_of(tmp_path / "j.json")
    assert data["elapsed"] < 10, data["elapsed"]  # was the revert's own 15 s bound
    second = data["faults"][1]
    assert second["error"] is None, out.stdout + out.stderr
    assert second["reverted_at"] is not None
    assert second["effect"]["not_replaced"] == [0]
    assert second["effect"]["revert_cut_short"] is True
    assert data["metrics"]["errors_by_kind"]["circuit_open"] > 0
    # the third kill found no worker to kill before the run ended: journaled, never dropped
    third = data["faults"][2]
    assert third["error"].startswith("LookupError: no worker in slot(s) [0]")
    assert (data["status"], out.returncode) == ("failed", 3)


@pytest.mark.timeout(40)
def test_interrupt_while_a_revert_waits_through_an_open_circuit(
    tmp_path: Path, popen: list[subprocess.Popen[str]]
) -> None:
    exp = write(tmp_path / "storm.yaml", STORM.format(duration="60s"))
    events = tmp_path / "events.jsonl"
    proc = _start(popen, tmp_path, "run", str(exp), "--journal", "j.json", "--plugin",
                  str(Path(__file__).parents[2] / "plugins" / "events_jsonl.py"),
                  env={"CHAOSPOOL_EVENTS_PATH": str(events)})

    def processes() -> int:  # the zygote and the workers it forks
        return len(psutil.Process(proc.pid).children(recursive=True))

    # the second kill is done and no worker was restarted: its revert is waiting (what is
    # left is the zygote and its spare worker, docs/design.md "Spare worker")
    wait_for(lambda: events.exists() and '"kill#2"' in events.read_text(), timeout=20)
    wait_for(lambda: processes() == 2, timeout=20)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)  # docs/getting-started.md: within 10 s
    assert proc.returncode == 130, out + err
    data = journal_of(tmp_path / "j.json")
    assert data["status"] == "aborted"
    injected = [f for f in data["faults"] if f["injected_at"] is not None]
    assert len(injected) == 2
    assert all(f["reverted_at"] is not None for f in injected)


# -- two faults racing on one slot ----------------------------------------------------------------


class _JustDied:
    """A worker handle whose process died a moment ago: the pool has not noticed yet."""

    index, pid, state = 0, 4242, "ready"

    def status(self) -> str | None:
        return "running"  # what the pool still believes

    def signal(self, sig: int) -> None:
        raise ProcessLookupError(3, "No such process")


@pytest.mark.unit
@pytest.mark.anyio
async def test_signalling_a_worker_that_just_died_is_skipped_not_an_error() -> None:
    # Two port_crash steps on one slot at the same instant: the second kill finds the process
    # gone (ESRCH). That is a skipped target, not a fault that raised (exit 3).
    from chaospool._faults._common import act_on
    from chaospool.fault import FaultContext

    ctx = FaultContext(params=None, targets=[], pool=None, rng=None)  # type: ignore[arg-type]
    handle: Any = _JustDied()
    assert await act_on(ctx, handle, handle.signal, signal.SIGKILL) == (False, None)
    assert ctx.state["skipped"] == [0]


@pytest.mark.unit
def test_a_session_nobody_serves_yet_draws_one_slot_with_the_seed() -> None:
    from types import SimpleNamespace

    from chaospool._engine.faults import run_time_slots
    from chaospool._engine.schedule import derive_rng

    handles = [SimpleNamespace(index=i, pid=100 + i, state="ready") for i in range(4)]
    pool: Any = SimpleNamespace(workers=handles, config=SimpleNamespace(size=3),
                                worker_for_session=lambda session: None)
    target = SimpleNamespace(kind="session", session="user-42")
    scheduled: Any = SimpleNamespace(slots=None, step=SimpleNamespace(target=target))
    drawn = [run_time_slots(pool, scheduled, derive_rng(7, "session:0")) for _ in range(2)]
    assert drawn[0] == drawn[1]  # the seed decides
    assert len(drawn[0]) == 1
    assert drawn[0][0] < 3  # a core slot, never an overflow one
    pool.worker_for_session = lambda session: handles[2]
    assert run_time_slots(pool, scheduled, derive_rng(7, "session:0")) == (2,)


def test_targets_name_the_pid_acted_on_even_for_a_slot_killed_a_moment_ago(
    tmp_path: Path,
) -> None:
    exp = write(tmp_path / "rapid.yaml", """\
version: 1
duration: 600ms
pool: {worker: chaospool.workers.demo, size: 2}
load: {clients: 2}
method:
  - {fault: port_crash, at: 100ms, target: {worker: 0}, repeat: 3, every: 2ms}
""")
    out = cli("run", str(exp), "-q", "--journal", "j.json", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    faults = journal_of(tmp_path / "j.json")["faults"]
    assert len(faults) == 3
    for f in faults:
        assert f["error"] is None
        assert [t["index"] for t in f["targets"]] == [0]
        assert all(isinstance(t["pid"], int) for t in f["targets"]), f  # was null mid-restart
        # (the pid killed may be a later incarnation still: the steps race 2 ms apart)
        assert all(isinstance(k["pid"], int) for k in f["effect"]["killed"]), f


@pytest.mark.parametrize("option", ["--journal", "--html", "--junit"])
def test_an_output_path_in_a_missing_directory_is_a_usage_error(
    tmp_path: Path, option: str
) -> None:
    exp = write(tmp_path / "q.yaml", QUICK)
    out = cli("run", str(exp), option, str(tmp_path / "missing" / "out"), cwd=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr  # found before the run, not after it
    assert option in out.stderr
    assert "does not exist" in out.stderr
    assert list(tmp_path.glob("*.json")) == []


def test_a_fault_outlasting_the_run_ends_with_the_run(tmp_path: Path) -> None:
    # duration is the total run time: a stopped worker is resumed when the run's time is up,
    # not after the calls it holds have waited out their 20 s request timeout.
    exp = write(tmp_path / "outlast.yaml", """\
version: 1
duration: 1s
pool: {worker: chaospool.workers.demo, size: 2, request_timeout: 20s,
       health_check: {interval: 30s, timeout: 30s}}
load: {clients: 2}
method:
  - {fault: timeout, at: 300ms, duration: 60s, target: {worker: 0}}
""")
    out = cli("run", str(exp), "-q", "--journal", "j.json", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    data = journal_of(tmp_path / "j.json")
    assert data["elapsed"] < 10, data["elapsed"]  # was 20 s: the held call's timeout
    (fault,) = data["faults"]
    assert 1.0 <= fault["reverted_at"] < 10
    assert data["metrics"]["errors_by_kind"]["request_timeout"] == 0
