"""--set KEY=VALUE overrides: applied to the raw tree, validated like the file, located in the
argument."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from dsl_fakes import REGISTRY, experiment

from chaospool._dsl import SET_FILE, Experiment, Target, load
from chaospool.errors import ErrorLocation, ExperimentError

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

FILE = """\
version: 1
duration: 20s
pool:
  worker: chaospool.workers.demo
  size: 4
load:
  clients: 4
method:
  - fault: slow
    at: 5s
"""


@pytest.fixture
def path(tmp_path: pathlib.Path) -> pathlib.Path:
    file = tmp_path / "exp.yaml"
    file.write_text(FILE)
    return file


def with_set(path: pathlib.Path, *overrides: str) -> Experiment:
    return load(path, overrides=list(overrides), registry=REGISTRY)


def set_errors(path: pathlib.Path, *overrides: str) -> list[ErrorLocation]:
    with pytest.raises(ExperimentError) as info:
        with_set(path, *overrides)
    return info.value.errors


def test_the_contract_examples(path: pathlib.Path) -> None:
    exp = with_set(path, "pool.size=8", "duration=5s", "load.clients=2", "method.0.at=1s")
    assert (exp.pool.size, exp.duration, exp.load.clients) == (8, 5.0, 2)
    assert exp.method[0].at == 1.0


def test_a_mapping_of_overrides(path: pathlib.Path) -> None:
    overrides = {"duration": "8s", "pool.size": "8", "load.clients": 3, "seed": None}
    exp = load(path, overrides=overrides, registry=REGISTRY)
    assert (exp.duration, exp.pool.size, exp.load.clients, exp.seed) == (8.0, 8, 3, None)


def test_overrides_on_a_mapping_source() -> None:
    exp = load(experiment(), overrides=["pool.max_overflow=2"], registry=REGISTRY)
    assert exp.pool.max_overflow == 2


def test_values_are_yaml(path: pathlib.Path) -> None:
    exp = with_set(
        path,
        "seed=7",
        "pool.lazy=true",
        "title=a title with = sign",
        "method.0.target={worker: 1}",
        "plugins=[a, b]",
        "pool.max_memory=300MB",
    )
    assert exp.seed == 7
    assert exp.pool.lazy is True
    assert exp.title == "a title with = sign"
    assert exp.method[0].target == Target("worker", workers=(1,))
    assert exp.plugins == ("a", "b")
    assert exp.pool.max_memory == 300_000_000


def test_tolerances_stay_text(path: pathlib.Path) -> None:
    exp = with_set(
        path,
        "steady_state.success_rate=>= 0.95",
        "steady_state.after.recovered=> 0",
        "steady_state.errors=!= 0",
    )
    assert [(t.metric, t.phase, t.op) for t in exp.steady_state] == [
        ("success_rate", "overall", ">="),
        ("recovered", "after", ">"),
        ("errors", "overall", "!="),
    ]


def test_missing_sections_are_created(path: pathlib.Path) -> None:
    exp = with_set(path, "pool.restart.within=2s", "pool.health_check.timeout=300ms")
    assert (exp.pool.restart_within, exp.pool.max_restarts) == (2.0, 20)
    assert exp.pool.health_timeout == 0.3


def test_an_overridden_value_is_validated_at_the_argument(path: pathlib.Path) -> None:
    (error,) = set_errors(path, "pool.size=zero")
    assert (error.file, error.line, error.column) == (SET_FILE, 1, 11)
    assert error.path == "pool.size"
    assert "expected an integer, got 'zero'" in error.message
    assert str(error) == "--set:1:11: pool.size: expected an integer, got 'zero'"


def test_unknown_key_points_at_its_segment(path: pathlib.Path) -> None:
    (error,) = set_errors(path, "pool.sise=8")
    assert (error.file, error.line, error.column) == (SET_FILE, 1, 6)
    assert "unknown key 'sise' (did you mean 'size'?)" in error.message


def test_unknown_top_level_key(path: pathlib.Path) -> None:
    (error,) = set_errors(path, "pol.size=8")
    assert (error.column, error.path) == (1, "pol")
    assert "did you mean 'pool'?" in error.message


def test_unknown_fault_parameter(path: pathlib.Path) -> None:
    (error,) = set_errors(path, "method.0.latncy=1s")
    assert (error.column, error.path) == (10, "method[0].latncy")
    assert "did you mean 'latency'?" in error.message


def test_inside_a_yaml_value(path: pathlib.Path) -> None:
    (error,) = set_errors(path, "method.0.target={worker: 9}")
    assert error.path == "method[0].target.worker"
    assert (error.file, error.column) == (SET_FILE, 26)


@pytest.mark.parametrize(
    ("override", "column", "message"),
    [
        ("pool.size", 1, "expected KEY=VALUE"),
        ("=8", 1, "expected KEY=VALUE"),
        ("pool..size=8", 6, "empty key segment"),
        ("method.3.at=1s", 8, "method has 1 item(s): no index 3"),
        ("method.first.at=1s", 8, "method is a list: expected an index, got 'first'"),
        ("duration.unit=s", 10, "cannot set 'unit' inside duration"),
        ("steady_state.0=> 1", 14, "steady_state does not exist"),
        ("load.mix.0.weight=2", 10, "load.mix does not exist: there is no item 0"),
        ("pool.size=[1, 2", 16, "invalid YAML"),  # where the list should have closed
        ("title=!!python/object:os.system x", 7, "not allowed"),
    ],
)
def test_bad_overrides(path: pathlib.Path, override: str, column: int, message: str) -> None:
    (error,) = set_errors(path, override)
    assert (error.file, error.line, error.column) == (SET_FILE, 1, column)
    assert message in error.message


def test_file_and_override_errors_together(path: pathlib.Path) -> None:
    path.write_text(FILE.replace("clients: 4", "clients: -4"))
    errors = set_errors(path, "pool.size=0")
    assert [(e.file, e.path) for e in errors] == [
        (str(path), "load.clients"),
        (SET_FILE, "pool.size"),
    ]


def test_override_fixes_a_bad_file_value(path: pathlib.Path) -> None:
    path.write_text(FILE.replace("size: 4", "size: lots"))
    assert with_set(path, "pool.size=3").pool.size == 3


def test_sha256_is_the_files(path: pathlib.Path) -> None:
    plain = with_set(path)
    overridden = with_set(path, "duration=8s")
    assert plain.sha256 == overridden.sha256


def test_override_on_an_empty_file(tmp_path: pathlib.Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    exp = with_set(empty, "version=1", "pool.worker=chaospool.workers.demo")
    assert exp.pool.worker == "chaospool.workers.demo"


def test_mapping_values_that_are_not_text_are_used_as_given(path: pathlib.Path) -> None:
    overrides: dict[str, Any] = {"method.0.target": {"workers": [0, 1]}, "pool.lazy": True}
    exp = load(path, overrides=overrides, registry=REGISTRY)
    assert exp.method[0].target == Target("workers", workers=(0, 1))
    assert exp.pool.lazy is True
