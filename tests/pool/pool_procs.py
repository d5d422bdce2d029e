"""Process facts the pool tests check: a pid is gone, the test's own descendants."""

from __future__ import annotations

import psutil


def gone(pid: int | None) -> bool:
    """Exited: no such process, or a zombie (dead; its exit status waits for its reaper)."""
    assert pid is not None
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def exited(proc: psutil.Process) -> bool:
    """``gone`` for a process seen alive before: its pid may be reused once it is reaped (the
    pid space here is 32768), and a reused pid is another process, not this one alive."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}
