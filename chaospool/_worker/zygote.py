"""The fork server ("zygote"): imports the worker module once, then forks workers on request.

Started by the pool as ``python -m chaospool._worker.zygote CONFIG_JSON`` with one
SOCK_SEQPACKET socket. It answers ``Hello`` (or ``StartFailed`` with the import traceback),
then for each ``Spawn`` (which carries the worker's data socket, control socket and log pipe as
SCM_RIGHTS fds) forks a worker and answers ``Spawned``, with the worker's pidfd. It is every
worker's parent, so it reaps them and reports each exit as ``Exited`` (a pidfd per child: no
SIGCHLD races).

No orphans: the zygote dies with the pool (PR_SET_PDEATHSIG=SIGTERM, and EOF on its socket),
and on the way out SIGKILLs every worker's process group; each worker also has
PR_SET_PDEATHSIG=SIGKILL towards the zygote, which reaches stopped workers as well.
"""

from __future__ import annotations

import array
import contextlib
import gc
import json
import mmap
import os
import selectors
import signal
import socket
import sys
import traceback
from typing import Any

from chaospool._wire import bells
from chaospool._wire import protocol as p

_FDS_PER_SPAWN = 3


class Zygote:
    def __init__(
        self, sock: socket.socket, commands: dict[str, Any], bell_map: mmap.mmap | None = None
    ) -> None:
        self.sock = sock
        self.commands = commands
        self.bell_map = bell_map  # the pool's exit bells (chaospool._wire.bells), if any
        self.sel = selectors.DefaultSelector()
        self.children: dict[int, int] = {}  # pid -> pidfd

    def send(self, msg: p.ZygoteMessage) -> None:
        self.sock.send(p.encode_zygote(msg))

    def run(self) -> None:
        self.sel.register(self.sock, selectors.EVENT_READ, None)
        while True:
            for key, _ in self.sel.select():
                if key.data is None:
                    if not self._on_request():
                        return
                else:
                    self._reap(key.data)

    def _on_request(self) -> bool:
        fds = array.array("i")
        try:
            data, ancdata, _flags, _addr = self.sock.recvmsg(
                65536, socket.CMSG_SPACE(_FDS_PER_SPAWN * fds.itemsize)
            )
        except OSError:
            return False
        if not data:
            return False  # EOF: the pool is gone
        for level, kind, cdata in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(cdata[: len(cdata) - (len(cdata) % fds.itemsize)])
        msg = p.decode_zygote(data)
        if isinstance(msg, p.Spawn) and len(fds) == _FDS_PER_SPAWN:
            self._spawn(msg, list(fds))
        else:
            for fd in fds:
                os.close(fd)
        return True

    def _spawn(self, msg: p.Spawn, fds: list[int]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        # every object the zygote holds goes to the permanent generation: the worker's
        # collector never walks them, so it never writes to (copies) the pages it shares
        # with the zygote -- a cheaper fork and a smaller worker (docs/design.md)
        gc.freeze()
        me = os.getpid()
        held_r, held_w = os.pipe() if self._rings(msg) else (-1, -1)
        try:
            pid = os.fork()
        except OSError:
            for fd in (held_r, held_w):
                if fd >= 0:
                    os.close(fd)
            raise
        if pid == 0:
            try:
                self._in_child()
                self._hold_bell(msg.bell, held_r, held_w)
            except BaseException:  # the child must never run on as a zygote
                os._exit(1)
            from chaospool._worker.process import child_main

            child_main(fds[0], fds[1], fds[2], msg.index, self.commands, me)
        for fd in fds:
            os.close(fd)
        if held_r >= 0:
            # the pool waits on the bell from our Spawned on: the child must hold it by then
            # (a byte, or EOF if it died first -- the pool's wait then ends at once, unrung)
            os.close(held_w)
            os.read(held_r, 1)
            os.close(held_r)
        pidfd = os.pidfd_open(pid)
        self.children[pid] = pidfd
        self.sel.register(pidfd, selectors.EVENT_READ, pid)
        # the pidfd goes along (SCM_RIGHTS): opened before we can reap the child, it names
        # this worker for sure, and tells the pool the moment it exits -- before our Exited
        # (docs/design.md, "Replacing at death")
        socket.send_fds(self.sock, [p.encode_zygote(p.Spawned(msg.token, pid))], [pidfd])

    def _rings(self, msg: p.Spawn) -> bool:
        bell_map = self.bell_map
        return bell_map is not None and 0 <= msg.bell < len(bell_map) // bells.SLOT_SIZE

    def _hold_bell(self, slot: int, held_r: int, held_w: int) -> None:
        """First thing in a new worker: its main thread holds its exit bell for life."""
        if held_w < 0:
            return
        try:
            os.close(held_r)
            # (without its bell, a worker's death is heard at its EOF)
            with contextlib.suppress(Exception):
                if self.bell_map is not None and bells.hold(self.bell_map, slot):
                    os.write(held_w, b"\x01")
        finally:
            os.close(held_w)  # the zygote waits for this (a byte, or EOF)

    def _in_child(self) -> None:
        self.sel.close()
        for pidfd in self.children.values():
            os.close(pidfd)
        self.children.clear()  # our siblings: never ours to kill (``kill_all``)
        self.sock.close()

    def _reap(self, pid: int) -> None:
        pidfd = self.children.pop(pid)
        self.sel.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        # what the worker started dies with it: its group outlives it only through its
        # children (a pgid is never reused while the group has members, so this is ours)
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        with contextlib.suppress(OSError):  # the pool is gone; we are about to leave too
            self.send(p.Exited(pid, code, sig))

    def kill_all(self) -> None:
        """SIGKILL every worker's process group (grandchildren included) and reap them."""
        for pid in list(self.children):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        for pid, pidfd in list(self.children.items()):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            os.close(pidfd)
        self.children.clear()


def _start(config: dict[str, Any]) -> tuple[socket.socket, int]:
    from chaospool._worker.process import set_pdeathsig

    set_pdeathsig(signal.SIGTERM)
    if os.getppid() != config["parent"]:
        os._exit(1)  # the pool died before we could ask to follow it
    sys.path[:] = config["sys_path"]
    return socket.socket(fileno=config["fd"]), os.getpid()


def _map_bells(config: dict[str, Any]) -> mmap.mmap | None:
    """The pool's exit bells, shared with every worker we fork (the fd is not kept)."""
    fd = config.get("bells")
    if fd is None:
        return None
    try:
        return mmap.mmap(fd, 0)
    except OSError:
        return None
    finally:
        os.close(fd)


def main() -> None:
    config = json.loads(sys.argv[1])
    sock, pid = _start(config)
    try:
        from chaospool._worker.registry import load_commands

        commands = load_commands(config["worker"])
    except BaseException as exc:
        tb = traceback.format_exc()
        sock.send(p.encode_zygote(p.StartFailed(p.PROTOCOL_VERSION, pid, type(exc).__name__,
                                                str(exc), tb)))
        os._exit(1)
    zygote = Zygote(sock, commands, _map_bells(config))

    def on_term(signum: int, frame: Any) -> None:
        zygote.kill_all()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    zygote.send(p.Hello(p.PROTOCOL_VERSION, pid, sorted(commands)))
    try:
        zygote.run()
    finally:
        zygote.kill_all()
    os._exit(0)


if __name__ == "__main__":
    main()
