"""chaospool: chaos engineering for Python worker pools.

The package namespace is import-light on purpose: the pytest plugin imports ``chaospool``
in every test session, so names are resolved on first use (PEP 562), not at import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from chaospool._version import __version__

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "Pool": "chaospool.pool",
    "PoolStats": "chaospool.pool",
    "PoolEvent": "chaospool.pool",
    "WorkerHandle": "chaospool.pool",
    "Fault": "chaospool.fault",
    "FaultContext": "chaospool.fault",
    "hookimpl": "chaospool.hookspecs",
    "hookspec": "chaospool.hookspecs",
    "run": "chaospool.experiment",
    "run_async": "chaospool.experiment",
    "load_experiment": "chaospool.experiment",
    "Experiment": "chaospool.experiment",
    "Report": "chaospool.experiment",
    "ChaospoolError": "chaospool.errors",
    "CheckoutTimeout": "chaospool.errors",
    "CircuitOpen": "chaospool.errors",
    "CommandError": "chaospool.errors",
    "ExperimentError": "chaospool.errors",
    "FaultError": "chaospool.errors",
    "PluginLoadError": "chaospool.errors",
    "PoolClosed": "chaospool.errors",
    "ProtocolError": "chaospool.errors",
    "QueueFull": "chaospool.errors",
    "RequestTimeout": "chaospool.errors",
    "WorkerCrashed": "chaospool.errors",
    "WorkerStartError": "chaospool.errors",
}

__all__ = ("__version__", *sorted(_LAZY))


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'chaospool' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:
    # `X as X`: an explicit re-export, so mypy --strict users may write chaospool.Fault etc.
    # (mypy cannot read the computed __all__ above).
    from chaospool.errors import ChaospoolError as ChaospoolError
    from chaospool.errors import CheckoutTimeout as CheckoutTimeout
    from chaospool.errors import CircuitOpen as CircuitOpen
    from chaospool.errors import CommandError as CommandError
    from chaospool.errors import ExperimentError as ExperimentError
    from chaospool.errors import FaultError as FaultError
    from chaospool.errors import PluginLoadError as PluginLoadError
    from chaospool.errors import PoolClosed as PoolClosed
    from chaospool.errors import ProtocolError as ProtocolError
    from chaospool.errors import QueueFull as QueueFull
    from chaospool.errors import RequestTimeout as RequestTimeout
    from chaospool.errors import WorkerCrashed as WorkerCrashed
    from chaospool.errors import WorkerStartError as WorkerStartError
    from chaospool.experiment import Experiment as Experiment
    from chaospool.experiment import Report as Report
    from chaospool.experiment import load_experiment as load_experiment
    from chaospool.experiment import run as run
    from chaospool.experiment import run_async as run_async
    from chaospool.fault import Fault as Fault
    from chaospool.fault import FaultContext as FaultContext
    from chaospool.hookspecs import hookimpl as hookimpl
    from chaospool.hookspecs import hookspec as hookspec
    from chaospool.pool import Pool as Pool
    from chaospool.pool import PoolEvent as PoolEvent
    from chaospool.pool import PoolStats as PoolStats
    from chaospool.pool import WorkerHandle as WorkerHandle
