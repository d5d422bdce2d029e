"""validate as a user meets it: typos are input errors (exit 2, located, with a did-you-mean),
never a run that looks like the pool's failure; absurd sizes are refused with the limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import cli

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


TYPO = """\
version: 1
duration: 2s
pool:
  worker: chaospool.workers.demo
load:
  mix:
    - {command: pingg, weight: 1}
    - {command: echo, weight: 1}
method:
  - fault: thundering_herd
    at: 1s
    requests: 10
    command: ehco
"""


def test_misspelt_commands_are_located_errors_with_did_you_mean(tmp_path: Path) -> None:
    path = write(tmp_path, "typo.yaml", TYPO)
    for command in ("validate", "run"):
        out = cli(command, str(path), "--journal", str(tmp_path / "j.json"), cwd=tmp_path) \
            if command == "run" else cli(command, str(path), cwd=tmp_path)
        assert out.returncode == 2, out.stdout + out.stderr
        lines = out.stderr.strip().splitlines()
        assert lines == [
            f"{path}:7:17: load.mix[0].command: unknown command 'pingg': worker "
            "'chaospool.workers.demo' has no such command (did you mean 'ping'?)",
            f"{path}:13:14: method[0].command: unknown command 'ehco': worker "
            "'chaospool.workers.demo' has no such command (did you mean 'echo'?)",
        ], out.stderr
    assert not (tmp_path / "j.json").exists()  # nothing started


def test_misspelt_worker_module_is_exit_2_on_pool_worker_not_a_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "mod.yaml", "version: 1\npool:\n  worker: chaospool.workers.demoo\n")
    for command in ("validate", "run"):
        out = cli(command, str(path), cwd=tmp_path)
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith(f"{path}:3:11: pool.worker: worker module "
                                     "'chaospool.workers.demoo' cannot be imported"), out.stderr
        assert "did you mean 'chaospool.workers.demo'?" in out.stderr
        assert "Traceback" not in out.stderr
        assert "reproduce" not in out.stdout + out.stderr


WORKER = """\
from chaospool.worker import command
print("importing prints are harmless")

@command
def hello(args, ctx):
    return "hi"
"""


def test_worker_beside_the_experiment_is_found_and_capacity_needs_sleep(tmp_path: Path) -> None:
    """The worker module is looked up in the experiment's directory first (the user runs
    from elsewhere); resource_exhaustion's capacity hold calls `sleep`, which it lacks."""
    write(tmp_path, "exp/my_worker.py", WORKER)
    path = write(tmp_path, "exp/cap.yaml",
                 "version: 1\npool: {worker: my_worker}\nload:\n  mix: [{command: hello}]\n"
                 "method:\n  - {fault: resource_exhaustion, at: 1s}\n")
    out = cli("validate", str(path), cwd=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.strip() == (
        f"{path}:6:5: method[0].resource: unknown command 'sleep' (fault 'resource_exhaustion' "
        "calls it): worker 'my_worker' has no such command (expected one of: hello)")


def test_default_mix_names_ping_and_says_it_is_the_default(tmp_path: Path) -> None:
    write(tmp_path, "my_worker.py", WORKER)
    path = write(tmp_path, "d.yaml", "version: 1\npool: {worker: my_worker}\n")
    out = cli("validate", str(path), cwd=tmp_path)
    assert out.returncode == 2
    assert "unknown command 'ping' (the default load.mix calls it" in out.stderr


def test_validate_takes_plugin_and_a_bad_plugin_is_blamed_on_the_option(tmp_path: Path) -> None:
    path = write(tmp_path, "u.yaml",
                 "version: 1\npool: {worker: chaospool.workers.demo}\n"
                 "method:\n  - {fault: freeze, at: 1s}\n")
    out = cli("validate", str(path), cwd=tmp_path)
    assert out.returncode == 2
    assert "unknown fault 'freeze'" in out.stderr
    assert "--plugin" in out.stderr
    assert "plugins:" in out.stderr
    out = cli("validate", "--plugin", "nope.py", str(path), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == f"--plugin nope.py: no such file: {tmp_path / 'nope.py'}"
    write(tmp_path, "freeze.py", FREEZE_PLUGIN)
    out = cli("validate", "--plugin", "freeze.py", str(path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{path}: ok (1 fault step)"


FREEZE_PLUGIN = """\
import dataclasses
import chaospool

class Freeze(chaospool.Fault):
    name = "freeze"

    @dataclasses.dataclass
    class Params:
        pass

    async def inject(self, ctx):
        pass

    async def revert(self, ctx):
        pass

@chaospool.hookimpl
def chaospool_register_faults():
    return [Freeze]
"""


HUGE = """\
version: 1
pool:
  worker: chaospool.workers.demo
  size: 100000
load:
  clients: 100000000
  mix:
    - {command: echo, args: {n: 123456789012345678901234567890}}
method:
  - {fault: thundering_herd, at: 1s, requests: 1000000000}
"""


def test_sizes_that_would_take_the_machine_down_are_refused_with_the_limit(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "huge.yaml", HUGE)
    out = cli("validate", str(path), cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 4, out.stderr
    size, clients, args, herd = lines
    assert size.startswith(f"{path}:4:9: pool.size: a pool of 100000 workers")
    assert "at most" in size
    assert "because" in size
    assert clients.startswith(f"{path}:6:12: load.clients: 100000000 clients")
    assert "at most 100000" in clients
    assert args.startswith(f"{path}:8:29: load.mix[0].args: these arguments cannot be sent")
    assert "64 bits" in args
    assert herd.startswith(f"{path}:10:48: method[0].requests: 1000000000 simultaneous")
    assert "at most 1000000" in herd


def test_self_referencing_alias_is_a_located_error_not_a_recursion_error(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml",
                 "version: 1\npool:\n  worker: chaospool.workers.demo\nload:\n  mix:\n"
                 "    - &m {command: echo, args: {self: *m}}\n")
    out = cli("validate", str(path), cwd=tmp_path)
    assert out.returncode == 2
    assert "RecursionError" not in out.stderr
    assert out.stderr.startswith(f"{path}:6:7: load.mix[0].args.self: this YAML alias refers "
                                 "to a node that contains it")
