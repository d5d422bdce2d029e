"""Exit bells (docs/design.md, "Exit bells"): a worker's death is heard when the kernel begins
its exit, before the teardown of its memory that comes before the EOF of its sockets.

The bells themselves (a robust shared mutex each, rung by the kernel), then the pool: on
asyncio and uvloop a SIGKILLed worker is declared dead while the kernel still tears it down;
on trio (no bells) at its EOF, once it is a zombie -- both with its exit status.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from pool_procs import exiting

from chaospool._pool.process import _Exit
from chaospool._wire.bells import SLOTS, Bells
from chaospool.pool import Pool, PoolEvent

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

HOLDER = """
import mmap, os, sys
from chaospool._wire import bells
held = bells.hold(mmap.mmap(int(sys.argv[1]), 0), int(sys.argv[2]))
print("held" if held else "not held", flush=True)
sys.stdin.read()  # until killed, or told to exit
os._exit(int(sys.argv[3]))  # as a worker ends (no finalisation: its bell stays mapped)
"""


@pytest.fixture
def bells() -> Iterator[Bells]:
    made = Bells.create()
    assert made is not None, "Linux with glibc: robust shared mutexes are there"
    yield made
    made.close()


def holder(
    bells: Bells, slot: int, code: int = 0, script: str = HOLDER
) -> subprocess.Popen[bytes]:
    """A process running ``script``, once it says it holds bell ``slot``."""
    proc = subprocess.Popen([sys.executable, "-c", script, str(bells.fd), str(slot), str(code)],
                            pass_fds=[bells.fd], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"held\n"
    return proc


@pytest.mark.parametrize("ending", ["SIGKILL", "exit 3"])
def test_a_bell_rings_when_its_holder_exits_and_is_free_again(bells: Bells, ending: str) -> None:
    slot = bells.take()
    assert slot is not None
    proc = holder(bells, slot, code=3)
    rung = threading.Event()
    thread = bells.watch(slot, rung.set)
    if ending == "SIGKILL":
        proc.kill()
    proc.communicate(b"")  # (its stdin closes: it exits with 3, unless killed)
    assert rung.wait(10)
    thread.join(10)
    assert proc.wait(10) == (-signal.SIGKILL if ending == "SIGKILL" else 3)
    assert slot in bells._free  # ready for the next worker
    again = holder(bells, bells.take() or 0)  # a bell is set up afresh: it can be held again
    again.kill()
    again.communicate(b"")
    bells.close()


def test_a_bell_nobody_holds_ends_its_watch_unrung(bells: Bells) -> None:
    # the worker died before it could take its bell: the watch gets the lock at once
    slot = bells.take()
    assert slot is not None
    rung = threading.Event()
    bells.watch(slot, rung.set).join(10)
    assert not rung.is_set()
    assert slot in bells._free
    bells.close()


def test_when_every_bell_is_in_use_a_worker_gets_none(bells: Bells) -> None:
    taken = [bells.take() for _ in range(SLOTS)]
    assert None not in taken
    assert len(set(taken)) == SLOTS
    assert bells.take() is None  # (the pool then hears that worker's death at its EOF)
    bells.give_back(taken[0])
    assert bells.take() == taken[0]
    bells.close()


def test_a_live_process_is_not_read_as_exiting() -> None:
    # a bell also rings when its holder's main thread exec()s: the pool then reads the process
    # as alive and leaves it to its EOF
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)
    pidfd = os.pidfd_open(proc.pid)
    try:
        assert _Exit(proc.pid, pidfd).stat_status(exiting=True) is None
    finally:
        proc.kill()
        proc.communicate(b"")
        os.close(pidfd)


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


@pytest.mark.anyio
async def test_a_killed_worker_is_declared_dead_as_the_kernel_begins_its_exit(
    anyio_backend: Any,
) -> None:
    # 1 GB: the kernel takes ~100 ms to free it, before the worker's sockets close (its EOF)
    # and it has exited (its pidfd readable); its bell rings before that, and the pool hears
    # it within a millisecond. On trio (no bells) the pool hears the death at the EOF.
    with_bells = anyio_backend != "trio"
    async with Pool("pool_test_workers", size=1, health_check=False) as pool:
        await pool.execute("ballast", {"mb": 1000}, timeout=60)
        victim = pool.workers[0]
        assert victim.pid is not None
        pidfd = os.pidfd_open(victim.pid)
        seen: list[tuple[bool, bool, Any]] = []

        def on_event(event: PoolEvent) -> None:
            if event.kind == "crash" and event.pid == victim.pid:
                seen.append((_readable(pidfd), exiting(victim.pid), event.data["signal"]))

        pool.subscribe(on_event)
        try:
            victim.signal(signal.SIGKILL)
            new = await pool.wait_serving(0, not_pid=victim.pid, timeout=30)
            assert await pool.execute("pid") == new.pid
        finally:
            os.close(pidfd)
        # (exited, exiting, signal) when the pool said "crash"
        assert seen == [(not with_bells, True, signal.SIGKILL)]
    assert not psutil.pid_exists(victim.pid)  # and reaped, as every worker


TEARDOWN = """
import ctypes, mmap, os, sys, threading
from chaospool._wire import bells
held = bells.hold(mmap.mmap(int(sys.argv[1]), 0), int(sys.argv[2]))
ballast = bytearray(b"\\x01") * 1_000_000_000  # ~0.1 s for the kernel to free
threading.Thread(target=sys.stdin.read).start()  # runs on, holding the process's memory
print("held" if held else "not held", flush=True)
ctypes.CDLL(None).pthread_exit(None)  # the main thread ends first: a zombie, its bell rung
"""


def test_a_worker_is_read_as_exiting_while_a_thread_still_frees_its_memory(bells: Bells) -> None:
    # the state the pool acts on at a bell: the main thread a zombie, the last thread killed
    # and in its exit, tearing down 1 GB -- the process has not exited yet (its pidfd is not
    # readable, its sockets not closed), and its status is already known
    slot = bells.take()
    assert slot is not None
    proc = holder(bells, slot, script=TEARDOWN)
    pidfd = os.pidfd_open(proc.pid)
    try:
        rung = threading.Event()
        bells.watch(slot, rung.set)
        assert rung.wait(10)
        exit_ = _Exit(proc.pid, pidfd)
        assert exit_.stat_status(exiting=True) is None  # its other thread runs
        proc.kill()
        status = None
        while status is None and not _readable(pidfd):  # a busy read: no sleep, bounded below
            status = exit_.stat_status(exiting=True)
        assert status is not None, "the process exited before it was read as exiting"
        # (read while its pidfd was not readable: the kernel was still tearing it down)
        assert (status.exitcode, status.signal) == (None, signal.SIGKILL)
    finally:
        proc.communicate(b"")
        os.close(pidfd)


def test_a_bell_never_rung_does_not_keep_its_watch_forever(
    bells: Bells, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a holder that unmapped its bell before it died (a worker never does: it ends with
    # os._exit) leaves it locked by a dead thread; the watch ends once its worker is gone
    monkeypatch.setattr("chaospool._wire.bells.RECHECK", 0.05)
    slot = bells.take()
    assert slot is not None
    proc = holder(bells, slot, script=HOLDER.replace("os._exit", "sys.exit"))
    proc.communicate(b"")  # sys.exit: the interpreter unmaps the bell as it finalises
    rung = threading.Event()
    thread = bells.watch(slot, rung.set, gone=lambda: proc.returncode is not None)
    thread.join(10)
    assert not thread.is_alive()
    assert not rung.is_set()
    assert slot not in bells._free  # locked by a dead thread: out of use
    bells.close()


LONE_THREAD = """
import ctypes, mmap, os, sys, threading
from chaospool._wire import bells
held = bells.hold(mmap.mmap(int(sys.argv[1]), 0), int(sys.argv[2]))
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0))).start()
print("held" if held else "not held", flush=True)
ctypes.CDLL(None).pthread_exit(None)  # the main thread ends alone: its bell rings
"""


def test_a_bell_rung_while_another_thread_runs_is_no_death(bells: Bells) -> None:
    # the pool takes a worker for dead only once every thread of it is exiting: here the
    # main thread ended (its bell rang) but another one runs on (and could still write)
    slot = bells.take()
    assert slot is not None
    proc = holder(bells, slot, script=LONE_THREAD)
    pidfd = os.pidfd_open(proc.pid)
    try:
        rung = threading.Event()
        bells.watch(slot, rung.set)
        assert rung.wait(10)
        assert _Exit(proc.pid, pidfd).stat_status(exiting=True) is None
        assert proc.poll() is None  # alive
        proc.communicate(b"")  # its thread reads EOF and ends the process
        assert proc.returncode == 0
    finally:
        os.close(pidfd)
