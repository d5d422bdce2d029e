"""Valid experiments become the typed, frozen model with the defaults of docs/dsl.md."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import os
import pathlib
from typing import Any

import pytest
from dsl_fakes import REGISTRY, Crash, Leak, Slow, experiment

from chaospool._dsl import (
    KEYS,
    METRICS,
    Experiment,
    FaultStep,
    LoadSpec,
    MixEntry,
    PoolSpec,
    Target,
    Tolerance,
    describe_model,
    load,
)
from chaospool.errors import ExperimentError

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

CONTRACT_EXAMPLE = """\
version: 1
title: Cascading worker failures under load
description: three of five workers die one after another; the pool must keep serving
seed: 42
duration: 30s                     # total run time
plugins: [../plugins/cpu_hog.py]

pool:
  worker: chaospool.workers.demo
  size: 5
  max_overflow: 2
  strategy: lifo
  checkout_timeout: 1s
  request_timeout: 2s
  max_queue: 1000
  restart: {max_restarts: 20, within: 10s}
  max_memory: 300MB
  max_requests: 10000
  overflow_idle: 5s
  lazy: false
  health_check: {interval: 1s, timeout: 500ms}

load:
  clients: 20
  think: 10ms
  sessions: 50
  retries: 3
  mix:
    - {command: list_programs, weight: 70}
    - {command: create_program, weight: 20, args: {signature: {inputs: [q], outputs: [a]}}}
    - {command: compute, weight: 10, args: {n: 2000}}

steady_state:
  success_rate: ">= 0.95"
  recovered: "> 0"
  p99_latency: "< 500ms"
  after: {success_rate: ">= 0.99"}
  recovery_time: "< 5s"

method:
  - fault: port_crash
    at: 5s
    target: {count: 3}
    repeat: 3
    every: 1s
  - fault: slow_worker
    at: 15s
    duration: 5s
    target: {worker: 1}
    latency: 200ms
"""

CONTRACT_REGISTRY = {"port_crash": Crash, "slow_worker": Slow}


def load_text(tmp_path: pathlib.Path, text: str, **kwargs: Any) -> Experiment:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return load(path, registry=kwargs.pop("registry", REGISTRY), **kwargs)


def test_minimal_experiment_has_the_contract_defaults() -> None:
    exp = load(experiment(), registry=REGISTRY)
    assert exp.version == 1
    assert exp.seed is None
    assert exp.duration == 30.0
    assert exp.plugins == ()
    assert exp.description == ""
    assert exp.pool == PoolSpec(
        worker="chaospool.workers.demo", size=4, max_overflow=0, strategy="lifo",
        checkout_timeout=5.0, request_timeout=30.0, max_queue=1000, max_restarts=20,
        restart_within=10.0, max_memory=None, max_requests=None, overflow_idle=5.0,
        lazy=False, health_interval=1.0, health_timeout=1.0,
    )  # fmt: skip
    assert exp.load == LoadSpec(
        clients=4, rate=None, think=0.0, sessions=None, retries=0,
        mix=(MixEntry(command="ping", weight=1.0, args={}),),
    )  # fmt: skip
    assert exp.load.open_loop is False
    assert exp.steady_state == ()
    assert exp.method == ()


def test_contract_example_loads(tmp_path: pathlib.Path) -> None:
    exp = load_text(tmp_path, CONTRACT_EXAMPLE, registry=CONTRACT_REGISTRY)
    assert (exp.title, exp.seed, exp.duration) == ("Cascading worker failures under load", 42, 30.0)
    assert exp.plugins == ("../plugins/cpu_hog.py",)
    pool = exp.pool
    assert (pool.size, pool.max_overflow, pool.slots) == (5, 2, 7)
    assert (pool.checkout_timeout, pool.request_timeout) == (1.0, 2.0)
    assert (pool.max_memory, pool.max_requests) == (300_000_000, 10_000)
    assert (pool.health_interval, pool.health_timeout) == (1.0, 0.5)
    assert (exp.load.clients, exp.load.think, exp.load.sessions, exp.load.retries) == (
        20, 0.01, 50, 3,
    )  # fmt: skip
    assert [m.command for m in exp.load.mix] == ["list_programs", "create_program", "compute"]
    assert exp.load.mix[1].args == {"signature": {"inputs": ["q"], "outputs": ["a"]}}
    assert exp.steady_state == (
        Tolerance("success_rate", "overall", ">=", 0.95, ">= 0.95"),
        Tolerance("recovered", "overall", ">", 0.0, "> 0"),
        Tolerance("p99_latency", "overall", "<", 0.5, "< 500ms"),
        Tolerance("success_rate", "after", ">=", 0.99, ">= 0.99"),
        Tolerance("recovery_time", "overall", "<", 5.0, "< 5s"),
    )
    crash, slow = exp.method
    assert crash == FaultStep(
        fault="port_crash", name="port_crash", at=5.0, duration=None, repeat=3, every=1.0,
        target=Target("count", count=3), params=Crash.Params(), index=0,
    )  # fmt: skip
    assert crash.injections == (5.0, 6.0, 7.0)
    assert slow.duration == 5.0
    assert slow.params == Slow.Params(latency=0.2, duration=5.0)
    assert slow.target == Target("worker", workers=(1,))


def test_pool_kwargs_are_the_pool_keywords(tmp_path: pathlib.Path) -> None:
    exp = load_text(tmp_path, CONTRACT_EXAMPLE, registry=CONTRACT_REGISTRY)
    kwargs = exp.pool.pool_kwargs()
    assert kwargs["restart"] == {"max_restarts": 20, "within": 10.0}
    assert kwargs["health_check"] == {"interval": 1.0, "timeout": 0.5}
    assert kwargs["max_memory"] == 300_000_000
    pool_module = pytest.importorskip("chaospool.pool")
    signature = inspect.signature(pool_module.Pool)
    signature.bind(**kwargs)  # every keyword is one the Pool takes


def test_file_identity(tmp_path: pathlib.Path) -> None:
    exp = load_text(tmp_path, CONTRACT_EXAMPLE, registry=CONTRACT_REGISTRY)
    path = tmp_path / "exp.yaml"
    assert exp.path == str(path)
    assert exp.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert exp.base_dir == str(tmp_path.resolve())


def test_mapping_identity_is_canonical() -> None:
    one = load({"version": 1, "pool": {"worker": "m", "size": 2}}, registry=REGISTRY)
    two = load({"pool": {"size": 2, "worker": "m"}, "version": 1}, registry=REGISTRY)
    assert one.path is None
    assert one.sha256 == two.sha256
    assert one.sha256 is not None
    assert len(one.sha256) == 64
    assert one.base_dir == os.getcwd()
    assert one.title == "experiment"


def test_title_defaults_to_the_file_name(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "my_run.yaml"
    path.write_text("version: 1\npool: {worker: chaospool.workers.demo}\n")
    assert load(path, registry=REGISTRY).title == "my_run"
    assert load(str(path), registry=REGISTRY).path == str(path)


def test_model_is_frozen() -> None:
    exp = load(experiment(method=[{"fault": "crash"}]), registry=REGISTRY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        exp.duration = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        exp.pool.size = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        exp.method[0].at = 1.0  # type: ignore[misc]
    assert isinstance(exp.method, tuple)
    assert isinstance(exp.steady_state, tuple)


def test_the_callers_mapping_is_not_changed() -> None:
    source = experiment(pool={"size": 2})
    before = repr(source)
    load(source, overrides={"pool.size": 3}, registry=REGISTRY)
    assert repr(source) == before


def test_open_loop_rate_with_clients() -> None:
    exp = load(experiment(load={"rate": "500/s", "clients": 8}), registry=REGISTRY)
    assert exp.load.rate == 500.0
    assert exp.load.clients == 8
    assert exp.load.open_loop


def test_units_everywhere() -> None:
    exp = load(
        experiment(
            duration=12,
            pool={"max_memory": "1GiB", "overflow_idle": "1.5m", "checkout_timeout": 0.25},
            load={"think": "500us"},
        ),
        registry=REGISTRY,
    )
    assert exp.duration == 12.0
    assert exp.pool.max_memory == 2**30
    assert exp.pool.overflow_idle == 90.0
    assert exp.pool.checkout_timeout == 0.25
    assert exp.load.think == 0.0005


def test_null_optional_keys_mean_absent() -> None:
    exp = load(
        experiment(seed=None, pool={"max_memory": None, "max_requests": None},
                   load={"sessions": None, "rate": None}, steady_state=None, method=None),
        registry=REGISTRY,
    )  # fmt: skip
    assert exp.seed is None
    assert exp.pool.max_memory is None
    assert exp.load.sessions is None
    assert exp.steady_state == ()
    assert exp.method == ()


def test_tolerance_kinds_and_phases() -> None:
    exp = load(
        experiment(
            steady_state={
                "throughput": ">= 500/s",
                "error_rate": "<= 5%",
                "max_latency": "< 2",
                "worker_restarts": "!= 0",
                "before": {"success_rate": "== 1"},
                "during": {"errors": "< 100", "p50_latency": "< 20ms"},
            }
        ),
        registry=REGISTRY,
    )
    checks = {(t.metric, t.phase): t for t in exp.steady_state}
    assert checks["throughput", "overall"].value == 500.0
    assert checks["error_rate", "overall"].value == 0.05
    assert checks["max_latency", "overall"].value == 2.0
    assert checks["success_rate", "before"].op == "=="
    assert checks["p50_latency", "during"].value == 0.02
    assert {t.phase for t in exp.steady_state} == {"overall", "before", "during"}


@pytest.mark.parametrize(
    ("text", "observed", "holds"),
    [
        (">= 0.95", 0.95, True),
        (">= 0.95", 0.9499, False),
        ("> 0", 1, True),
        ("> 0", 0, False),
        ("< 500ms", 0.4, True),
        ("< 500ms", 0.5, False),
        ("== 0", 0, True),
        ("!= 0", 0, False),
        ("<= 95%", 0.95, True),
        ("< 5s", None, False),
        ("!= 0", None, False),
    ],
)
def test_tolerance_holds(text: str, observed: float | None, holds: bool) -> None:
    metric = "success_rate" if "%" in text else "recovery_time"
    exp = load(experiment(steady_state={metric: text}), registry=REGISTRY)
    assert exp.steady_state[0].holds(observed) is holds


def test_every_metric_is_accepted() -> None:
    tolerances = {metric: ">= 0" for metric in METRICS}
    exp = load(experiment(steady_state=tolerances), registry=REGISTRY)
    assert [t.metric for t in exp.steady_state] == list(METRICS)


# -- method -----------------------------------------------------------------------------------


def steps(*items: dict[str, Any], **sections: Any) -> tuple[FaultStep, ...]:
    return load(experiment(method=list(items), **sections), registry=REGISTRY).method


def test_step_defaults() -> None:
    (step,) = steps({"fault": "crash"})
    assert (step.name, step.at, step.duration, step.repeat, step.every) == (
        "crash", 0.0, None, 1, 0.0,
    )  # fmt: skip
    assert step.target == Target("default")
    assert step.params == Crash.Params()
    assert step.index == 0


def test_step_duration_from_params_default() -> None:
    (step,) = steps({"fault": "slow", "at": "1s"})
    assert step.duration == 5.0
    assert step.params.duration == 5.0


def test_step_duration_sets_the_params_duration() -> None:
    slow, leak = steps({"fault": "slow", "duration": "2s"}, {"fault": "leak", "duration": 1500})
    assert (slow.duration, slow.params.duration) == (2.0, 2.0)
    assert (leak.duration, leak.params.duration) == (1500.0, 1500.0)


def test_step_duration_without_a_params_duration() -> None:
    (step,) = steps({"fault": "crash", "duration": "3s"})
    assert step.duration == 3.0
    assert step.params == Crash.Params()


def test_fault_parameters_are_parsed() -> None:
    slow, leak, crash = steps(
        {"fault": "slow", "latency": "300ms", "jitter": 0.1},
        {"fault": "leak", "rate": "10MB/s", "limit": "1GiB", "amount": None},
        {"fault": "crash", "signal": 15, "mode": "close"},
    )
    assert slow.params == Slow.Params(latency=0.3, jitter=0.1, duration=5.0)
    assert leak.params == Leak.Params(rate=10e6, limit=2**30, amount=None, duration=10.0)
    assert crash.params == Crash.Params(signal=15, mode="close")


def test_container_and_required_parameters() -> None:
    (herd,) = steps(
        {
            "fault": "herd",
            "command": "echo",
            "requests": 10,
            "args": {"x": 1},
            "tags": ["a", "b"],
            "window": [1, 2.5],
            "ratio": 1,
            "loud": True,
            "extra": {"anything": [1]},
        }
    )
    params = herd.params
    assert (params.command, params.requests, params.args) == ("echo", 10, {"x": 1})
    assert params.tags == ["a", "b"]
    assert params.window == (1.0, 2.5)
    assert params.ratio == 1.0
    assert isinstance(params.ratio, float)
    assert params.loud is True
    assert params.extra == {"anything": [1]}


def test_default_names_number_repeated_faults() -> None:
    method = steps(
        {"fault": "crash", "at": 1}, {"fault": "slow"}, {"fault": "crash", "at": 2},
        {"fault": "crash", "name": "final", "at": 3},
    )  # fmt: skip
    assert [s.name for s in method] == ["crash#1", "slow", "crash#2", "final"]
    assert [s.index for s in method] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (None, Target("default")),
        ("all", Target("all")),
        ({"worker": 0}, Target("worker", workers=(0,))),
        ({"worker": 6}, Target("worker", workers=(6,))),
        ({"workers": [0, 2]}, Target("workers", workers=(0, 2))),
        ({"count": 3}, Target("count", count=3)),
        ({"count": 7}, Target("count", count=7)),
        ({"fraction": 0.5}, Target("fraction", fraction=0.5)),
        ({"fraction": 1}, Target("fraction", fraction=1.0)),
        ({"session": "s1"}, Target("session", session="s1")),
        ({"session": 12}, Target("session", session="12")),
    ],
)
def test_targets(target: Any, expected: Target) -> None:
    step: dict[str, Any] = {"fault": "crash"}
    if target is not None:
        step["target"] = target
    (parsed,) = steps(step, pool={"size": 5, "max_overflow": 2})
    assert parsed.target == expected


def test_repeat_every() -> None:
    (step,) = steps({"fault": "crash", "at": "5s", "repeat": 3, "every": "1s"})
    assert step.injections == (5.0, 6.0, 7.0)


def test_yaml_anchors_and_merge_keys(tmp_path: pathlib.Path) -> None:
    text = """\
version: 1
pool: {worker: chaospool.workers.demo}
x-slow: &slow {fault: slow, latency: 50ms}
method:
  - <<: *slow
    at: 1s
  - <<: *slow
    at: 2s
    latency: 80ms
"""
    with pytest.raises(ExperimentError) as info:  # x-slow is not a DSL key
        load_text(tmp_path, text)
    assert [e.path for e in info.value.errors] == ["x-slow"]
    exp = load_text(
        tmp_path,
        text.replace("x-slow: &slow {fault: slow, latency: 50ms}\n", "").replace(
            "method:\n", "method:\n  - &slow {fault: slow, latency: 50ms}\n"
        ),
    )
    assert [s.params.latency for s in exp.method] == [0.05, 0.05, 0.08]


def test_registry_factory_gets_the_plugins(tmp_path: pathlib.Path) -> None:
    seen: list[tuple[tuple[str, ...], pathlib.Path]] = []

    def factory(plugins: tuple[str, ...], base_dir: pathlib.Path) -> Any:
        seen.append((plugins, base_dir))
        return {"crash": Crash}

    text = "version: 1\nplugins: [mod_a, ./b.py]\npool: {worker: w}\nmethod: [{fault: crash}]\n"
    exp = load_text(tmp_path, text, registry=factory)
    assert seen == [(("mod_a", "./b.py"), tmp_path.resolve())]
    assert exp.method[0].fault == "crash"


# -- describe_model ---------------------------------------------------------------------------


def test_describe_model_lists_every_key_once() -> None:
    docs = describe_model()
    paths = [doc.path for doc in docs]
    assert len(paths) == len(set(paths))
    assert all(doc.type and doc.description for doc in docs)
    assert {doc.path for doc in docs if doc.required} == {
        "version", "pool", "pool.worker", "load.mix[].command", "method[].fault",
    }  # fmt: skip
    assert docs == KEYS


def test_describe_model_covers_the_contract_example(tmp_path: pathlib.Path) -> None:
    import yaml

    documented = {doc.path for doc in describe_model()}
    raw = yaml.safe_load(CONTRACT_EXAMPLE)
    for section in ("pool", "load"):
        for key in raw[section]:
            assert f"{section}.{key}" in documented
    for key in raw:
        assert key in documented
    for step in raw["method"]:
        for key in step:
            assert f"method[].{key}" in documented or key == "latency"


def test_documented_defaults_are_the_model_defaults() -> None:
    exp = load(experiment(), registry=REGISTRY)
    docs = {doc.path: doc.default for doc in describe_model()}
    assert docs["duration"] == "30s"
    assert exp.duration == 30.0
    assert docs["pool.size"] == exp.pool.size
    assert docs["pool.strategy"] == exp.pool.strategy
    assert docs["load.clients"] == exp.load.clients
    assert docs["load.mix"] == [{"command": "ping", "weight": 1}]
