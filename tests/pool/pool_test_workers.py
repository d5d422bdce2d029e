"""Worker module for the pool's own tests (imported by name: tests/pool is on sys.path)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

from chaospool.worker import Context, ControlRuntime, command

RELEASE = threading.Event()  # memory-backend tests set it so hanging handler threads end


@command
def ping(args: Any, ctx: Context) -> str:
    return "pong"


@command
def echo(args: Any, ctx: Context) -> Any:
    return args


@command
def pid(args: Any, ctx: Context) -> int:
    return os.getpid()


@command
def index(args: Any, ctx: Context) -> int:
    return ctx.worker_index


@command
def hang(args: Any, ctx: Context) -> str:
    RELEASE.wait((args or {}).get("duration", 30.0))
    return "released"


@command
def die(args: Any, ctx: Context) -> None:
    os.kill(os.getpid(), (args or {}).get("signal", signal.SIGKILL))
    time.sleep(5)


@command
def exit_now(args: Any, ctx: Context) -> None:
    os._exit((args or {}).get("code", 7))


@command
def noisy(args: Any, ctx: Context) -> str:
    for i in range(200):
        print(f"noise line {i} \x00\xff garbage {'x' * 50}")
    sys.stdout.write("\x00\x00\x00\x10not a frame")
    sys.stdout.flush()
    os.write(1, b"\x00\x00\x00\x05raw-bytes-on-fd-1\n")
    os.write(2, b"stderr line from the worker\n")
    return "quiet now"


@command
def boom(args: Any, ctx: Context) -> None:
    raise ValueError(f"boom {args}")


@command
def unserialisable(args: Any, ctx: Context) -> Any:
    return {"value": object()}


@command
def count(args: Any, ctx: Context) -> dict[str, int]:
    ctx.session["n"] = ctx.session.get("n", 0) + 1
    return {"n": ctx.session["n"], "pid": os.getpid()}


@command("renamed")
def _renamed(args: Any, ctx: Context) -> str:
    return "by another name"


def double(args: dict[str, Any], runtime: ControlRuntime) -> dict[str, Any]:
    """A plugin control op: runs on the worker's control thread."""
    return {"double": args.get("x", 0) * 2, "index": runtime.worker_index}


@command
def die_once(args: Any, ctx: Context) -> str:
    """SIGKILLs its worker the first time (a marker file remembers), answers afterwards."""
    marker = args["marker"]
    if not os.path.exists(marker):
        with open(marker, "w"):
            pass
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


@command
def spawn_child(args: Any, ctx: Context) -> int:
    """Start a grandchild (in this worker's process group) and return its pid."""
    import subprocess

    child = subprocess.Popen(["sleep", "60"])
    return child.pid


def _hello(args: Any, ctx: Context) -> str:
    return f"hello {args}"


COMMANDS = {"hello": _hello, "ping": ping}  # for the "module:object" form


# -- a per-session counter, for the session-consistency tests ---------------------------------
@command
def incr(args: Any, ctx: Context) -> int:
    """Add one to the session's counter (after ``delay`` seconds) and return the new value."""
    delay = (args or {}).get("delay", 0.0)
    if delay:
        time.sleep(delay)
    n = ctx.session.get("n", 0) + 1
    ctx.session["n"] = n
    return int(n)


@command
def read(args: Any, ctx: Context) -> int:
    return int(ctx.session.get("n", 0))


@command
def incr_then_raise(args: Any, ctx: Context) -> None:
    """Changes the session in place (by a lot, so that a leak shows), then raises: the change
    must not count."""
    ctx.session["n"] = ctx.session.get("n", 0) + 1000
    raise RuntimeError("changed my mind")


# -- sessions with many top-level keys, for the delta tests ----------------------------------
@command
def fill(args: Any, ctx: Context) -> int:
    for i in range(args["entries"]):
        ctx.session[f"k{i}"] = f"value {i}"
    return len(ctx.session)


@command
def set_entry(args: Any, ctx: Context) -> None:
    ctx.session[args["key"]] = args["value"]


@command
def drop_entry(args: Any, ctx: Context) -> None:
    del ctx.session[args["key"]]


@command
def read_entry(args: Any, ctx: Context) -> Any:
    return ctx.session.get(args["key"])


@command
def grow(args: Any, ctx: Context) -> None:
    """Store ``size`` bytes of text under ``key``: a big state from small args."""
    ctx.session[args["key"]] = "x" * args["size"]


@command
def big(args: Any, ctx: Context) -> bytes:
    """A result of ``size`` bytes."""
    return b"x" * args["size"]


@command
def scratch(args: Any, ctx: Context) -> list[str]:
    """The keys ``ctx.session`` holds when the call starts; then one more is added."""
    seen = sorted(ctx.session)
    ctx.session[f"k{len(seen)}"] = 1
    return seen


_BALLAST: list[bytearray] = []


@command
def ballast(args: Any, ctx: Context) -> int:
    """Hold ``mb`` MB more, every page touched: the kernel then takes longer to tear the
    process down at its death (before its sockets close)."""
    _BALLAST.append(bytearray(b"\x01") * (args["mb"] * 1_000_000))
    return sum(map(len, _BALLAST))
