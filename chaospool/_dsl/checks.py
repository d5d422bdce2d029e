"""Checks that need more than the experiment's own text: the worker's commands, the machine's
limits, what the wire can carry (docs/dsl.md, "What validate checks").

Run by the loader once the sections they read are valid; each problem is recorded, located,
in the same ``Reader`` as every other error, so the user sees them all at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import msgspec

from chaospool._dsl.limits import CLIENTS_MAX, HERD_MAX, pool_limit
from chaospool._dsl.model import FaultStep, LoadSpec, PoolSpec
from chaospool._dsl.reader import Reader, did_you_mean, show
from chaospool._dsl.source import Path
from chaospool._dsl.worker_check import WorkerCommands
from chaospool._worker.builtins import COMMANDS as BUILTIN_COMMANDS

__all__ = ("CommandProbe", "check_args", "check_clients", "check_commands", "check_sizes")

# worker spec -> the worker's commands, or why it did not import (imported with ``sys.path``
# as it is: the loader has put the experiment's search directories first, docs/dsl.md)
CommandProbe = Callable[[str], WorkerCommands]


def check_args(reader: Reader, path: Path, args: Any) -> bool:
    """Arguments the wire cannot carry (an integer beyond 64 bits) are an input error here,
    not a failing call at run time."""
    try:
        msgspec.msgpack.encode(args)
    except (OverflowError, TypeError, msgspec.EncodeError) as exc:
        reader.error(path, f"these arguments cannot be sent to a worker: {exc} (call arguments "
                           "are sent as msgpack: integers must fit in 64 bits)")
        return False
    return True


def check_clients(reader: Reader, clients: Any) -> Any:
    if isinstance(clients, int) and clients > CLIENTS_MAX:
        return reader.error(("load", "clients"),
                            f"{clients} clients is more than this machine's probe can run "
                            f"(at most {CLIENTS_MAX}: each client is a task with its own "
                            "buffers, and beyond that the probe, not the pool, is what gets "
                            "measured)")
    return clients


def check_sizes(reader: Reader, pool: Any, steps: Any) -> None:
    if isinstance(pool, PoolSpec):
        _pool_size(reader, pool)
    for step in steps if isinstance(steps, tuple) else ():
        if hasattr(step.params, "args"):
            check_args(reader, ("method", step.index, "args"), step.params.args)
        requests = getattr(step.params, "requests", None)
        if isinstance(requests, int) and requests > HERD_MAX:
            reader.error(("method", step.index, "requests"),
                         f"{requests} simultaneous requests is more than this machine can hold "
                         f"(at most {HERD_MAX}: every request is pending at once and holds a "
                         "few KB of the parent's memory)")


def _pool_size(reader: Reader, pool: PoolSpec) -> None:
    limit = pool_limit()
    total = pool.size + pool.max_overflow
    if total > limit.value:
        where = ("pool", "size") if pool.size > limit.value else ("pool", "max_overflow")
        reader.error(where, f"a pool of {total} workers (size + max_overflow) is more than this "
                            f"machine can run: at most {limit.value}, because {limit.why}")


def check_commands(reader: Reader, top: Mapping[str, Any], probe: CommandProbe,
                   faults: Mapping[str, Any]) -> None:
    """The worker module imports, and has every command the experiment names."""
    pool = top.get("pool")
    if not isinstance(pool, PoolSpec):
        return
    found = probe(pool.worker)
    if found.commands is None:
        listed = top.get("pythonpath")
        reader.error(("pool", "worker"), _import_message(
            pool.worker, found, listed if isinstance(listed, tuple) else ()))
        return
    # every worker also serves the probe's built-in commands (chaospool.incr, chaospool.read)
    known = found.commands | frozenset(BUILTIN_COMMANDS)
    for path, name, why in _named_commands(top, faults):
        if path[:2] == ("load", "mix") and ("load", "mix") not in reader.source.values:
            why = " (the default load.mix calls it: give a load.mix)"
        if name not in known:
            reader.error(path, f"unknown command {show(name)}{why}: worker {pool.worker!r} "
                               "has no such command" + did_you_mean(name, found.commands))


def _import_message(spec: str, found: WorkerCommands, pythonpath: tuple[str, ...]) -> str:
    hint = ""
    if found.missing and found.siblings:
        parent, _, leaf = found.missing.rpartition(".")
        full = [f"{parent}.{name}" if parent else name for name in found.siblings]
        whole = f"{parent}.{leaf}" if parent else leaf
        hint = did_you_mean(whole, full) if _close(whole, full) else ""
    listed = f", its pythonpath {list(pythonpath)}" if pythonpath else ""
    return (f"worker module {spec!r} cannot be imported: {found.error}{hint} (looked in the "
            f"experiment's directory{listed}, the current directory and installed packages)")


def _close(word: str, options: list[str]) -> bool:
    return "did you mean" in did_you_mean(word, options)


def _named_commands(top: Mapping[str, Any],
                    faults: Mapping[str, Any]) -> Iterator[tuple[Path, str, str]]:
    """(where, command, why it is needed) for every command the experiment relies on."""
    load = top.get("load")
    if isinstance(load, LoadSpec):
        for i, entry in enumerate(load.mix):
            yield ("load", "mix", i, "command"), entry.command, ""
    steps = top.get("method")
    for step in steps if isinstance(steps, tuple) else ():
        yield from _step_commands(step, faults.get(step.fault))


def _step_commands(step: FaultStep, fault: Any) -> Iterator[tuple[Path, str, str]]:
    params = step.params
    named = getattr(params, "command", None)  # a parameter called `command` names one
    if isinstance(named, str):
        yield ("method", step.index, "command"), named, ""
    # a fault may name the commands it calls itself (resource_exhaustion holds workers with
    # `sleep`): ``Fault.required_commands(params) -> (command, ...)``; the error points at the
    # parameter that asks for it when there is one (`resource: capacity`), else at the step
    needed = getattr(fault, "required_commands", None)
    if callable(needed):
        key = "resource" if hasattr(params, "resource") else "fault"
        for name in needed(params):
            yield ("method", step.index, key), name, f" (fault {step.fault!r} calls it)"
