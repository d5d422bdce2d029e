"""Built-in control ops: what faults do *inside* a worker.

Each op is ``fn(args, runtime) -> JSON-able`` and runs on the worker's control thread, so it
works while a user command runs. Long-lived effects (leak, cpu) run on threads started through
the runtime and stopped by their ``un*`` op.
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


def block(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    duration = args.get("duration")
    rt.block(None if duration is None else float(duration))
    return {"blocked": True, "duration": duration}


def unblock(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    rt.unblock()
    return {"blocked": False}


def slow(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    latency = float(args.get("latency", 0.2))
    jitter = float(args.get("jitter", 0.0))
    rt.set_delay(latency, jitter)
    return {"latency": latency, "jitter": jitter}


def unslow(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    rt.set_delay(0.0, 0.0)
    delayed, rt.delayed_replies = rt.delayed_replies, 0
    return {"latency": 0.0, "delayed": delayed}


def leak(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    """Grow RSS at ``rate`` bytes/s up to ``limit`` bytes, on a thread; pages are touched."""
    rate = float(args.get("rate", 50 * MB))
    limit = int(args.get("limit", 500 * MB))
    chunks: list[bytes] = rt.state.setdefault("leak", [])

    def grow(stop: threading.Event) -> None:
        step = 0.05
        leaked = sum(len(c) for c in chunks)
        while not stop.is_set() and leaked < limit:
            size = int(min(max(rate * step, 4096), limit - leaked))
            chunks.append(b"\x01" * size)  # multiplication writes every byte: real RSS
            leaked += size
            stop.wait(step)

    rt.start_thread("chaospool-leak", grow)
    return {"rate": rate, "limit": limit}


def unleak(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    rt.stop_thread("chaospool-leak")
    chunks = rt.state.pop("leak", [])
    return {"leaked": sum(len(c) for c in chunks)}


def cpu(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    """Busy threads; sha256 of a large buffer releases the GIL, so each thread burns a core."""
    threads = int(args.get("threads") or os.cpu_count() or 1)
    duration = args.get("duration")
    deadline = None if duration is None else time.monotonic() + float(duration)
    block_ = os.urandom(MB)

    def burn(stop: threading.Event) -> None:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            hashlib.sha256(block_).digest()

    for i in range(threads):
        rt.start_thread(f"chaospool-cpu-{i}", burn)
    rt.state["cpu_threads"] = threads
    return {"threads": threads, "duration": duration}


def uncpu(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    threads = int(rt.state.pop("cpu_threads", 0))
    for i in range(threads):
        rt.stop_thread(f"chaospool-cpu-{i}")
    return {"threads": threads}


def fds(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    amount = int(args.get("amount", 1024))
    opened: list[int] = rt.state.setdefault("fds", [])
    start = len(opened)
    try:
        for _ in range(amount):
            opened.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass  # the limit was reached first: that is the point
    return {"opened": len(opened) - start}


def unfds(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    opened: list[int] = rt.state.pop("fds", [])
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
    return {"mode": mode, "count": count}


def uncorrupt(args: dict[str, Any], rt: ControlRuntime) -> dict[str, Any]:
    rt.clear_reply_filters()
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
