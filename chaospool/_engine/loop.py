"""The event loop the engine's own front doors run on: the CLI, ``chaospool.run`` and, through
it, the pytest plugin's ``chaospool_run``.

uvloop where it is installed: the parent's event loop is the ceiling of the pool's throughput
(docs/design.md, "Performance"), and uvloop's is about 1.5x asyncio's (a bare reference loop
on a quiet 2-vCPU machine). ``CHAOSPOOL_LOOP`` (or
``chaospool run --loop``) chooses another: ``asyncio`` for the plain loop, ``trio``, or
``uvloop`` (then an error if it is missing, rather than a silently slower run). Code that runs
the engine in its own loop (``run_async``, async tests) keeps that loop.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

__all__ = ("CHOICES", "ENV", "LoopChoiceError", "choose", "run")

ENV = "CHAOSPOOL_LOOP"
CHOICES = ("uvloop", "asyncio", "trio")
T = TypeVar("T")


class LoopChoiceError(ValueError):
    """The chosen event loop is unknown or not installed."""


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def choose(explicit: str | None = None) -> str:
    """``explicit`` (``--loop``), else ``$CHAOSPOOL_LOOP``, else uvloop if installed, else
    asyncio."""
    name = (explicit or os.environ.get(ENV, "")).strip().lower()
    if not name:
        return "uvloop" if _installed("uvloop") else "asyncio"
    if name not in CHOICES:
        where = "--loop" if explicit else ENV
        raise LoopChoiceError(f"{where}: unknown event loop {name!r} (choose one of "
                              f"{', '.join(CHOICES)})")
    if name != "asyncio" and not _installed(name):
        raise LoopChoiceError(f"event loop {name!r} chosen, but {name} is not installed "
                              f"(pip install {name}, or choose asyncio)")
    return name


def run(fn: Callable[[], Awaitable[T]], loop: str | None = None) -> T:
    """``anyio.run(fn)`` on the chosen loop."""
    name = choose(loop)
    if name == "trio":
        return anyio.run(fn, backend="trio")
    return anyio.run(fn, backend="asyncio", backend_options={"use_uvloop": name == "uvloop"})
