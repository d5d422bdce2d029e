"""Exit bells: the pool hears a worker's death when the kernel begins its exit, not when the
kernel has torn down its memory and closed its sockets (docs/design.md, "Exit bells").

Each worker holds a robust, process-shared pthread mutex (its *bell*) in a memfd mapped by
the pool, the zygote and, through the fork, every worker. When a thread exits, the kernel
first marks every robust mutex it holds as "owner died" and wakes a waiter -- before it
unmaps the process's memory and closes its files. A pool thread waits on each worker's bell;
its lock returns ``EOWNERDEAD`` as the worker starts to exit: on this VM ~0.5 ms after a
SIGKILL, against 1.2-1.5 ms for the EOF of its socket (the teardown of a ~14 MB worker).

Linux with glibc's robust mutexes; anything missing (another libc, no memfd) and there are
no bells: the pool learns of deaths at the EOF, as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import mmap
import os
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["SLOTS", "SLOT_SIZE", "Bells", "hold"]

SLOTS = 1024  # bells per pool (64 KiB); a worker started when all are in use has none
SLOT_SIZE = 64  # >= sizeof(pthread_mutex_t) on every glibc platform (40 on x86-64, 48 arm64)
_ATTR_SIZE = 64  # >= sizeof(pthread_mutexattr_t) (4 or 8)
_PTHREAD_PROCESS_SHARED = 1
_PTHREAD_MUTEX_ROBUST = 1
# How often a wait looks whether its worker is gone unheard (a bell unmapped before its
# holder died is never rung): then the thread ends instead of waiting forever.
RECHECK = 5.0


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _libc() -> ctypes.CDLL | None:
    lib = ctypes.CDLL(None, use_errno=True)  # the C library this process already has loaded
    needed = ("pthread_mutexattr_setrobust", "pthread_mutex_consistent", "pthread_mutex_trylock",
              "pthread_mutex_timedlock")
    return lib if all(hasattr(lib, f) for f in needed) else None


_LIBC = _libc()  # loaded once (the zygote preloads it for its workers)


class Bells:
    """The pool's side: the shared mapping, which bells are free, and the waits."""

    def __init__(self, libc: ctypes.CDLL) -> None:
        self._libc = libc
        self.fd = os.memfd_create("chaospool-bells", os.MFD_CLOEXEC)
        try:
            os.ftruncate(self.fd, SLOTS * SLOT_SIZE)
            self._mem = mmap.mmap(self.fd, SLOTS * SLOT_SIZE)
            self._attr = ctypes.create_string_buffer(_ATTR_SIZE)
            _check(libc.pthread_mutexattr_init(self._attr))
            _check(libc.pthread_mutexattr_setpshared(self._attr, _PTHREAD_PROCESS_SHARED))
            _check(libc.pthread_mutexattr_setrobust(self._attr, _PTHREAD_MUTEX_ROBUST))
        except OSError:
            os.close(self.fd)
            raise
        self._base = ctypes.addressof(ctypes.c_char.from_buffer(self._mem))
        # deque: taken in the loop's thread, given back by a waiter's (append/pop are atomic)
        self._free: deque[int] = deque(range(SLOTS))

    @classmethod
    def create(cls) -> Bells | None:
        """Bells, or None where this platform has no robust shared mutexes."""
        if _LIBC is None or not hasattr(os, "memfd_create"):
            return None
        try:
            return cls(_LIBC)
        except OSError:
            return None

    def take(self) -> int | None:
        """A free bell, made ready for a new worker to hold; None if all are in use."""
        try:
            slot = self._free.popleft()
        except IndexError:
            return None
        if self._libc.pthread_mutex_init(self._at(slot), self._attr) != 0:
            return None  # (not given back: a bell that cannot be set up stays out of use)
        return slot

    def give_back(self, slot: int) -> None:
        """A bell no worker will hold (its worker never got it): free again."""
        self._free.append(slot)

    def watch(
        self, slot: int, rung: Callable[[], None], gone: Callable[[], bool] = lambda: False
    ) -> threading.Thread:
        """Wait for the bell's holder to exit, in a thread of its own; then call ``rung``
        (from that thread) if it did exit holding it. The holder must hold it already.
        ``gone`` says (every ``RECHECK`` s) whether the holder is known to be gone anyway."""
        thread = threading.Thread(target=self._wait, args=(slot, rung, gone), daemon=True,
                                  name=f"chaospool-bell-{slot}")
        thread.start()
        return thread

    def _wait(self, slot: int, rung: Callable[[], None], gone: Callable[[], bool]) -> None:
        mutex = self._at(slot)
        while True:  # (ctypes lets go of the GIL while the lock waits)
            wake = time.time() + RECHECK  # (timedlock's clock is CLOCK_REALTIME)
            deadline = _Timespec(int(wake), int(wake % 1 * 1e9))
            result = self._libc.pthread_mutex_timedlock(mutex, ctypes.byref(deadline))
            if result != errno.ETIMEDOUT:
                break
            if gone():
                return  # it died unheard: the bell stays out of use (its state is unknown)
        if result == errno.EOWNERDEAD:
            self._libc.pthread_mutex_consistent(mutex)
        if result not in (0, errno.EOWNERDEAD):
            return  # not recoverable: the bell stays out of use
        self._libc.pthread_mutex_unlock(mutex)
        self._free.append(slot)
        if result == errno.EOWNERDEAD:
            rung()  # 0: its holder never took it (it died first); its EOF tells

    def close(self) -> None:
        """The fd goes (the zygote has its own); the mapping stays while a waiter may use it
        and goes with the last reference."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _at(self, slot: int) -> ctypes.c_void_p:
        return ctypes.c_void_p(self._base + slot * SLOT_SIZE)


_HELD: list[mmap.mmap] = []


def hold(mem: mmap.mmap, slot: int) -> bool:
    """In a new worker, first thing: hold bell ``slot`` for life (its main thread does: the
    kernel rings it when that thread exits). False if it could not."""
    if _LIBC is None:
        return False
    _HELD.append(mem)  # mapped for life: the kernel reads the bell where the worker dies
    mutex = ctypes.c_void_p(ctypes.addressof(ctypes.c_char.from_buffer(mem)) + slot * SLOT_SIZE)
    # trylock: a bell is set up afresh for each worker, so it is free; were it not, this
    # worker would go without one rather than wait (and its zygote, which waits for it)
    result = _LIBC.pthread_mutex_trylock(mutex)
    if result == errno.EOWNERDEAD:  # (not expected either)
        _LIBC.pthread_mutex_consistent(mutex)
        result = 0
    return bool(result == 0)


def _check(result: int) -> None:
    if result != 0:
        raise OSError(result, os.strerror(result))
