"""The pool's options are defined once (chaospool/_options.py); the DSL keys, the DSL model, the
Pool keyword arguments and the pool's config all agree with that one table."""

from __future__ import annotations

import dataclasses
import inspect
import random
from typing import Any

import pytest

from chaospool._dsl.model import KEYS, PoolSpec
from chaospool._options import DEFAULTS, GROUPS, POOL_OPTIONS, flatten, nest
from chaospool._pool.config import PoolConfig, build_config
from chaospool.pool import Pool

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

FIELDS = {o.field for o in POOL_OPTIONS if o.field}
# Pool-only keyword arguments that are not experiment keys
POOL_ONLY = {"start_timeout", "stop_grace", "backend", "ray"}
# the backend's own keys: which backend, and the Ray backend's settings (chaospool/_ray/settings.py)
BACKEND_KEYS = ("pool.backend", "pool.ray")


def test_dsl_keys_are_the_options() -> None:
    dsl = {k.path for k in KEYS if k.path.startswith("pool.")}
    backend = {key for key in dsl if key.startswith(BACKEND_KEYS)}
    assert "pool.ray.address" in backend
    assert dsl - backend == {f"pool.{o.key}" for o in POOL_OPTIONS}


def test_spec_and_config_fields_are_the_options() -> None:
    assert {f.name for f in dataclasses.fields(PoolSpec)} - {"backend", "ray"} == FIELDS
    assert {f.name for f in dataclasses.fields(PoolConfig)} - POOL_ONLY == FIELDS


def test_config_defaults_are_the_options_defaults() -> None:
    for f in dataclasses.fields(PoolConfig):
        if f.name in DEFAULTS and f.name != "worker":
            assert f.default == DEFAULTS[f.name], f.name


def test_pool_keywords_are_the_top_level_options() -> None:
    params = set(inspect.signature(Pool.__init__).parameters) - {"self"}
    top = {o.key for o in POOL_OPTIONS if o.group is None}
    assert params - POOL_ONLY == top


def _random_flat(rng: random.Random) -> dict[str, Any]:
    return {
        "worker": "chaospool.workers.demo", "size": rng.randint(1, 9),
        "max_overflow": rng.randint(0, 3), "strategy": rng.choice(["lifo", "fifo"]),
        "checkout_timeout": rng.uniform(0.1, 9), "request_timeout": rng.uniform(0.1, 9),
        "max_queue": rng.randint(0, 99), "max_restarts": rng.randint(0, 50),
        "restart_within": rng.uniform(0.1, 60), "max_memory": rng.choice([None, 10**8]),
        "max_requests": rng.choice([None, 5]), "overflow_idle": rng.uniform(0, 9),
        "lazy": rng.random() < 0.5, "health_interval": rng.uniform(0.1, 3),
        "health_timeout": rng.uniform(0.1, 3),
    }


def test_spec_to_pool_kwargs_to_config_round_trips_seeded_mix() -> None:
    rng = random.Random(11)
    for _ in range(200):
        flat = _random_flat(rng)
        spec = PoolSpec(**flat)
        config = build_config(**spec.pool_kwargs())
        assert {k: getattr(config, k) for k in flat} == flat
        assert flatten(nest(flat)) == flat


def test_groups_refuse_unknown_keys_and_fill_defaults() -> None:
    assert set(GROUPS) == {"restart", "health_check"}
    with pytest.raises(ValueError, match=r"unknown restart keys \['window'\]; use max_restarts"):
        build_config("m", restart={"window": 3})
    config = build_config("m", restart={"max_restarts": 3}, health_check=False)
    assert (config.max_restarts, config.restart_within) == (3, DEFAULTS["restart_within"])
    assert config.health_interval == 0.0
