"""A worker process: a command thread and a control thread on two sockets of its own.

The *data* socket carries requests (read by the main thread, which runs the handler inline:
no thread hop on the request path) and every answer going back. The *control* socket carries
pings and control ops, read by a second thread, so heartbeats and faults work while a user
command runs. Either socket reaching EOF means the pool is gone or cut us off: the worker exits
(the parent-pipe watchdog, beside PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from chaospool._wire import protocol as p
from chaospool._worker.controls import BUILTINS
from chaospool._worker.runtime import ControlRuntime, WorkerCore

PR_SET_PDEATHSIG = 1
EXIT_PROTOCOL = 3  # the pool sent a frame we cannot decode


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)  # loaded once, in the zygote, before any fork


def set_pdeathsig(sig: int) -> None:
    """Ask the kernel to send ``sig`` when our parent (the thread that forked us) dies."""
    if _libc().prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def frames(sock: socket.socket) -> Iterator[bytes]:
    """Frame payloads from a blocking socket until EOF (read into one reused buffer: no
    allocation, so no mmap/munmap, per request -- see ``FrameReader``)."""
    reader = p.FrameReader()
    while True:
        try:
            n = sock.recv_into(reader.get_buffer())
        except OSError:
            return
        if not n:
            return
        yield from reader.filled(n)


def _control_loop(sock: socket.socket, core: WorkerCore) -> None:
    try:
        for payload in frames(sock):
            core.handle_control(p.decode(payload))
    except Exception:  # a corrupt control frame: the channel is unusable
        os._exit(EXIT_PROTOCOL)
    os._exit(0)  # EOF: the pool died or closed our channel -- even mid-command, leave now


def serve(data_fd: int, ctl_fd: int, index: int, commands: Mapping[str, Any]) -> int:
    """Serve requests until the pool closes the channel; return the exit code.

    A spare (``index`` is ``p.SPARE``) says Hello at once but starts its control thread only
    when ``Start`` gives it a slot: no control op can see it without an index.
    """
    data = socket.socket(fileno=data_fd)
    ctl = socket.socket(fileno=ctl_fd)
    data.setblocking(True)
    ctl.setblocking(True)
    send: Callable[[bytes], None] = data.sendall
    runtime = ControlRuntime(send, worker_index=index, pid=os.getpid())
    core = WorkerCore(commands, runtime, BUILTINS)
    send(core.hello())
    control = threading.Thread(target=_control_loop, args=(ctl, core), daemon=True)
    if index != p.SPARE:
        control.start()
    # bound once: the request loop's own (``core.handle_request`` without its call)
    decode, request, run, reply = p.decode, p.Request, core.run, runtime.send_reply
    try:
        for payload in frames(data):
            msg = decode(payload)
            if type(msg) is request:  # (exact type: the messages are final)
                reply(run(msg))
            elif isinstance(msg, p.Start) and runtime.worker_index == p.SPARE:
                runtime.worker_index = msg.index
                control.start()
            elif isinstance(msg, p.Shutdown):
                return 0
    except Exception as exc:
        print(f"chaospool worker {runtime.worker_index}: broken channel: {exc!r}",
              file=sys.stderr)
        return EXIT_PROTOCOL
    return 0


def child_main(
    data_fd: int, ctl_fd: int, log_fd: int, index: int, commands: Mapping[str, Any], zygote: int
) -> None:
    """Entry of a freshly forked worker (never returns)."""
    code = 1
    try:
        os.setpgid(0, 0)  # own group: a signal to the group reaches grandchildren too
        # SIGKILL reaches even a SIGSTOPped worker; the zygote's main thread forked us and lives
        # as long as the zygote, so this fires exactly when the zygote dies.
        set_pdeathsig(signal.SIGKILL)
        if os.getppid() != zygote:
            os._exit(1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        code = serve(data_fd, ctl_fd, index, commands)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
