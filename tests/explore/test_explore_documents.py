"""Schedules as data and as files: drawn targets made explicit, runnable YAML written back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from explore_helpers import builtin_registry, planted

from chaospool._dsl import load
from chaospool._engine.schedule import pool_level_predicate, schedule
from chaospool._explore.document import Base
from chaospool._explore.steps import Candidate, Step, from_experiment, step_text

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

REGISTRY = builtin_registry()


def test_drawn_targets_become_the_slots_the_seed_draws() -> None:
    doc = planted(duration="5s", method=[
        {"fault": "port_crash", "at": "1s", "target": {"count": 2}},
        {"fault": "slow_worker", "at": "1s", "repeat": 3, "every": "1s", "latency": "50ms"},
        {"fault": "timeout", "at": "2s", "target": "all", "how": "block"},
        {"fault": "resource_exhaustion", "at": "3s", "duration": "500ms"},  # pool-level
    ])
    exp = load(doc, registry=REGISTRY)
    scheduled = schedule(exp, 77, acts_on_pool=pool_level_predicate(REGISTRY))
    candidate = from_experiment(exp, scheduled, REGISTRY)
    slots = {(s.step.index, s.at): s.slots for s in scheduled}
    crash, *slows, stop, capacity = candidate.steps
    assert crash.target == ("workers", tuple(sorted(slots[(0, 1.0)] or ())))
    assert [(s.at, s.repeat, s.target) for s in slows] == [
        (at, 1, ("workers", tuple(sorted(slots[(1, at)] or ())))) for at in (1.0, 2.0, 3.0)]
    assert slows[0].params == (("latency", 0.05),)
    assert (stop.target, stop.params) == (("all",), (("how", "block"),))
    assert (capacity.target, capacity.duration) == (None, 0.5)


def test_written_file_is_the_same_experiment_and_plugins_still_resolve(tmp_path: Path) -> None:
    source_dir = tmp_path / "src"
    source_dir.mkdir()
    (source_dir / "noop_plugin.py").write_text("")
    raw = planted(plugins=["noop_plugin.py"])
    base = Base(raw, str(source_dir / "exp.yaml"), str(source_dir))
    candidate = Candidate(2.0, (Step("memory_leak", 0.25, 0.5, ("workers", (2,)),
                                     (("rate", 25_000_000), ("limit", 100_000_000))),))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    text = base.text(candidate, 123, REGISTRY, comments=["first", "", "last"],
                     out_dir=str(out_dir))
    assert text.startswith("# first\n#\n# last\nversion: 1\n")
    doc = yaml.safe_load(text)
    assert doc["plugins"] == [os.path.join("..", "src", "noop_plugin.py")]
    assert "explore" not in doc
    assert (doc["seed"], doc["duration"]) == (123, "2s")
    assert doc["method"] == [{"fault": "memory_leak", "at": "250ms", "duration": "500ms",
                              "target": {"worker": 2}, "rate": "25MB/s", "limit": "100MB"}]
    exp = load(base.mapping(candidate, 123, REGISTRY), registry=REGISTRY)
    step = exp.method[0]
    assert (step.params.rate, step.params.limit, step.params.duration) == (25e6, 10**8, 0.5)
    assert step_text(candidate.steps[0], REGISTRY["memory_leak"]) == (
        "memory_leak at 250ms for 500ms on worker 2 (rate=25MB/s, limit=100MB)")


def test_the_written_file_names_the_directory_its_worker_is_imported_from(
    tmp_path: Path,
) -> None:
    """The source's worker lives beside it: a file written elsewhere lists that directory in
    ``pythonpath:`` (relative to the file), and the source's own entries follow, relocated."""
    from chaospool._explore.document import base_of

    source_dir, out_dir = tmp_path / "src", tmp_path / "out"
    (source_dir / "libs").mkdir(parents=True)
    out_dir.mkdir()
    (source_dir / "my_worker.py").write_text("")
    doc = planted(pythonpath=["libs"])
    doc["pool"] = {**doc["pool"], "worker": "my_worker"}
    path = source_dir / "exp.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    base = base_of(str(path), load(path, registry=REGISTRY))
    candidate = Candidate(1.0, (Step("timeout", 0.0, 0.5, ("workers", (1,)), ()),))

    def written(out: str | None) -> object:
        return yaml.safe_load(base.text(candidate, 5, REGISTRY, out_dir=out)).get("pythonpath")

    assert written(str(out_dir)) == [os.path.join("..", "src"), os.path.join("..", "src", "libs")]
    assert written(str(source_dir)) == ["libs"]  # beside the source: found there anyway
    assert written(None) == [str(source_dir), str(source_dir / "libs")]
    assert written(os.sep) == written(None)  # nothing in common but the root: absolute
    text = base.text(candidate, 5, REGISTRY, out_dir=str(out_dir))
    (out_dir / "f.yaml").write_text(text)
    again = load(out_dir / "f.yaml", registry=REGISTRY)  # its entries are real directories
    from chaospool._dsl.search_path import experiment_dirs

    assert experiment_dirs(again) == (str(source_dir), str(source_dir / "libs"))


def test_an_installed_worker_adds_no_pythonpath(tmp_path: Path) -> None:
    from chaospool._explore.document import base_of

    doc = planted()
    del doc["pythonpath"]
    doc["pool"] = {**doc["pool"], "worker": "chaospool.workers.demo"}
    doc["load"] = {"clients": 1}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    base = base_of(str(path), load(path, registry=REGISTRY))
    candidate = Candidate(1.0, (Step("timeout", 0.0, 0.5, ("workers", (1,)), ()),))
    out = tmp_path / "elsewhere"
    assert "pythonpath" not in yaml.safe_load(base.text(candidate, 5, REGISTRY, out_dir=str(out)))
