"""Process facts the pool tests check: a pid is gone, the test's own descendants."""

from __future__ import annotations

import os

import psutil


def gone(pid: int | None) -> bool:
    """Exited: no such process, a zombie (dead; its exit status waits for its reaper), or
    exiting -- the kernel tearing it down, it never runs again (the pool hears that moment by
    the worker's exit bell, docs/design.md)."""
    assert pid is not None
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE or exiting(pid)
    except psutil.NoSuchProcess:
        return True


def exited(proc: psutil.Process) -> bool:
    """``gone`` for a process seen alive before: its pid may be reused once it is reaped (the
    pid space here is 32768), and a reused pid is another process, not this one alive."""
    try:
        return (not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
                or exiting(proc.pid))
    except psutil.NoSuchProcess:
        return True


def exiting(pid: int) -> bool:
    """Every thread of ``pid`` in its exit (``PF_EXITING``, 0x4 in field 9 of its ``stat``) or
    done: none of it runs again."""
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if fields[0] != b"Z" and not int(fields[6]) & 0x4:
                return False
    except OSError:
        return True  # gone meanwhile
    return True


def descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}
