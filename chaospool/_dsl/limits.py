"""Sizes this machine can hold: a pool, a probe and a herd that would take it down are refused.

Each limit comes with its reason, printed in the error (docs/dsl.md, "Limits"). They are read
from the machine (file-descriptor and process limits, memory) when an experiment is validated.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

import psutil

__all__ = ("CLIENTS_MAX", "HERD_MAX", "Limit", "pool_limit")

# Every load client is a task with its own buffers and recorder state; beyond this the probe
# itself (not the pool) becomes what is measured.
CLIENTS_MAX = 100_000
# A herd's calls are all pending at once, each holding a request, a timer and a reply slot
# (a few KB): 10^6 of them is gigabytes of the parent's memory.
HERD_MAX = 1_000_000
# What one worker costs the parent: a data socket, a control socket, a log pipe, the process.
FDS_PER_WORKER = 4
FDS_RESERVED = 64  # the parent's own files, the probe's, the report's
WORKER_MEMORY = 20 * 10**6  # bytes a forked worker needs at least (interpreter + imports)


@dataclass(frozen=True)
class Limit:
    value: int
    why: str


def pool_limit() -> Limit:
    """The most workers (size + max_overflow) this process can run, and what bounds it."""
    candidates = [_fd_limit(), _process_limit(), _memory_limit()]
    return min(candidates, key=lambda limit: limit.value)


def _fd_limit() -> Limit:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    value = max(1, (soft - FDS_RESERVED) // FDS_PER_WORKER)
    return Limit(value, f"each worker holds {FDS_PER_WORKER} of the parent's file descriptors "
                        f"and the open-file limit (ulimit -n) is {soft}")


def _process_limit() -> Limit:
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    pid_max = _read_int("/proc/sys/kernel/pid_max", 32768)
    bound = pid_max if soft == resource.RLIM_INFINITY else min(soft, pid_max)
    value = max(1, bound // 2)  # leave half for everything else the user runs
    return Limit(value, f"each worker is a process and the process limit is {bound}")


def _memory_limit() -> Limit:
    available = psutil.virtual_memory().available
    value = max(1, available // WORKER_MEMORY)
    return Limit(value, f"each worker needs about {WORKER_MEMORY // 10**6} MB and "
                        f"{available // 10**6} MB of memory are available")


def _read_int(path: str, default: int) -> int:
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return default

