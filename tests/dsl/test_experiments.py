"""Every shipped experiment validates against the real fault registry (built-ins + plugins)."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence

import pytest

from chaospool._dsl import Experiment, load
from chaospool.fault import Fault

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[2] / "experiments"
BUILTIN_FILES = (
    "cascade.yaml",
    "baseline.yaml",
    "port_crash.yaml",
    "timeout.yaml",
    "network_partition.yaml",
    "resource_exhaustion.yaml",
    "thundering_herd.yaml",
    "slow_worker.yaml",
    "memory_leak.yaml",
    "node_crash.yaml",
    "node_freeze.yaml",
)


def real_registry(plugins: Sequence[str], base_dir: pathlib.Path) -> Mapping[str, type[Fault]]:
    from chaospool._plugins import fault_registry, plugin_manager

    return fault_registry(plugin_manager(list(plugins), base_dir))


def load_real(name: str) -> Experiment:
    return load(EXPERIMENTS / name, registry=real_registry)


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_experiment_validates(path: pathlib.Path) -> None:
    exp = load(path, registry=real_registry)
    # the demo worker, or a worker module shipped beside the experiments (explore_demo.yaml)
    beside = EXPERIMENTS / f"{exp.pool.worker}.py"
    assert exp.pool.worker == "chaospool.workers.demo" or beside.is_file()
    assert exp.duration <= 15.0
    assert exp.seed is not None  # reproducible by default


def test_there_is_one_experiment_per_builtin_fault() -> None:
    from chaospool._plugins import fault_registry, plugin_manager

    builtins = set(fault_registry(plugin_manager()))
    for fault in builtins:
        exp = load_real(f"{fault}.yaml")
        assert {step.fault for step in exp.method} == {fault}
    assert {f"{name}.yaml" for name in builtins} | {"cascade.yaml", "baseline.yaml"} == set(
        BUILTIN_FILES
    )
    assert (EXPERIMENTS / "ray_cascade.yaml").exists()  # the cascade on Ray (tests/ray run it)


def test_cascade_is_the_seed_scenario() -> None:
    exp = load_real("cascade.yaml")
    assert (exp.pool.size, exp.pool.max_overflow) == (5, 2)
    assert exp.load.retries >= 1
    kills = [step for step in exp.method if step.fault == "port_crash"]
    assert len({step.target.workers for step in kills}) == 3
    assert sorted(step.at for step in kills) == [2.0, 3.0, 4.0]  # all within a 5s override
    checks = {(t.metric, t.phase): t.text for t in exp.steady_state}
    assert checks["success_rate", "overall"] == ">= 0.95"
    assert checks["recovered", "overall"] == "> 0"


def test_baseline_is_the_seed_benchmark_mix() -> None:
    exp = load_real("baseline.yaml")
    assert exp.method == ()
    weights = {entry.command: entry.weight for entry in exp.load.mix}
    assert weights == {"list_programs": 70, "create_program": 20, "compute": 10}
    assert exp.load.sessions


def test_memory_leak_is_caught_by_max_memory() -> None:
    exp = load_real("memory_leak.yaml")
    (leak,) = exp.method
    assert exp.pool.max_memory is not None
    assert exp.pool.max_memory < leak.params.limit
