"""The worker pool: ``Pool`` and what it shows of itself.

::

    async with Pool(worker="chaospool.workers.demo", size=4, max_overflow=1) as pool:
        reply = await pool.execute("echo", {"x": 1}, session="s1", timeout=1.0, retries=2)

``Pool`` runs workers as subprocesses forked from a warm fork server (``backend="process"``)
or as in-process fake workers for fast tests (``backend="memory"``), or as Ray actors across a
cluster (``backend="ray", ray={...}``, ``docs/ray.md``), behind the same framed, versioned
protocol. See ``docs/design.md`` (section "Pool") for how it is built.
"""

from __future__ import annotations

from chaospool._pool.backend import Backend, ExitStatus, Link
from chaospool._pool.core import Pool
from chaospool._pool.events import EVENT_KINDS, PoolEvent, PoolStats
from chaospool._pool.handle import WorkerHandle
from chaospool._pool.worker import Partition

__all__ = (
    "EVENT_KINDS",
    "Backend",
    "ExitStatus",
    "Link",
    "Partition",
    "Pool",
    "PoolEvent",
    "PoolStats",
    "WorkerHandle",
)
