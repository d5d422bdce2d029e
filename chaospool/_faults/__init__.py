"""The built-in faults (docs/faults.md), registered through the same pluggy hook a plugin
uses. Each module holds one fault; ``targets`` is the one resolver of a step's target to slots."""

from __future__ import annotations

from chaospool.fault import Fault
from chaospool.hookspecs import hookimpl

from .memory_leak import MemoryLeak
from .network_partition import NetworkPartition
from .node_crash import NodeCrash
from .node_freeze import NodeFreeze
from .port_crash import PortCrash
from .resource_exhaustion import ResourceExhaustion
from .slow_worker import SlowWorker
from .thundering_herd import ThunderingHerd
from .timeout import Timeout

__all__ = (
    "BUILTIN_FAULTS",
    "MemoryLeak",
    "NetworkPartition",
    "NodeCrash",
    "NodeFreeze",
    "PortCrash",
    "ResourceExhaustion",
    "SlowWorker",
    "ThunderingHerd",
    "Timeout",
    "chaospool_register_faults",
)

BUILTIN_FAULTS: tuple[type[Fault], ...] = (
    PortCrash,
    Timeout,
    NetworkPartition,
    ResourceExhaustion,
    ThunderingHerd,
    SlowWorker,
    MemoryLeak,
    NodeCrash,
    NodeFreeze,
)


@hookimpl
def chaospool_register_faults() -> list[type[Fault]]:
    return list(BUILTIN_FAULTS)
