"""A worker module that cannot be imported (for the WorkerStartError test)."""

from __future__ import annotations

raise ImportError("pool_broken_worker is broken on purpose (marker 7f3a)")
