"""chaospool: chaos engineering for Python worker pools.

The package namespace is import-light on purpose: the pytest plugin imports ``chaospool``
in every test session, so names are resolved on first use (PEP 562), not at import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

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
    from chaospool.errors import (
        ChaospoolError,
        CheckoutTimeout,
        CircuitOpen,
        CommandError,
        ExperimentError,
        FaultError,
        PoolClosed,
        ProtocolError,
        QueueFull,
        RequestTimeout,
        WorkerCrashed,
        WorkerStartError,
    )
    from chaospool.experiment import Experiment, Report, load_experiment, run, run_async
    from chaospool.fault import Fault, FaultContext
    from chaospool.hookspecs import hookimpl, hookspec
    from chaospool.pool import Pool, PoolEvent, PoolStats, WorkerHandle
