"""The subprocess backend: one warm fork server (zygote), workers forked from it.

The zygote imports the worker module (and msgspec) once; a replacement worker is then a
``fork()`` away (a few milliseconds) instead of a fresh interpreter (tens of milliseconds).
Each worker gets three fds of its own, passed with SCM_RIGHTS: a data socket, a control socket,
and the write end of a log pipe that becomes its fd 1 and 2 -- so ``print()`` in a worker lands
in its log (last lines kept for error messages), never in the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import select
import signal
import signal as _signal
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, cast

import anyio
import anyio.lowlevel
import msgspec
import sniffio

from chaospool._pool.backend import (
    ExitStatus,
    LinkClosed,
    MalformedFrame,
    new_log,
    serve_by_receive,
)
from chaospool._pool.psinfo import ProcessInfo
from chaospool._wire import protocol as p
from chaospool._wire.bells import Bells
from chaospool.errors import WorkerStartError

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

_UNKNOWN = ExitStatus(None, None)
_PF_EXITING = 0x4  # a task's flags (/proc/PID/stat field 9): it has begun to exit
# A bell rings as the worker's main thread begins to exit; the other threads follow within
# microseconds (a SIGKILL kills them all), unless one waits for a CPU on a loaded machine: look
# again after 0.2 ms, then twice as long each time up to 10 ms, about 0.1 s in all.
BELL_RETRY = 0.0002
BELL_RETRY_MAX = 0.01
BELL_TRIES = 15
_log = logging.getLogger("chaospool.pool")


def _readable_now(fd: int) -> bool:
    """``fd`` is readable now (no wait). poll, not select: select refuses fds >= 1024, which a
    large pool or a host holding many sockets reaches."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class _Exit:
    """Where the zygote's ``Exited`` report for one pid lands; and, until then, the worker's
    pidfd, which tells the moment it exits (docs/design.md, "Replacing at death").

    The pidfd comes from the zygote with ``Spawned`` (opened right after the fork, before it
    could reap the child): it always names our worker, never a process that reused its pid.
    """

    __slots__ = ("drain", "dying", "event", "pid", "pidfd", "status")

    def __init__(
        self, pid: int = 0, pidfd: int | None = None, drain: Callable[[], None] | None = None
    ) -> None:
        self.event = anyio.Event()
        self.status: ExitStatus | None = None
        self.pid = pid
        self.pidfd = pidfd
        self.drain = drain  # reads what the zygote sent, now (its Exited may be waiting)
        self.dying: ExitStatus | None = None  # exiting for sure, its bell rang (not reaped)

    def set(self, status: ExitStatus) -> None:
        if self.status is None:
            self.status = status
            self.event.set()
        self.close()

    def send_signal(self, sig: int) -> None:
        """Signal the worker itself: through its pidfd (ESRCH once reaped: ProcessLookupError),
        never by a pid the zygote may have reaped and the kernel handed to someone else."""
        if self.pidfd is None:
            raise ProcessLookupError(f"worker {self.pid} has exited")
        signal.pidfd_send_signal(self.pidfd, sig)

    def close(self) -> None:
        pidfd, self.pidfd = self.pidfd, None
        if pidfd is not None:
            anyio.notify_closing(pidfd)  # wakes an ``exited`` waiting on it
            os.close(pidfd)

    async def exited(self) -> ExitStatus:
        """Once the worker has exited, or is exiting for sure (its bell rang and every thread
        of it is in its exit; never before): its exit status, read from ``/proc`` then, from
        the zombie while the zygote reaps it, or from the zygote's report."""
        if self.dying is not None:
            return self.dying  # its exit bell rang: the kernel is tearing it down
        pidfd = self.pidfd
        if pidfd is not None and self.status is None:
            # the usual case at EOF: it exited a moment ago, no turn of the loop needed
            if not _readable_now(pidfd):
                with contextlib.suppress(anyio.ClosedResourceError):  # reaped meanwhile
                    await anyio.wait_readable(pidfd)
            # the zygote waits on the same pidfd and mostly reaps it first (4 kills in 5,
            # measured): its Exited is then in its socket already, so read that first, then
            # the zombie -- either way no turn of the loop (anyio's wait on a set event yields)
            if self.drain is not None:
                self.drain()
            status = self.status or self.stat_status()
            if status is not None:
                return status
        await self.event.wait()
        return self.status or _UNKNOWN

    def stat_status(self, exiting: bool = False) -> ExitStatus | None:
        """The exit status in ``/proc/PID/stat`` (field 52, as ``waitpid`` gives it) while the
        process is a zombie -- or, with ``exiting``, already while the kernel may still tear
        its memory down: every thread exiting (``PF_EXITING``, field 9) or done, so none runs
        again and the exit code is final (ps may still show it running until the teardown
        ends); None before that, or once reaped.
        The pid is ours while the pidfd can still signal it: checked *after* the reads, so
        they were of our unreaped worker."""
        pidfd = self.pidfd
        if pidfd is None:
            return None
        try:
            main = _stat_fields(self.pid, str(self.pid))
            others = _other_tasks(self.pid) if exiting else []
            signal.pidfd_send_signal(pidfd, 0)  # ESRCH once reaped: the read may be a stranger's
        except OSError:
            return None
        if not all(_ended(fields, exiting) for fields in [main, *others]):
            return None
        code = int(main[49])
        if os.WIFSIGNALED(code):
            return ExitStatus(None, os.WTERMSIG(code))
        return ExitStatus(os.WEXITSTATUS(code), None)


def _stat_fields(pid: int, tid: str) -> list[bytes]:
    """The fields of a task's ``stat`` after its name (from field 3, the state, on).
    (os.open / os.read: no file object, on the path from a death to its replacement.)"""
    path = f"/proc/{pid}/stat" if tid == str(pid) else f"/proc/{pid}/task/{tid}/stat"
    fd = os.open(path, os.O_RDONLY)
    try:
        raw = os.read(fd, 4096)
    finally:
        os.close(fd)
    return raw[raw.rindex(b")") + 2 :].split()


def _other_tasks(pid: int) -> list[list[bytes]]:
    """The ``stat`` fields of the threads but the main one; a thread gone meanwhile is done."""
    tasks = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        if tid != str(pid):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                tasks.append(_stat_fields(pid, tid))
    return tasks


def _ended(fields: list[bytes], exiting: bool) -> bool:
    """A zombie -- or, with ``exiting``, a task in its exit (``PF_EXITING``)."""
    if len(fields) < 50:
        return False
    return fields[0] == b"Z" or (exiting and bool(int(fields[6]) & _PF_EXITING))


async def _drain_lines(fd: int, log: deque[str]) -> None:
    """Read a pipe until EOF, keeping its last lines (a worker's stdout/stderr)."""
    os.set_blocking(fd, False)
    pending = b""
    try:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                await anyio.wait_readable(fd)
                continue
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            log.extend(line.decode(errors="replace") for line in lines)
            pending = pending[-4096:]
    except (OSError, anyio.ClosedResourceError):
        pass
    finally:
        if pending:
            log.append(pending.decode(errors="replace"))
        os.close(fd)


class _Transport(Protocol):
    """What the pool uses of an asyncio transport -- duck-typed, because uvloop's transports
    are not ``asyncio.Transport`` instances (any loop's stream transport has these)."""

    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...

    def abort(self) -> None: ...


_decode = p.decode
_CONTROL_SOCKET = frozenset((p.Ping, p.Control))  # sent by ``send`` on the control socket


def _decode_read(reader: p.FrameReader, nbytes: int) -> list[p.Message]:
    """The messages a read of ``nbytes`` completed; MalformedFrame if one does not decode."""
    try:
        return list(map(p.decode, reader.filled(nbytes)))
    except (ValueError, msgspec.DecodeError) as exc:
        raise MalformedFrame(str(exc)) from exc


class _FrameProtocol(asyncio.BufferedProtocol):
    """asyncio fast path for the data socket: frames are decoded in ``buffer_updated``.

    Why not ``anyio.wait_readable`` + ``recv``: on asyncio that registers and unregisters the
    fd with epoll for every message; a protocol keeps it registered, and the transport's
    ``write`` sends at once without a lock or a task switch. Why a *buffered* protocol: the
    transport reads into our reused buffer (``recv_into``) instead of allocating 256 KiB per
    read (an mmap + munmap per reply; docs/design.md, "Performance").
    """

    def __init__(self) -> None:
        self.reader = p.FrameReader()
        self.get_buffer = self.reader.get_buffer  # type: ignore[method-assign]  # one call less per read
        self.ready: deque[p.Message] = deque()
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.transport: _Transport | None = None
        self.deliver: Callable[[list[p.Message]], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # no isinstance check: uvloop's transport is not an asyncio.Transport (docs/design.md)
        self.transport = cast("_Transport", transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        if self.error is not None:
            return
        try:  # (``_decode_read`` inline: one call less per reply)
            msgs = list(map(_decode, self.reader.filled(nbytes)))
        except (ValueError, msgspec.DecodeError) as exc:
            self.error = MalformedFrame(str(exc))
            assert self.transport is not None
            self.transport.abort()
            self.wake()
            return
        deliver = self.deliver  # (a callable attribute: loaded, not looked up as a method)
        if deliver is not None:
            if msgs:
                deliver(msgs)  # straight to the waiting caller: no reader task hop
        else:
            self.ready.extend(msgs)
            self.wake()

    def eof_received(self) -> bool:
        # the link is down now, not a turn later in ``connection_lost``: the death is handled
        # (and the worker replaced) that much sooner (docs/design.md, "Replacing at death")
        if self.error is None:
            self.error = LinkClosed("EOF")
        self.wake()
        return False  # close our end too

    def connection_lost(self, exc: Exception | None) -> None:
        if self.error is None:
            self.error = LinkClosed(str(exc) if exc else "EOF")
        self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> list[p.Message]:
        while not self.ready:
            if self.error is not None:
                raise self.error
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        msgs = list(self.ready)
        self.ready.clear()
        return msgs

    async def serve(self, deliver: Callable[[list[p.Message]], None]) -> None:
        if self.ready:
            msgs = list(self.ready)
            self.ready.clear()
            deliver(msgs)
        self.deliver = deliver
        try:
            while self.error is None:
                self.waiter = asyncio.get_running_loop().create_future()
                await self.waiter
        finally:
            self.waiter = None
            self.deliver = None
        if isinstance(self.error, MalformedFrame):
            raise self.error


class ProcessLink:
    """The pool's end of one forked worker: data + control sockets, log, exit report."""

    def __init__(self, pid: int, data: socket.socket, ctl: socket.socket, exit_: _Exit) -> None:
        self.pid = pid
        self.log = new_log()
        self._data = data
        self._ctl = ctl
        self._exit = exit_
        self._reader = p.FrameReader()
        self._closed = False
        self._send_lock = anyio.Lock(fast_acquire=True)
        self._proto: _FrameProtocol | None = None
        self._info = ProcessInfo(pid)  # rss/status (backend.Measured)

    async def start(self) -> None:
        if sniffio.current_async_library() == "asyncio":
            loop = asyncio.get_running_loop()
            _, self._proto = await loop.connect_accepted_socket(_FrameProtocol, self._data)

    def send_nowait(self, msg: p.Message) -> bool:
        if self._closed:
            raise LinkClosed("channel closed")
        proto = self._proto
        if proto is None or type(msg) in _CONTROL_SOCKET:
            return False
        transport = proto.transport
        if transport is None or transport.is_closing():
            raise LinkClosed("channel closed")
        transport.write(p.encode_frame(msg))  # the loop buffers what the socket cannot take
        return True

    def frame_writer(self) -> Callable[[bytes], object] | None:
        """The transport's own ``write`` (asyncio; None elsewhere): a request costs no Python
        call of ours. Once the channel is closed it drops what it is given (asyncio) or raises
        RuntimeError (uvloop), and the pool fails the calls in flight on it (docs/design.md,
        "Performance")."""
        proto = self._proto
        return None if proto is None or proto.transport is None else proto.transport.write

    async def send(self, msg: p.Message) -> None:
        if self.send_nowait(msg):
            return
        sock = self._ctl if isinstance(msg, p.Ping | p.Control) else self._data
        frame = p.encode_frame(msg)
        async with self._send_lock:  # a partial write must finish before the next frame
            view = memoryview(frame)
            while view:
                try:
                    view = view[sock.send(view) :]
                except BlockingIOError:
                    await anyio.wait_writable(sock)
                except OSError as exc:
                    raise LinkClosed(str(exc)) from exc

    async def serve(self, deliver: Callable[[list[p.Message]], None]) -> None:
        if self._proto is not None:
            await self._proto.serve(deliver)
        else:
            await serve_by_receive(self, deliver)

    async def receive(self) -> list[p.Message]:
        if self._proto is not None:
            return await self._proto.receive()
        while True:
            try:
                await anyio.wait_readable(self._data)
                n = self._data.recv_into(self._reader.get_buffer())
            except BlockingIOError:
                continue
            except (anyio.ClosedResourceError, OSError) as exc:
                raise LinkClosed("channel closed") from exc
            if not n:
                raise LinkClosed("EOF")
            msgs = _decode_read(self._reader, n)
            if msgs:
                return msgs

    def received_nowait(self) -> list[p.Message] | None:
        """What arrived and nobody read yet, taken now; None if nothing did (or this loop
        has no protocol: trio reads only in ``receive``)."""
        proto = self._proto
        if proto is None or not proto.ready or not self.usable():
            return None
        msgs = list(proto.ready)
        proto.ready.clear()
        return msgs

    def on_bell(self, tries: int = BELL_TRIES, delay: float = BELL_RETRY) -> None:
        """Its exit bell rang (chaospool._wire.bells; in the loop's thread): once every thread
        of the worker is exiting, the link goes down, before the kernel's teardown reaches the
        EOF -- after what it wrote before is read, so no reply it sent is lost."""
        proto = self._proto
        if self._closed or proto is None or proto.error is not None:
            return  # gone already (its EOF came first) or closed by the pool
        status = self._exit.stat_status(exiting=True)
        if status is None:
            # a thread of it still runs (its control thread may be writing; on a loaded machine
            # it may wait for a CPU to begin its exit) or it exec'd: look again shortly, then
            # leave it to the EOF -- at once if it has exited already
            # (its pidfd readable: the EOF and the zygote's report are on their way)
            pidfd = self._exit.pidfd
            if tries > 1 and pidfd is not None and not _readable_now(pidfd):
                asyncio.get_running_loop().call_later(
                    delay, self.on_bell, tries - 1, min(delay * 2, BELL_RETRY_MAX))
            return
        self._exit.dying = status
        self._read_rest(proto)
        if proto.error is None:
            proto.error = LinkClosed(f"the worker is exiting ({status.describe()})")
            proto.wake()

    def _read_rest(self, proto: _FrameProtocol) -> None:
        """Read what is in the data socket now, below the transport (which would read it a
        turn later, after the link is down): no thread of the worker runs to write more."""
        while proto.error is None:
            try:
                n = self._data.recv_into(proto.reader.get_buffer())
            except OSError:  # BlockingIOError: all read
                return
            if not n:
                return
            proto.buffer_updated(n)

    def usable(self) -> bool:
        """Not closed, not known to be dead (a spare is checked before it is taken)."""
        if self._closed or self._exit.status is not None or self._exit.dying is not None:
            return False
        return self._proto is None or self._proto.error is None

    def signal(self, sig: int) -> None:
        """Signal the worker's process group (grandchildren too); a worker not yet in a group
        of its own (just forked) through its pidfd: never a process that reused its pid."""
        if self._exit.status is not None:
            raise ProcessLookupError(f"worker {self.pid} has exited")
        try:
            # safe after a reap too: a group exists only while it has members, and a stranger
            # who reused the pid is in its parent's group, not in one with this id
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            self._exit.send_signal(sig)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.abort()  # connection_lost wakes a waiting receive()
            self._ctl.close()
            return
        for sock in (self._data, self._ctl):
            anyio.notify_closing(sock)  # wake a receive() waiting on it
            sock.close()

    async def wait(self) -> ExitStatus:
        await self._exit.event.wait()
        return self._exit.status or _UNKNOWN

    async def exited(self) -> ExitStatus:
        """Once the worker process has exited, its exit status -- before the zygote reaped it
        (``backend.Exits``): its pidfd is readable from the moment it is a zombie."""
        return await self._exit.exited()

    def exit_status(self) -> ExitStatus | None:
        return self._exit.status

    def rss(self) -> int | None:
        return None if self._exit.status is not None else self._info.rss()

    def status(self) -> str | None:
        return None if self._exit.status is not None else self._info.status()


class ProcessBackend:
    """Workers as forked subprocesses of a warm zygote."""

    real_processes = True

    def __init__(self, worker: str, *, start_timeout: float = 15.0, spare: bool = True) -> None:
        self.worker = worker
        self.start_timeout = start_timeout
        # one worker forked ahead of need (docs/design.md, "Spare worker"): a replacement is
        # then a message away instead of a fork
        self.spare = spare
        self._spare: ProcessLink | None = None
        self._sparing = False
        self._closing = False
        self.zygote_log = new_log()
        self._tg: TaskGroup | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._tokens = itertools.count(1)
        self._spawned: dict[int, tuple[anyio.Event, list[tuple[int, _Exit]]]] = {}
        self._exits: dict[int, _Exit] = {}
        self._alive = False
        self._hello: anyio.Event | None = None
        self._first: p.ZygoteMessage | None = None
        self._lock = anyio.Lock()
        self._spare_wanted: anyio.Event | None = None  # wakes _keep_spare
        self._bells: Bells | None = None  # exit bells (asyncio: the links have protocols)

    async def start(self, tg: TaskGroup) -> list[str]:
        self._tg = tg
        if sniffio.current_async_library() == "asyncio":
            self._bells = Bells.create()
        if self.spare:
            self._spare_wanted = anyio.Event()
            tg.start_soon(self._keep_spare)
        hello = await self._start_zygote()
        return hello.commands

    async def _start_zygote(self) -> p.Hello:
        assert self._tg is not None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log_r, log_w = os.pipe()
        config = {"worker": self.worker, "sys_path": sys.path, "parent": os.getpid(),
                  "fd": theirs.fileno()}
        passed = [theirs.fileno()]
        if self._bells is not None:
            config["bells"] = self._bells.fd
            passed.append(self._bells.fd)
        try:
            # A process group of its own (a terminal's Ctrl-C reaches the pool, which stops
            # the workers itself), but not a session of its own: with the kernel's autogroup
            # scheduling a new session is a new CPU-share group, and on a busy machine the
            # workers then share one process's worth of CPU (docs/design.md, "Performance").
            self._proc = subprocess.Popen(  # noqa: ASYNC220  reason: one fork+exec, ~1 ms
                [sys.executable, "-m", "chaospool._worker.zygote", json.dumps(config)],
                pass_fds=passed, stdin=subprocess.DEVNULL, stdout=log_w,
                stderr=log_w, process_group=0,
            )
        finally:
            theirs.close()
            os.close(log_w)
        ours.setblocking(False)
        self._sock = ours
        self._alive = True
        self._hello = anyio.Event()
        self._tg.start_soon(_drain_lines, log_r, self.zygote_log)
        self._tg.start_soon(self._read_zygote, ours, self._proc)
        with anyio.move_on_after(self.start_timeout):
            await self._hello.wait()
        return self._check_hello()

    def _check_hello(self) -> p.Hello:
        first = self._first
        if isinstance(first, p.Hello) and first.version == p.PROTOCOL_VERSION:
            return first
        tail = "\n".join(self.zygote_log)
        if isinstance(first, p.StartFailed):
            raise WorkerStartError(
                f"worker module {self.worker!r} failed to import: {first.error_type}: "
                f"{first.message}\n--- remote traceback ---\n{first.traceback}",
                pid=first.pid, exitcode=1,
            )
        if isinstance(first, p.Hello):
            raise WorkerStartError(f"protocol version {first.version} != {p.PROTOCOL_VERSION}")
        raise WorkerStartError(
            f"the fork server for {self.worker!r} did not answer within {self.start_timeout}s"
            f"{': ' + tail if tail else ''}"
        )

    async def _read_zygote(self, sock: socket.socket, proc: subprocess.Popen[bytes]) -> None:
        try:
            while True:
                try:
                    if not self._read_one(sock):
                        break
                except BlockingIOError:
                    await anyio.wait_readable(sock)
        except (OSError, anyio.ClosedResourceError):
            pass
        finally:
            await self._zygote_gone(sock, proc)

    def _read_one(self, sock: socket.socket) -> bool:
        """Handle one message of the zygote's; False at EOF, BlockingIOError if none."""
        # with a Spawned, the zygote passes the worker's pidfd (SCM_RIGHTS)
        data, fds, _, _ = socket.recv_fds(sock, 65536, 1)
        if not data:
            return False
        try:
            self._on_datagram(data, fds)
        finally:
            for fd in fds:  # an fd nobody took: an unexpected or malformed message
                os.close(fd)
        return True

    def _drain_zygote(self) -> None:
        """Handle what the zygote has sent, without waiting (beside ``_read_zygote``: one
        datagram is one message, read whole by whichever reads it, in order)."""
        sock = self._sock
        with contextlib.suppress(OSError):  # BlockingIOError: all read; EOF: _read_zygote's
            while sock is not None and self._sock is sock and self._read_one(sock):
                pass

    def _on_datagram(self, data: bytes, fds: list[int]) -> None:
        try:
            msg = p.decode_zygote(data)
        except msgspec.DecodeError as exc:
            # one datagram is one whole message (SOCK_SEQPACKET): skip it, the next is intact
            _log.error("the fork server of %r sent a malformed message (%s), ignored: %r",
                       self.worker, exc, data[:200])
            return
        self._on_zygote(msg, fds)

    def _on_zygote(self, msg: p.ZygoteMessage, fds: list[int]) -> None:
        if isinstance(msg, p.Hello | p.StartFailed):
            self._first = msg
            if self._hello is not None:
                self._hello.set()
        elif isinstance(msg, p.Spawned):
            # the spawner gets this very _Exit: a worker that dies at once may have its Exited
            # handled before the spawner resumes, and must not leave it waiting on another
            exit_ = self._exits[msg.pid] = _Exit(msg.pid, fds.pop() if fds else None,
                                                 self._drain_zygote)
            entry = self._spawned.get(msg.token)
            if entry is not None:
                entry[1].append((msg.pid, exit_))
                entry[0].set()
        elif isinstance(msg, p.Exited):
            self._on_exited(msg)

    def _on_exited(self, msg: p.Exited) -> None:
        gone = self._exits.pop(msg.pid, None)
        if gone is not None:
            gone.set(ExitStatus(msg.exitcode, msg.signal))

    async def _zygote_gone(self, sock: socket.socket, proc: subprocess.Popen[bytes]) -> None:
        """The zygote is gone: its workers die with it (PDEATHSIG); reap it, release waiters."""
        with anyio.CancelScope(shield=True):
            self._alive = False
            if self._hello is not None:
                self._hello.set()
            for event, _ in self._spawned.values():
                event.set()
            await _reap(proc, grace=2.0)
            # every worker it forked is dead now (SIGKILLed by the kernel); nobody else reports
            for exit_ in self._exits.values():
                exit_.set(ExitStatus(None, _signal.SIGKILL))
            self._exits.clear()
            if self._sock is sock:
                self._sock = None
            sock.close()

    async def spawn(self, index: int) -> ProcessLink:
        if not self._alive:  # checked first: acquiring the lock is a turn of the loop
            async with self._lock:
                if not self._alive:  # the fork server died: start a new one, then carry on
                    await self._start_zygote()
        link = await self._adopt_spare(index)
        if link is None:
            link = await self._fork(index)
        self._want_spare()
        return link

    def take_ready(self, index: int) -> tuple[ProcessLink, list[p.Message]] | None:
        """The spare, given slot ``index``, with its Hello -- if that Hello is already here
        and ``Start`` can go at once (``backend.Spares``); else None and ``spawn`` decides."""
        link = self._spare
        if link is None or not self._alive:
            return None
        msgs = link.received_nowait()
        if msgs is None:
            return None
        self._spare = None
        try:
            sent = link.send_nowait(p.Start(index))
        except LinkClosed:
            sent = False
        if not sent:  # it died idle: the zygote reaps it; spawn forks a fresh one
            link.close()
            return None
        self._want_spare()
        return link, msgs

    async def _adopt_spare(self, index: int) -> ProcessLink | None:
        """The spare, given slot ``index`` (its Hello is already in the link); None if there
        is none or it died while it waited."""
        link, self._spare = self._spare, None
        if link is None:
            return None
        try:
            if link.usable():
                await link.send(p.Start(index))
                return link
        except LinkClosed:
            pass  # it died idle: the zygote reaps it, a fresh fork serves instead
        except BaseException:  # cancelled mid-send (trio): nobody else holds the link
            link.close()
            raise
        link.close()
        return None

    def _want_spare(self) -> None:
        """Fork a new spare in the background if there is none (and none on its way)."""
        wanted = self._spare_wanted
        if wanted is not None and self._spare is None and not self._sparing and not self._closing:
            self._sparing = True
            wanted.set()

    async def _keep_spare(self) -> None:
        """Make a spare whenever one is wanted: one task for the pool's life, woken by an
        event, because starting a task per spare (anyio's ``start_soon``) cost 20-90 us of
        the very replacement that took the last spare (docs/design.md, "Spare worker")."""
        while True:
            assert self._spare_wanted is not None
            await self._spare_wanted.wait()
            self._spare_wanted = anyio.Event()
            await self._make_spare()

    async def _make_spare(self) -> None:
        # one turn of the loop first: the spare just taken is the replacement, whose
        # handshake and wake-ups are queued already; they go before this fork, whose CPU
        # (the zygote's fork, the new spare's start-up) would otherwise delay them
        # (0.8 ms of a 3 ms replacement measured; docs/design.md, "Replacing at death")
        link = None
        try:
            await anyio.lowlevel.checkpoint()
            with anyio.move_on_after(self.start_timeout):
                link = await self._fork(p.SPARE)
        except Exception as exc:  # the fork server is gone: the next spawn starts a new one
            _log.debug("no spare worker: %s", exc)
        finally:
            self._sparing = False
        if link is not None and self._closing:
            link.close()  # the pool closed meanwhile: the spare sees EOF and leaves
        elif link is not None:
            self._spare = link

    async def _fork(self, index: int) -> ProcessLink:
        """Ask the zygote for a worker for slot ``index`` (or a spare): fds out, pid back."""
        data_p, data_c = socket.socketpair()
        ctl_p, ctl_c = socket.socketpair()
        log_r, log_w = os.pipe()
        token = next(self._tokens)
        event, pids = anyio.Event(), list[tuple[int, _Exit]]()
        self._spawned[token] = (event, pids)
        bell = self._bells.take() if self._bells is not None else None
        try:
            assert self._sock is not None
            socket.send_fds(
                self._sock,
                [p.encode_zygote(p.Spawn(token, index, -1 if bell is None else bell))],
                [data_c.fileno(), ctl_c.fileno(), log_w],
            )
        except (OSError, AssertionError) as exc:
            del self._spawned[token]
            if bell is not None and self._bells is not None:
                self._bells.give_back(bell)  # never asked for: no worker will hold it
            for sock in (data_p, ctl_p):
                sock.close()
            os.close(log_r)
            raise WorkerStartError(f"the fork server is gone: {exc}") from exc
        finally:
            data_c.close()
            ctl_c.close()
            os.close(log_w)
        # once the Spawn went out, only a watch frees the bell: a worker forked later (after a
        # cancellation here, or by a zygote about to die) may hold it
        try:
            await event.wait()
        except BaseException:  # cancelled: our ends close, a forked worker sees EOF and leaves
            for sock in (data_p, ctl_p):
                sock.close()
            os.close(log_r)
            raise
        finally:
            del self._spawned[token]
        if not pids:
            data_p.close()
            ctl_p.close()
            os.close(log_r)
            raise WorkerStartError(f"the fork server died while starting worker {index}")
        return await self._link(*pids[0], data_p, ctl_p, log_r, bell)

    async def _link(
        self, pid: int, exit_: _Exit, data: socket.socket, ctl: socket.socket, log_r: int,
        bell: int | None,
    ) -> ProcessLink:
        data.setblocking(False)
        ctl.setblocking(False)
        link = ProcessLink(pid, data, ctl, exit_)
        if bell is not None and self._bells is not None:
            self._watch(bell, link)
        try:
            await link.start()
        except BaseException:  # cancelled (the pool closing) mid-start: no socket left open
            link.close()
            os.close(log_r)
            raise
        assert self._tg is not None
        self._tg.start_soon(_drain_lines, log_r, link.log)
        return link

    def _watch(self, bell: int, link: ProcessLink) -> None:
        """Hear ``link``'s worker begin to exit (its bell, held since before its Spawned)."""
        assert self._bells is not None
        loop = asyncio.get_running_loop()

        def rung() -> None:  # in the bell's thread
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody asks
                loop.call_soon_threadsafe(link.on_bell)

        try:
            self._bells.watch(bell, rung, lambda: link.exit_status() is not None)
        except RuntimeError:  # no thread to be had (a pids limit): heard at its EOF instead
            _log.debug("no thread for the exit bell of worker %d", link.pid)

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            self._closing = True
            spare, self._spare = self._spare, None
            if spare is not None:
                spare.close()  # EOF: it leaves (and the zygote SIGKILLs what is left anyway)
            sock, proc = self._sock, self._proc
            if sock is not None:
                # EOF tells the zygote to SIGKILL what is left and leave; _read_zygote reaps it
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            if proc is not None:
                await _reap(proc, grace=5.0)
            bells, self._bells = self._bells, None
            if bells is not None:
                bells.close()


async def _reap(proc: subprocess.Popen[bytes], *, grace: float) -> None:
    """Wait for ``proc`` to exit (pidfd, no thread), SIGKILL after ``grace``; reap it."""
    if proc.poll() is not None:
        return
    try:
        pidfd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        proc.wait()
        return
    try:
        with anyio.move_on_after(grace):
            await anyio.wait_readable(pidfd)
        if proc.poll() is None:
            proc.kill()
            await anyio.wait_readable(pidfd)
        proc.wait()
    finally:
        os.close(pidfd)
