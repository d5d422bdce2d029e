"""Shared bits of the explore tests: a small experiment on the fragile worker, the registry."""

from __future__ import annotations

import copy
import pathlib
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[2]

# A short experiment on experiments/fragile_worker.py: seed 24 finds the planted weakness (a
# SIGSTOP of slot 1 for FRAGILE_WORKER_PAUSE seconds) at schedule 2, after a harmless one.
PLANTED_SEED = 24
PLANTED_PAUSE = "0.3"
PLANTED: dict[str, Any] = {
    "version": 1,
    "title": "planted weakness",
    "seed": 1,
    "duration": "1s",
    "pythonpath": [str(REPO / "experiments")],  # fragile_worker importable (docs/dsl.md)
    "pool": {"worker": "fragile_worker", "size": 3, "strategy": "fifo", "request_timeout": "2s",
             "health_check": {"interval": "1s", "timeout": "2s"}},
    "load": {"clients": 3, "think": "5ms", "sessions": 6, "retries": 3,
             "mix": [{"command": "deposit", "args": {"amount": 1}}]},
    "steady_state": {"success_rate": ">= 0.99"},
    "explore": {"faults": ["port_crash", "timeout", "slow_worker"], "steps": "1..2",
                "budget": 6, "window": ["10%", "50%"]},
}


def planted(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(PLANTED)
    doc.update(changes)
    return doc


def builtin_registry() -> dict[str, Any]:
    from chaospool._plugins import fault_registry, plugin_manager

    return fault_registry(plugin_manager())
