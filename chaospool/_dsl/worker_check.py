"""Does the worker module import, and which commands does it have? Asked before anything starts.

A typo in ``pool.worker`` or in a command name must be an input error (exit 2, located), never a
run that fails every call and looks like the pool's weakness (docs/dsl.md, "What validate
checks"). The module is imported in a child process, as the pool's workers import it, with the
same ``sys.path``: importing it in the CLI's own process would run the user's import-time code
there and keep it loaded.

Where a worker module (or a plugin given by module name) is found: in the experiment's search
directories first (``_dsl/search_path.py``: its own directory, its ``pythonpath:``), which the
loader puts first on ``sys.path`` while it validates, then the current directory, then
installed packages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ("IMPORT_TIMEOUT", "WorkerCommands", "probe_worker")

IMPORT_TIMEOUT = 60.0  # seconds a worker module may take to import before validation gives up

# Runs in the child. The real stdout is kept for the answer and fd 1 points at stderr, so a
# worker module that prints while it imports cannot corrupt the answer.
_CHILD = r"""
import json, os, sys
config = json.loads(sys.stdin.read())
sys.path[:] = config["path"]
answer = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

def _siblings(name):
    import pkgutil, importlib
    parent, _, _ = name.rpartition(".")
    try:
        where = importlib.import_module(parent).__path__ if parent else None
        return sorted(m.name for m in pkgutil.iter_modules(where))
    except Exception:
        return []

try:
    from chaospool._worker.registry import load_commands
    commands = load_commands(config["worker"])
    result = {"commands": sorted(commands)}
except BaseException as exc:
    missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
    result = {"error": f"{type(exc).__name__}: {exc}", "missing": missing,
              "siblings": _siblings(missing) if missing else []}
answer.write(json.dumps(result))
answer.flush()
"""


@dataclass(frozen=True)
class WorkerCommands:
    """The commands of a worker module, or why it could not be imported.

    ``missing``: the module ModuleNotFoundError named; ``siblings``: the modules beside it,
    for a did-you-mean.
    """

    commands: frozenset[str] | None
    error: str = ""
    missing: str | None = None
    siblings: tuple[str, ...] = ()


def probe_worker(spec: str, path: Sequence[str] | None = None,
                 timeout: float = IMPORT_TIMEOUT) -> WorkerCommands:
    """Import ``spec`` in a child process and list its commands (never raises)."""
    config = json.dumps({"worker": spec, "path": list(sys.path if path is None else path)})
    try:
        done = subprocess.run(  # a fixed argv, never a shell
            [sys.executable, "-c", _CHILD], input=config, capture_output=True, text=True,
            timeout=timeout, env=os.environ.copy(), check=False,
        )
    except subprocess.TimeoutExpired:
        return WorkerCommands(None, f"importing it took more than {timeout:g} s")
    except OSError as exc:
        return WorkerCommands(None, f"cannot start a Python process to import it: {exc}")
    return _parse(done)


def _parse(done: subprocess.CompletedProcess[str]) -> WorkerCommands:
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return WorkerCommands(None, f"the process importing it died: {last}")
    if "commands" in answer:
        return WorkerCommands(frozenset(answer["commands"]))
    return WorkerCommands(None, answer["error"], answer.get("missing"),
                          tuple(answer.get("siblings") or ()))
