"""The public surface: every name in every public module's ``__all__`` exists, and the package
namespace stays import-light (the pytest plugin imports it in every test session)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

PUBLIC_MODULES = (
    "chaospool",
    "chaospool.errors",
    "chaospool.fault",
    "chaospool.hookspecs",
    "chaospool.pool",
    "chaospool.worker",
    "chaospool.testing",
    "chaospool.experiment",
)

CONTRACT_NAMES = (
    "Pool", "run", "run_async", "load_experiment", "Fault", "hookimpl", "ChaospoolError",
    "CheckoutTimeout", "QueueFull", "RequestTimeout", "WorkerCrashed", "CircuitOpen",
    "PoolClosed", "CommandError", "ExperimentError",
)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert isinstance(exported, tuple)
    for attr in exported:
        assert getattr(module, attr) is not None, f"{name}.{attr}"


def test_contract_names_are_exported() -> None:
    import chaospool

    assert set(CONTRACT_NAMES) <= set(chaospool.__all__)
    assert issubclass(chaospool.QueueFull, chaospool.ChaospoolError)
    assert issubclass(chaospool.ExperimentError, chaospool.ChaospoolError)


def test_importing_the_package_is_light() -> None:
    code = ("import sys, chaospool; heavy = {'anyio', 'yaml', 'msgspec', 'psutil', 'pluggy'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=30)
    assert out.stdout.strip() == "[]"
