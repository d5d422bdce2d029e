"""Where a replacement's time goes: per-step timestamps from the SIGKILL, by monkeypatching.

Used by ``bench_pool.py --trace``: each step is the first time (after the kill) that one pool
function ran for the killed slot; the report gives each step's median over the kills. The
patches only record ``time.perf_counter()`` and call the original, so the figures include
their own small cost (a dict store per step).
"""

from __future__ import annotations

import functools
import inspect
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from chaospool._pool import process, supervisor

# (label, owner, attribute): in the order a replacement passes them
STEPS: list[tuple[str, Any, str]] = [
    ("exit bell (asyncio)", process.ProcessLink, "on_bell"),
    ("EOF (data socket)", process._FrameProtocol, "eof_received"),
    ("death certain (status read)", process._Exit, "exited"),
    ("zygote's exit report", process.ProcessBackend, "_on_exited"),
    ("decision (restart)", supervisor.Supervisor, "launch"),
    ("spare taken (Start sent)", process.ProcessBackend, "_adopt_spare"),
    ("spare taken at once (Start sent)", process.ProcessBackend, "take_ready"),
    ("crash event", supervisor.Supervisor, "_on_dead"),
    ("serving (start event)", supervisor.Supervisor, "_on_ready"),
]


class Trace:
    def __init__(self) -> None:
        self.t0 = 0.0
        self.now: dict[str, float] = {}
        self.all: dict[str, list[float]] = {}

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.now = {}

    def mark(self, label: str) -> None:
        if self.t0 and label not in self.now:
            self.now[label] = time.perf_counter() - self.t0

    def done(self, served: float) -> None:
        self.now["wait_serving returned"] = served
        for label, t in self.now.items():
            self.all.setdefault(label, []).append(t)
        self.t0 = 0.0

    def report(self, title: str) -> str:
        order = [label for label, _, _ in STEPS] + ["wait_serving returned"]
        rows = [f"  {label:<28}{statistics.median(self.all[label]) * 1e3:7.2f} ms"
                f"  (n={len(self.all[label])})" for label in order if label in self.all]
        return f"{title}: per-step medians from the kill\n" + "\n".join(rows)


def _wrap(trace: Trace, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def traced(*args: Any, **kwargs: Any) -> Any:
        trace.mark(label)
        return fn(*args, **kwargs)

    return traced


def _wrap_async(trace: Trace, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def traced(*args: Any, **kwargs: Any) -> Any:
        result = await fn(*args, **kwargs)
        trace.mark(label)  # after: the step is done when it returns
        return result

    return traced


@contextmanager
def traced(trace: Trace) -> Iterator[Trace]:
    """Patch every step that exists in this version of the pool; undo on exit."""
    saved = []
    for label, owner, name in STEPS:
        fn = getattr(owner, name, None)
        if fn is None:
            continue  # a step this version does not have (e.g. before/after a change)
        saved.append((owner, name, fn))
        wrap = _wrap_async if inspect.iscoroutinefunction(fn) else _wrap
        setattr(owner, name, wrap(trace, label, fn))
    try:
        yield trace
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)
