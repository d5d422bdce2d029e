"""The explore: section: defaults, values, located errors; run ignores it."""

from __future__ import annotations

import pathlib

import pytest
import yaml
from explore_helpers import builtin_registry, planted

from chaospool._dsl import load
from chaospool._dsl.model import ExploreSpec
from chaospool.errors import ExperimentError

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

REGISTRY = builtin_registry()


def test_absent_section_is_none_and_defaults_apply() -> None:
    doc = planted()
    del doc["explore"]
    exp = load(doc, registry=REGISTRY)
    assert exp.explore is None
    assert ExploreSpec().bounds(10.0) == (1.0, 7.0)  # the documented default window


def test_values_are_read() -> None:
    exp = load(planted(explore={"faults": ["timeout"], "steps": 2, "duration": "800ms",
                                "budget": 4, "window": ["100ms", "50%"]}), registry=REGISTRY)
    spec = exp.explore
    assert spec == ExploreSpec(("timeout",), 2, 2, 0.8, 4, (("offset", 0.1), ("fraction", 0.5)))
    assert spec.bounds(spec.run_duration(exp.duration)) == (0.1, 0.4)


def test_run_ignores_the_section_and_keeps_the_method() -> None:
    doc = planted(method=[{"fault": "slow_worker", "at": "100ms"}])
    exp = load(doc, registry=REGISTRY)
    assert [s.fault for s in exp.method] == ["slow_worker"]
    assert exp.explore is not None


def test_errors_are_located_with_file_line_column(tmp_path: pathlib.Path) -> None:
    doc = planted(explore={"faults": ["timeout", "port_crsh"], "steps": "3..1", "budgett": 2,
                           "window": ["10%", "2s"]})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(ExperimentError) as info:
        load(path, registry=REGISTRY)
    lines = path.read_text().splitlines()
    errors = {e.path: e for e in info.value.errors}
    assert set(errors) == {"explore.faults[1]", "explore.steps", "explore.budgett",
                           "explore.window[1]"}
    assert "did you mean 'port_crash'" in errors["explore.faults[1]"].message
    assert "did you mean 'budget'" in errors["explore.budgett"].message
    assert "not before the end of the run" in errors["explore.window[1]"].message
    for error in errors.values():
        assert str(error).startswith(f"{path}:{error.line}:{error.column}: ")
        assert lines[error.line - 1].strip()  # points at a real line of the file
    budget_line = next(i for i, line in enumerate(lines, 1) if "budgett" in line)
    assert errors["explore.budgett"].line == budget_line


@pytest.mark.parametrize(
    ("explore", "message"),
    [
        ({"steps": 0}, "1 <= A <= B"),
        ({"steps": "one"}, "range (1..3)"),
        ({"budget": 0}, "int >= 1"),
        ({"faults": []}, "at least one fault"),
        ({"faults": ["timeout", "timeout"]}, "faults repeat"),
        ({"window": ["50%"]}, "[start, end]"),
        ({"window": ["60%", "10%"]}, "starts after it ends"),
        ({"window": [1.5, "2%"]}, "fraction of the run"),
        ({"duration": "-1s"}, "duration"),
        ("all", "expected a mapping"),
    ],
)
def test_bad_values_are_refused(explore: object, message: str) -> None:
    with pytest.raises(ExperimentError) as info:
        load(planted(explore=explore), registry=REGISTRY)
    assert any(message in e.message for e in info.value.errors), info.value.errors


def test_node_faults_on_a_process_pool_are_refused_where_named(tmp_path: pathlib.Path) -> None:
    """An explicit explore list and a method step naming a node fault, on a pool without Ray:
    each refused at its own place, with every other error of the file (0.1.x ran them, exit 3)."""
    doc = planted(method=[{"fault": "node_crash", "at": "100ms", "bogus": 1},
                          {"fault": "node_freeze", "at": "200ms"}],
                  explore={"faults": ["timeout", "node_crash", "node_freeze", "timeot"]})
    path = tmp_path / "nodes.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(ExperimentError) as info:
        load(path, registry=REGISTRY)
    errors = {e.path: e.message for e in info.value.errors}
    assert set(errors) == {"method[0].fault", "method[0].bogus", "method[1].fault",
                           "explore.faults[1]", "explore.faults[2]", "explore.faults[3]"}
    for where in ("method[0].fault", "method[1].fault", "explore.faults[1]", "explore.faults[2]"):
        assert "needs 'pool.backend: ray'" in errors[where]
        assert "backend 'process'" in errors[where]
    assert "did you mean 'timeout'" in errors["explore.faults[3]"]


def test_node_faults_are_accepted_on_a_ray_pool() -> None:
    pytest.importorskip("ray")
    doc = planted(method=[{"fault": "node_freeze", "at": "100ms"}],
                  explore={"faults": ["node_crash", "port_crash"]})
    doc["pool"] = {**doc["pool"], "backend": "ray"}
    exp = load(doc, registry=REGISTRY)
    assert [s.fault for s in exp.method] == ["node_freeze"]
    assert exp.explore is not None
    assert exp.explore.faults == ("node_crash", "port_crash")


def test_a_plugin_fault_declares_the_backends_it_can_act_on() -> None:
    """The rule is the fault's own ``backends``, not a list of names: a plugin uses it too."""
    from chaospool.fault import Fault

    class OnlyRay(Fault):
        name = "only_ray"
        backends = ("ray",)

    with pytest.raises(ExperimentError) as info:
        load(planted(method=[{"fault": "only_ray", "at": "100ms"}]),
             registry={**REGISTRY, "only_ray": OnlyRay})
    assert [e.path for e in info.value.errors] == ["method[0].fault"]
