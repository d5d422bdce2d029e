"""A worker module whose runtime carries the planted session-cache bug
(``probe_stale_cache.StaleSessionCache``), for the process backend in
tests/probe/test_consistency.py (imported by name: tests/probe is on sys.path).

Nothing in ``chaospool`` is edited: importing this module swaps the runtime's session cache
class. Only the zygote imports a worker module, so only it and the workers forked from it carry
the bug -- never import this module in the test process (the memory backend would then serve
every later test with the bug).
"""

from __future__ import annotations

from probe_stale_cache import StaleSessionCache

from chaospool._worker import runtime
from chaospool.workers.demo import ping, sleep

__all__ = ("ping", "sleep")

runtime.SessionCache = StaleSessionCache  # type: ignore[attr-defined]  # reason: the planted bug
