"""Loading Ray on loopback, the settings, and the error without Ray (no cluster needed)."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from typing import Any

import pytest

import chaospool
from chaospool._ray import boot
from chaospool._ray.settings import RaySettings, parse_settings

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


def _no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate an environment without Ray: the import fails and no spec is found."""
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kw: Any) -> Any:
        return None if name == "ray" or name.startswith("ray.") else real(name, *args, **kw)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError


def test_pool_without_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_ray(monkeypatch)
    with pytest.raises(ImportError, match=r"pip install 'chaospool\[ray\]'") as info:
        chaospool.Pool(worker="chaospool.workers.demo", backend="ray")
    assert isinstance(info.value, chaospool.ChaospoolError)


def test_import_ray_without_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_ray(monkeypatch)
    with pytest.raises(boot.RayUnavailable, match=r"pip install 'chaospool\[ray\]'"):
        boot.import_ray(local=True)


def test_experiment_without_ray_is_a_located_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_ray(monkeypatch)
    with pytest.raises(chaospool.ExperimentError) as info:
        chaospool.load_experiment(
            {"version": 1, "pool": {"worker": "chaospool.workers.demo", "backend": "ray"}})
    [error] = info.value.errors
    assert error.path == "pool.backend"
    assert "pip install 'chaospool[ray]'" in error.message


def test_ray_is_kept_on_loopback_once_imported() -> None:
    ray = boot.import_ray(local=True)
    assert ray._private.ray_constants.ENABLE_RAY_CLUSTER is False
    assert ray._private.services.get_node_ip_address() == "127.0.0.1"
    for key, value in boot.LOOPBACK_ENV.items():
        assert __import__("os").environ[key] == value


def test_the_api_server_replacement_still_applies() -> None:
    """Fails when a Ray upgrade renames or reshapes ``Node.start_api_server``: the process
    that probes cloud metadata would start again (docs/ray.md)."""
    ray = boot.import_ray(local=True)
    assert ray.__version__ == "2.60.0"  # the pinned version the replacement was checked on
    replaced = ray._private.node.Node.start_api_server
    assert getattr(replaced, "chaospool_patch", False)
    original = boot.ORIGINAL_START_API_SERVER
    assert original is not None
    assert not getattr(original, "chaospool_patch", False)
    params = inspect.signature(original).parameters
    assert list(params) == ["self", "include_dashboard", "raise_on_failure"]
    assert all(params[p].kind is inspect.Parameter.KEYWORD_ONLY
               for p in ("include_dashboard", "raise_on_failure"))
    caller = inspect.getsource(ray._private.node.Node.start_head_processes)
    assert "self.start_api_server(" in caller  # the head still starts it through this method


def test_settings_defaults_and_refusals() -> None:
    assert parse_settings(None) == RaySettings()
    assert parse_settings({"address": "10.0.0.5:6379"}).local is False
    assert parse_settings({"health_check": {"period": "250ms"}}).health.period == 0.25
    for bad in ({"address": "here"}, {"nodes": 0}, {"placement": "scatter"}, {"nodez": 1},
                {"health_check": {"failure_threshold": 0}}, {"health_check": {"period": -1}}):
        with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
            parse_settings(bad)
    with pytest.raises(ValueError, match="backend='ray'"):
        chaospool.Pool(worker="chaospool.workers.demo", ray={"nodes": 2})


def test_node_targets_need_the_ray_backend() -> None:
    with pytest.raises(chaospool.ExperimentError) as info:
        chaospool.load_experiment({
            "version": 1, "pool": {"worker": "chaospool.workers.demo"},
            "method": [{"fault": "port_crash", "at": "1s", "target": {"node": 1}}]})
    [error] = info.value.errors
    assert error.path == "method[0].target.node"
    assert "backend: ray" in error.message


def test_ray_pool_section_becomes_pool_keyword_arguments() -> None:
    exp = chaospool.load_experiment({
        "version": 1,
        "pool": {"worker": "chaospool.workers.demo", "backend": "ray",
                 "ray": {"nodes": 2, "placement": "pack",
                         "health_check": {"period": "250ms"}}},
        "method": [{"fault": "node_crash", "at": "1s", "target": {"node": 1}},
                   {"fault": "port_crash", "at": "2s", "target": {"node": 2}}],
    })
    kwargs = exp.pool.pool_kwargs()
    assert kwargs["backend"] == "ray"
    assert kwargs["ray"]["placement"] == "pack"
    assert kwargs["ray"]["health_check"]["period"] == 0.25
    assert parse_settings(kwargs["ray"]) == exp.pool.ray
    assert [s.target.node for s in exp.method] == [1, 2]
    from chaospool._engine.schedule import schedule

    assert [s.slots for s in schedule(exp, 1)] == [None, None]  # resolved at run time
    process = chaospool.load_experiment({"version": 1, "pool": {"worker": "x.y"}})
    assert "backend" not in process.pool.pool_kwargs()  # unchanged for the default backend


def test_dry_run_names_the_node(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from chaospool.cli import main

    path = tmp_path / "e.yaml"
    path.write_text("version: 1\npool: {worker: chaospool.workers.demo, backend: ray}\n"
                    "method:\n  - {fault: node_freeze, at: 1s, target: {node: 2}}\n")
    out = CliRunner().invoke(main, ["run", str(path), "--dry-run"])
    assert out.exit_code == 0, out.output
    assert "node 2" in out.output
