"""Code that runs inside Ray worker processes: the pool's worker actor and the node agent.

``WorkerActor`` runs the *same* ``WorkerCore`` as a subprocess worker: the pool's encoded
frames go in, the frames the core sends come back as the call's result -- so commands, control
ops, sessions, reply delays, blocks and damaged frames behave as they do across a socket.
``NodeAgent`` (one per node) delivers signals to processes on its own node, as Ray's own
killers do, so SIGKILL and SIGSTOP/SIGCONT reach an actor on another host.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from chaospool._wire import protocol as p
from chaospool._worker.controls import BUILTINS
from chaospool._worker.registry import load_commands
from chaospool._worker.runtime import ControlRuntime, WorkerCore

__all__ = ("FREEZE_HELPER", "NodeAgent", "WorkerActor")

_LOG_LINES = 50


class _LineLog(io.TextIOBase):
    """stdout/stderr of a worker actor: lines kept for the pool (``print`` never reaches Ray's
    log streaming, nor the pool's channel)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._partial = ""
        self._new: deque[str] = deque(maxlen=_LOG_LINES)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._partial = (self._partial + text).split("\n")
            self._new.extend(lines)
            self._partial = self._partial[-4096:]
        return len(text)

    def take(self) -> list[str]:
        """Lines written since the last call (bounded)."""
        if not self._new:
            return []
        with self._lock:
            lines = list(self._new)
            self._new.clear()
        return lines


def _adopt(sys_path: Sequence[str], env: Mapping[str, str]) -> None:
    """The pool's sys.path and environment, as a subprocess worker would inherit them."""
    for entry in reversed(sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    os.environ.update(env)


def _default_sigterm() -> None:
    """SIGTERM ends the worker, as it ends a subprocess worker: Ray's handler would only run
    when the main thread next runs Python, and in an actor it sits in Ray's task loop."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


class WorkerActor:
    """One pool worker incarnation. Threaded (``max_concurrency``): a ping or a control op runs
    while a command runs, as on the subprocess worker's control thread."""

    def __init__(
        self, worker: str, index: int, sys_path: Sequence[str], env: Mapping[str, str]
    ) -> None:
        _adopt(sys_path, env)
        _default_sigterm()
        self._log = _LineLog()
        sys.stdout = sys.stderr = self._log
        self._out = threading.local()
        runtime = ControlRuntime(self._transport, worker_index=index, pid=os.getpid())
        self.core = WorkerCore(load_commands(worker), runtime, BUILTINS)
        self._gone = threading.Event()

    def _transport(self, frame: bytes) -> None:
        # every frame the core sends is sent from the thread that runs the call it answers
        self._out.frames.append(frame)

    def hello(self) -> tuple[bytes, str]:
        import ray

        return self.core.hello(), ray.get_runtime_context().get_node_id()

    def call(self, frame: bytes) -> bytes | tuple[bytes, list[str]]:
        """Handle one framed message; return the frames it produced -- with the new log
        lines, when there are any (a plain ``bytes`` result is Ray's cheapest to move: it
        skips Ray's msgpack serializer on both ends)."""
        out: list[bytes] = []
        self._out.frames = out
        msg = p.decode(frame[4:])
        if isinstance(msg, p.Request):
            self.core.handle_request(msg)
        elif isinstance(msg, p.Ping | p.Control):
            self.core.handle_control(msg)
        lines = self._log.take()
        return (b"".join(out), lines) if lines else b"".join(out)

    def watch(self) -> None:
        """Never returns while the actor lives: its failure is how the pool learns of death."""
        self._gone.wait()


# Run by the node agent as a detached process (its own session, outside Ray): it stops the
# node's processes, waits, and continues them -- the agent itself is among those stopped.
FREEZE_HELPER = """
import json, os, signal, sys, time
pids, duration = json.loads(sys.argv[1]), float(sys.argv[2])
time.sleep(0.1)  # the agent's reply leaves before the agent itself is stopped
for pid in pids:
    try: os.kill(pid, signal.SIGSTOP)
    except OSError: pass
time.sleep(duration)
for pid in pids:
    try: os.kill(pid, signal.SIGCONT)
    except OSError: pass
"""


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


class NodeAgent:
    """Signals processes of its own node: only the raylet and the raylet's descendants."""

    def __init__(self) -> None:
        self.raylet = os.getppid()  # Ray workers are children of their node's raylet

    def describe(self) -> dict[str, Any]:
        import ray

        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
                "raylet": self.raylet}

    def processes(self) -> list[int]:
        """The raylet and every process under it (workers, this agent, their children)."""
        return [self.raylet, *_descendants(self.raylet)]

    def signal(self, pid: int, sig: int) -> bool:
        """Send ``sig`` to ``pid`` if it runs under this node's raylet; False if it is gone."""
        if pid not in _descendants(self.raylet):
            return False
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return False
        return True

    def crash(self) -> list[int]:
        """SIGKILL every process of the node at once: its workers, the raylet, this agent."""
        pids = [pid for pid in self.processes() if pid != os.getpid()]
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
        return pids  # never reached: the caller learns the outcome from Ray

    def freeze(self, duration: float) -> dict[str, Any]:
        """SIGSTOP the raylet and its processes for ``duration`` s (this agent last)."""
        others = [pid for pid in self.processes() if pid != os.getpid()]
        pids = [*others, os.getpid()]
        helper = subprocess.Popen(
            [sys.executable, "-c", FREEZE_HELPER, json.dumps(pids), str(duration)],
            start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # reaped here once it has continued the node: never a zombie under this agent
        threading.Thread(target=helper.wait, name="chaospool-freeze-reaper", daemon=True).start()
        return {"pids": pids, "raylet": self.raylet, "helper": helper.pid}

