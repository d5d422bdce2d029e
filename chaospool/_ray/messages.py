"""Ray's messages to the driver, kept off the user's terminal for a local cluster (docs/ray.md).

A Ray driver prints, on its own stdout, every error message the cluster publishes for its job:
"A worker died or was killed...", "The node ... has been marked dead", "Raylet is terminated"
with the last 20 lines of the raylet's log. In a chaos experiment those are the faults doing
their job, dozens of lines each, interleaved with chaospool's own output. For a local cluster
chaospool started they go instead to a file in the cluster's session log directory (beside
Ray's own logs), to the ``chaospool.ray`` logger (INFO), and a message that names a worker's
pid to that worker's log -- so the pool's error for that worker (``WorkerCrashed``) still
carries Ray's account. Ray's *Python* logger stays at ERROR for such a cluster: its errors
still reach the terminal.

The printing happens in Ray's ``listen_error_messages`` thread, which calls the module-level
``ray._private.worker.print_to_stdstream`` by name on each message; that name is rebound here
(private API: Ray is pinned and ``tests/ray/test_parent_killed.py`` fails if the noise is back).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ("FILE_NAME", "Router", "install")

FILE_NAME = "chaospool-driver-messages.log"
_PID = re.compile(r"Worker PID: (\d+)")
_log = logging.getLogger("chaospool.ray")
_LOCK = threading.Lock()
_ROUTER: Router | None = None

Listener = Callable[[int, list[str]], None]


class Router:
    """Where Ray's messages go while a local cluster's session is up."""

    def __init__(self, log_dir: str | None) -> None:
        self.path = os.path.join(log_dir, FILE_NAME) if log_dir else None
        self.listeners: list[Listener] = []  # (pid named in a message, its lines)
        self.count = 0

    def deliver(self, lines: list[str]) -> None:
        self.count += 1
        self._write(lines)
        for line in lines:
            _log.info("ray: %s", line)
        for match in _PID.finditer("\n".join(lines)):
            for listener in list(self.listeners):
                listener(int(match.group(1)), lines)

    def _write(self, lines: list[str]) -> None:
        if self.path is None:
            return
        try:
            with open(self.path, "a", encoding="utf-8") as out:
                out.writelines(f"{line}\n" for line in lines)
        except OSError:  # the session dir went away during shutdown: nothing to keep
            pass


def _routed(original: Callable[..., Any]) -> Callable[..., Any]:
    def print_to_stdstream(data: dict[str, Any], ignore_prefix: bool = False) -> None:
        router = _ROUTER
        if router is None or data.get("pid") != "raylet":
            original(data, ignore_prefix=ignore_prefix)  # not ours to keep: Ray's behaviour
            return
        router.deliver([str(line) for line in data.get("lines", [])])

    print_to_stdstream.chaospool_patch = True  # type: ignore[attr-defined]
    return print_to_stdstream


def install(ray: ModuleType, router: Router | None) -> None:
    """Route the cluster's messages to ``router`` (None: Ray's own printing, e.g. for a
    cluster chaospool only connected to). Idempotent; the replacement is process-wide."""
    global _ROUTER
    worker = ray._private.worker
    with _LOCK:
        current = worker.print_to_stdstream
        if not getattr(current, "chaospool_patch", False):
            worker.print_to_stdstream = _routed(current)
        _ROUTER = router
