"""Built-in control ops: what faults do *inside* a worker.

Each op is ``fn(args, runtime) -> JSON-able`` and runs on the worker's control thread, so it
works while a user command runs. Long-lived effects (leak, cpu) run on threads started through
the runtime and stopped by their ``un*`` op.

Every op that starts an effect takes an optional ``token`` (the step it belongs to) and keeps
its effect under that token, so that overlapping steps on one worker compose and each ``un*``
undoes only its own step's effect (docs/faults.md, "Overlapping faults on one worker").
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from typing import Any

from chaospool._wire import protocol as p
from chaospool._worker.runtime import ControlFn, ControlRuntime

MB = 1024 * 1024


def _token(args: dict[str, Any]) -> str:
    """The step a control op belongs to (docs/faults.md "Overlapping faults"): each fault sends
    its own token with the op and its undo, so one step's undo never ends another's effect."""
    return str(args.get("token", ""))


def _tokens(rt: ControlRuntime, kind: str) -> dict[str, Any]:
    tokens: dict[str, Any] = rt.state.setdefault(f"tokens:{kind}", {})
    return tokens


def block(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    """Answer nothing until every blocking step has unblocked (or its ``duration`` ended)."""
    duration = args.get("duration")
    until = None if duration is None else time.monotonic() + float(duration)
    _tokens(rt, "block")[_token(args)] = until
    _apply_block(rt)
    return {"blocked": rt.blocked, "duration": duration}


def unblock(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    _tokens(rt, "block").pop(_token(args), None)
    _apply_block(rt)
    return {"blocked": rt.blocked}


def _apply_block(rt: ControlRuntime) -> None:
    """Block until the latest deadline of the steps still blocking (None: until unblocked)."""
    tokens = _tokens(rt, "block")
    now = time.monotonic()
    for token in [t for t, until in tokens.items() if until is not None and until <= now]:
        del tokens[token]  # that step's own deadline passed: it unblocked itself
    if not tokens:
        rt.unblock()
        return
    deadlines = list(tokens.values())
    rt.block(None if None in deadlines else max(deadlines) - now)


def slow(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    """Delay replies; overlapping steps compose: the largest latency of the active ones holds."""
    latency = max(0.0, float(args.get("latency", 0.2)))
    jitter = max(0.0, float(args.get("jitter", 0.0)))
    # the reply count when this step began: its own share of delayed replies at unslow
    _tokens(rt, "slow")[_token(args)] = (latency, jitter, rt.delayed_replies)
    _apply_delay(rt)
    return {"latency": latency, "jitter": jitter}


def unslow(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    entry = _tokens(rt, "slow").pop(_token(args), None)
    latency = _apply_delay(rt)
    # replies delayed while this step was active (an overlapping step's share overlaps it)
    delayed = 0 if entry is None else rt.delayed_replies - entry[2]
    return {"latency": latency, "delayed": delayed}


def _apply_delay(rt: ControlRuntime) -> float:
    """Set the delay of the slowest active step (none: no delay); returns its latency."""
    active = _tokens(rt, "slow").values()
    latency, jitter, _ = max(active, default=(0.0, 0.0, 0), key=lambda e: e[0] + e[1])
    rt.set_delay(latency, jitter)
    return float(latency)


def leak(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    """Grow RSS at ``rate`` bytes/s up to ``limit`` bytes, on a thread; pages are touched.
    Each step leaks into its own list, freed by its own ``unleak``."""
    rate = float(args.get("rate", 50 * MB))
    limit = int(args.get("limit", 500 * MB))
    token = _token(args)
    chunks: list[bytes] = _tokens(rt, "leak").setdefault(token, [])

    def grow(stop: threading.Event) -> None:
        step = 0.05
        leaked = sum(len(c) for c in chunks)
        while not stop.is_set() and leaked < limit:
            size = int(min(max(rate * step, 4096), limit - leaked))
            chunks.append(b"\x01" * size)  # multiplication writes every byte: real RSS
            leaked += size
            stop.wait(step)

    rt.start_thread(f"chaospool-leak{token}", grow)
    return {"rate": rate, "limit": limit}


def unleak(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    token = _token(args)
    rt.stop_thread(f"chaospool-leak{token}")
    chunks = _tokens(rt, "leak").pop(token, [])
    return {"leaked": sum(len(c) for c in chunks)}


def cpu(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    """Busy threads; sha256 of a large buffer releases the GIL, so each thread burns a core."""
    threads = int(args.get("threads") or os.cpu_count() or 1)
    duration = args.get("duration")
    deadline = None if duration is None else time.monotonic() + float(duration)
    block_ = os.urandom(MB)
    token = _token(args)

    def burn(stop: threading.Event) -> None:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            hashlib.sha256(block_).digest()

    for i in range(threads):
        rt.start_thread(f"chaospool-cpu{token}-{i}", burn)
    _tokens(rt, "cpu")[token] = threads
    return {"threads": threads, "duration": duration}


def uncpu(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    token = _token(args)
    threads = int(_tokens(rt, "cpu").pop(token, 0))
    for i in range(threads):
        rt.stop_thread(f"chaospool-cpu{token}-{i}")
    return {"threads": threads}


def fds(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    amount = int(args.get("amount", 1024))
    opened: list[int] = _tokens(rt, "fds").setdefault(_token(args), [])
    start = len(opened)
    try:
        for _ in range(amount):
            opened.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass  # the limit was reached first: that is the point
    return {"opened": len(opened) - start}


def unfds(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    opened: list[int] = _tokens(rt, "fds").pop(_token(args), [])
    for fd in opened:
        os.close(fd)
    return {"opened": 0, "closed": len(opened)}


def _damage(mode: str) -> Any:
    def garbage(frame: bytes) -> bytes:
        # 0xc1 is never valid msgpack: the frame cannot decode, whatever follows it
        body = b"\xc1" + random.randbytes(max(0, len(frame) - 5))
        return p.HEADER.pack(len(body)) + body

    def truncate(frame: bytes) -> bytes:
        body = frame[4 : 4 + max(1, (len(frame) - 4) // 2)]
        return p.HEADER.pack(len(body)) + body

    if mode not in ("garbage", "truncate"):
        raise ValueError(f"corrupt mode must be 'garbage' or 'truncate', not {mode!r}")
    return garbage if mode == "garbage" else truncate


def corrupt(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    """Damage the next ``count`` reply frames: a byzantine worker."""
    mode = str(args.get("mode", "garbage"))
    count = int(args.get("count", 1))
    damage = _damage(mode)
    left = [count]

    def filt(frame: bytes) -> bytes:
        if left[0] <= 0:
            return frame
        left[0] -= 1
        if left[0] == 0:
            remove()
        return damage(frame)  # type: ignore[no-any-return]

    remove = rt.add_reply_filter(filt)
    _tokens(rt, "corrupt")[_token(args)] = remove
    return {"mode": mode, "count": count}


def uncorrupt(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    """Remove this step's filter; without a token, every filter (as before tokens)."""
    if "token" not in args:
        rt.clear_reply_filters()
        _tokens(rt, "corrupt").clear()
    else:
        remove = _tokens(rt, "corrupt").pop(_token(args), None)
        if remove is not None:
            remove()
    return {"corrupt": False}


def info(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    import psutil

    proc = psutil.Process()
    return {
        "pid": os.getpid(),
        "rss": proc.memory_info().rss,
        "threads": threading.active_count(),
        "fds": proc.num_fds(),
    }


BUILTINS: dict[str, ControlFn] = {
    "block": block,
    "unblock": unblock,
    "slow": slow,
    "unslow": unslow,
    "leak": leak,
    "unleak": unleak,
    "cpu": cpu,
    "uncpu": uncpu,
    "fds": fds,
    "unfds": unfds,
    "corrupt": corrupt,
    "uncorrupt": uncorrupt,
    "info": info,
}
