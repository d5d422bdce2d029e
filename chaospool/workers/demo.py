"""The demo worker: the commands the README's experiments drive.

``ping`` -> "pong" · ``echo`` -> its args · ``sleep {duration}`` · ``compute {n}`` (CPU) ·
``alloc {mb}`` (keeps that much memory) · ``create_program {signature}`` -> ``{"program_id"}``
stored in the session · ``list_programs`` -> ``{"programs": [ids]}`` of this session ·
``execute {program_id, inputs}`` -> ``{"outputs": ...}`` (an error if the session has no such
program).

A session keeps its ``MAX_PROGRAMS`` (32) most recent programs: creating one more drops the
oldest (``execute`` on it then fails like on any unknown program). Why: a real session holds a
bounded working set, and a demo session that grew without end made every later call of the
seed scenario slower -- the measurement would show the workload growing, not the faults
(docs/design.md, Pool, "Sessions"). Program ids stay unique within a session. Each program
is a top-level key of the session's state, so a change ships only that program.
"""

from __future__ import annotations

import time
from typing import Any

from chaospool.worker import Context, command

_kept: list[bytes] = []  # alloc'd memory stays alive for the worker's lifetime
MAX_PROGRAMS = 32  # programs a session keeps (the most recent ones)


@command
def ping(args: Any, ctx: Context) -> str:
    return "pong"


@command
def echo(args: Any, ctx: Context) -> Any:
    return args


@command
def sleep(args: Any, ctx: Context) -> float:
    duration = float((args or {}).get("duration", 0.1))
    time.sleep(duration)
    return duration


@command
def compute(args: Any, ctx: Context) -> int:
    n = int((args or {}).get("n", 1000))
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


@command
def alloc(args: Any, ctx: Context) -> dict[str, int]:
    mb = float((args or {}).get("mb", 1))  # MB = 10^6 bytes, as max_memory: 300MB means
    _kept.append(b"\x01" * int(mb * 10**6))  # written bytes: resident, not just reserved
    return {"kept_mb": round(sum(len(b) for b in _kept) / 10**6)}


# Each program is a top-level key of the session ("program:prog-7"), so creating one ships
# that key (and the counter), and listing them reads only keys: neither costs what the other
# programs weigh (docs/design.md, Pool, "Sessions").
_PREFIX = "program:"


@command
def create_program(args: Any, ctx: Context) -> dict[str, str]:
    session = ctx.session
    number = int(session.get("created", 0))  # a counter: ids are never reused
    program_id = f"prog-{number}"
    session[_PREFIX + program_id] = (args or {}).get("signature", {})
    session["created"] = number + 1
    if number >= MAX_PROGRAMS:  # one too many: drop the oldest
        session.pop(f"{_PREFIX}prog-{number - MAX_PROGRAMS}", None)
    return {"program_id": program_id}


@command
def list_programs(args: Any, ctx: Context) -> dict[str, list[str]]:
    ids = [key[len(_PREFIX):] for key in ctx.session if key.startswith(_PREFIX)]
    return {"programs": sorted(ids)}


@command
def execute(args: Any, ctx: Context) -> dict[str, Any]:
    program_id = (args or {}).get("program_id")
    key = f"{_PREFIX}{program_id}"
    if key not in ctx.session:
        raise KeyError(f"session {ctx.session_id!r} has no program {program_id!r}")
    signature = ctx.session[key] or {}
    inputs = (args or {}).get("inputs", {}) or {}
    joined = ", ".join(f"{k}={inputs[k]!r}" for k in sorted(inputs))
    outputs = {name: f"{name}({joined})" for name in signature.get("outputs", ["output"])}
    return {"outputs": outputs}
