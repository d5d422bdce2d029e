"""The in-memory backend: fake workers in the pool's own process, for fast deterministic tests.

A fake worker is an anyio task running the *same* ``WorkerCore`` as a real worker, fed the
same encoded frames through memory streams -- so serialisation errors, unknown commands,
sessions, control ops and damaged frames behave as they do across a socket. Handlers run in
worker threads (``anyio.to_thread``) so a blocking handler (``time.sleep``) does not stall the
event loop; "killing" a fake worker cancels its task and closes its streams. Signals are
emulated: SIGKILL/SIGTERM/SIGINT end it, SIGSTOP/SIGCONT pause and resume it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import signal as _signal
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from chaospool._pool.backend import (
    ExitStatus,
    LinkClosed,
    decode_frames,
    new_log,
    serve_by_receive,
)
from chaospool._wire import protocol as p
from chaospool._worker.controls import BUILTINS
from chaospool._worker.registry import load_commands
from chaospool._worker.runtime import ControlRuntime, WorkerCore
from chaospool.errors import WorkerStartError

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

_FAKE_PIDS = itertools.count(1_000_000_001)  # far above any real pid_max
_ENDING = {_signal.SIGKILL, _signal.SIGTERM, _signal.SIGINT, _signal.SIGQUIT}


class MemoryLink:
    def __init__(self, index: int, commands: dict[str, Any], tg: TaskGroup) -> None:
        self.pid = next(_FAKE_PIDS)
        self.index = index
        self.log: deque[str] = new_log()
        self._to_send, self._to_recv = anyio.create_memory_object_stream[bytes](math.inf)
        self._from_send, self._from_recv = anyio.create_memory_object_stream[bytes](math.inf)
        self._buf = p.FrameBuffer()
        self._scope = anyio.CancelScope()
        self._running = threading.Event()  # cleared while "SIGSTOPped"
        self._running.set()
        self._resumed = anyio.Event()
        self._exit: ExitStatus | None = None
        self._exited = anyio.Event()
        self.stopped = False
        runtime = ControlRuntime(self._transport, worker_index=index, pid=self.pid)
        self.core = WorkerCore(commands, runtime, BUILTINS)
        self._token = anyio.lowlevel.current_token()
        tg.start_soon(self._run)

    # -- the fake worker ----------------------------------------------------------------
    def _transport(self, frame: bytes) -> None:
        """Called from handler threads (and once from the loop, for the Hello)."""
        self._running.wait()
        # the worker may have been "killed" meanwhile: its output then goes nowhere
        with contextlib.suppress(Exception):
            anyio.from_thread.run_sync(self._from_send.send_nowait, frame, token=self._token)

    async def _run(self) -> None:
        with self._scope:
            self._from_send.send_nowait(self.core.hello())
            try:
                async with anyio.create_task_group() as tg:
                    async for frame in self._to_recv:
                        await self._wait_running()
                        self._dispatch(tg, frame)
                    tg.cancel_scope.cancel()
            except (anyio.ClosedResourceError, anyio.EndOfStream):
                pass
            self._end(ExitStatus(0, None))
        self._end(self._exit or ExitStatus(None, _signal.SIGKILL))

    def _dispatch(self, tg: TaskGroup, frame: bytes) -> None:
        msg = p.decode(frame[4:])
        if isinstance(msg, p.Request):
            tg.start_soon(self._off_loop, self.core.handle_request, msg)
        elif isinstance(msg, p.Ping | p.Control):
            tg.start_soon(self._off_loop, self.core.handle_control, msg)
        elif isinstance(msg, p.Shutdown):
            self._to_recv.close()

    async def _off_loop(self, fn: Any, msg: Any) -> None:
        await anyio.to_thread.run_sync(fn, msg, abandon_on_cancel=True)

    async def _wait_running(self) -> None:
        while not self._running.is_set():
            self._resumed = anyio.Event()
            await self._resumed.wait()

    def _end(self, status: ExitStatus) -> None:
        if self._exit is None:
            self._exit = status
        self._running.set()  # release threads blocked in a "stopped" transport
        self._from_send.close()
        self._to_recv.close()
        self._exited.set()

    # -- the Link -----------------------------------------------------------------------
    def send_nowait(self, msg: p.Message) -> bool:
        return self._send_frame(p.encode_frame(msg))

    def frame_writer(self) -> Callable[[bytes], bool]:
        return self._send_frame

    def _send_frame(self, frame: bytes) -> bool:
        try:
            self._to_send.send_nowait(frame)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            raise LinkClosed("channel closed") from exc
        return True

    async def send(self, msg: p.Message) -> None:
        self.send_nowait(msg)

    async def receive(self) -> list[p.Message]:
        while True:
            try:
                chunk = await self._from_recv.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError) as exc:
                raise LinkClosed("EOF") from exc
            msgs = decode_frames(self._buf, chunk)
            if msgs:
                return msgs

    async def serve(self, deliver: Callable[[list[p.Message]], None]) -> None:
        await serve_by_receive(self, deliver)

    def signal(self, sig: int) -> None:
        if self._exit is not None:
            raise ProcessLookupError(f"fake worker {self.pid} has exited")
        if sig in _ENDING:
            self._exit = ExitStatus(None, sig)
            self._scope.cancel()
            self._end(self._exit)
        elif sig == _signal.SIGSTOP:
            self._running.clear()
            self.stopped = True
        elif sig == _signal.SIGCONT:
            self._running.set()
            self.stopped = False
            self._resumed.set()

    def close(self) -> None:
        self._to_send.close()
        self._from_recv.close()

    async def wait(self) -> ExitStatus:
        await self._exited.wait()
        assert self._exit is not None
        return self._exit

    def exit_status(self) -> ExitStatus | None:
        return self._exit if self._exited.is_set() else None

    def rss(self) -> None:
        return None  # it shares the pool's process: no memory of its own to measure

    def status(self) -> str | None:
        if self._exited.is_set():
            return None
        return "stopped" if self.stopped else "running"


class MemoryBackend:
    """Fake workers as anyio tasks (same protocol objects, no subprocess)."""

    real_processes = False

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self._commands: dict[str, Any] = {}
        self._tg: TaskGroup | None = None

    async def start(self, tg: TaskGroup) -> list[str]:
        self._tg = tg
        try:
            self._commands = load_commands(self.worker)
        except Exception as exc:
            import traceback

            raise WorkerStartError(
                f"worker module {self.worker!r} failed to import: {type(exc).__name__}: {exc}"
                f"\n--- traceback ---\n{traceback.format_exc()}"
            ) from exc
        return sorted(self._commands)

    async def spawn(self, index: int) -> MemoryLink:
        assert self._tg is not None
        return MemoryLink(index, self._commands, self._tg)

    async def aclose(self) -> None:
        return None
