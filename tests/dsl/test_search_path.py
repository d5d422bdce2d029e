"""Where the worker and module-name plugins are imported from, and that the experiment's
directories are on ``sys.path`` only while they are needed (docs/dsl.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

import chaospool
from chaospool._dsl import load
from chaospool._dsl.search_path import experiment_dirs, on_sys_path, search_dirs
from chaospool.errors import ExperimentError

WORKER = """\
from chaospool.worker import command

@command
def where(args, ctx):
    return __file__
"""


def _experiment_dir(tmp_path: Path, module: str = "ux_sp_worker") -> Path:
    """An experiment with its worker module beside it (a name nothing else provides)."""
    home = tmp_path / "exp"
    home.mkdir()
    (home / f"{module}.py").write_text(WORKER)
    (home / "e.yaml").write_text(yaml.safe_dump({
        "version": 1, "duration": "300ms", "seed": 1,
        "pool": {"worker": module, "size": 1},
        "load": {"clients": 1, "think": "5ms", "mix": [{"command": "where"}]},
        "steady_state": {"success_rate": ">= 1"},
    }, sort_keys=False))
    return home


@pytest.mark.unit
def test_the_block_adds_its_directories_first_and_takes_out_only_those(tmp_path: Path) -> None:
    before = list(sys.path)
    here, there = str(tmp_path / "a"), str(tmp_path / "b")
    sys.path.append(there)  # was there before: must stay, where it was
    try:
        with on_sys_path([here, there, here]):
            assert sys.path[:2] == [here, there]
            with on_sys_path([here]):
                assert sys.path[0] == here
            assert sys.path[:2] == [here, there]
        assert sys.path == [*before, there]
        with pytest.raises(RuntimeError), on_sys_path([here]):
            raise RuntimeError("the run broke")
        assert sys.path == [*before, there]
    finally:
        sys.path.remove(there)
    assert sys.path == before


@pytest.mark.unit
def test_search_dirs_own_directory_only_when_it_holds_the_module(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "libs").mkdir()
    base = str(tmp_path)
    assert search_dirs(base, "chaospool.workers.demo", (), ()) == ()  # never shadows
    assert search_dirs(base, "mine:handlers", (), ()) == (base,)
    assert search_dirs(base, "chaospool.workers.demo", ("pkg.faults", "x.py"), ()) == (base,)
    assert search_dirs(base, "mine", (), ("libs", "libs/../libs")) == (base, f"{base}/libs")


@pytest.mark.unit
def test_a_pythonpath_entry_that_is_no_directory_is_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "libs").mkdir()
    path = tmp_path / "e.yaml"
    path.write_text("version: 1\npythonpath: [libs, nowhere]\npool: {worker: w}\n")
    with pytest.raises(ExperimentError) as info:
        load(path, registry={})
    [error] = info.value.errors
    assert (error.path, error.line, error.column) == ("pythonpath[1]", 2, 20)
    assert "no such directory" in error.message
    (tmp_path / "nowhere").mkdir()
    exp = load(path, registry={})
    assert exp.pythonpath == ("libs", "nowhere")
    assert experiment_dirs(exp) == (str(tmp_path / "libs"), str(tmp_path / "nowhere"))


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_repeated_runs_leave_sys_path_as_they_found_it(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A long-lived process (pytest, a notebook) that runs experiments again and again: the
    workers import the module from the experiment's directory during each run, and afterwards
    ``sys.path`` is what it was (0.2 kept every experiment directory it had seen)."""
    home = _experiment_dir(tmp_path)
    monkeypatch.chdir(tmp_path)  # not the experiment's directory
    before = list(sys.path)
    for _ in range(2):
        report = chaospool.run(home / "e.yaml")
        assert report.ok, report.to_dict().get("error")
        assert report.metrics.total > 0
        assert sys.path == before
    assert "ux_sp_worker" not in sys.modules  # imported by the workers, never by this process


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_an_entry_that_was_there_before_the_run_stays(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    home = _experiment_dir(tmp_path, "ux_sp_worker2")
    monkeypatch.syspath_prepend(str(home))
    before = list(sys.path)
    report = chaospool.run(home / "e.yaml")
    assert report.ok, report.to_dict().get("error")
    assert sys.path == before
