"""The channel seam: a ``Backend`` starts workers, a ``Link`` talks to one of them.

Kept deliberately narrow -- spawn, send, receive, signal, close, wait -- so that a backend of
another kind (a Ray actor, a remote host) fits beside the subprocess one and the in-memory one.
Everything else (checkout, timeouts, partitions, supervision) lives above it, in the pool.
"""

from __future__ import annotations

import signal as _signal
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import msgspec

from chaospool._wire import protocol as p

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

LOG_LINES = 50  # the last lines of a worker's stdout/stderr kept for error messages


class LinkClosed(Exception):
    """The channel reached EOF or was closed: the worker is gone or cut off."""


# What a ``SendsFrames`` writer raises on a link that is down: LinkClosed, or RuntimeError
# from an event loop's transport written after it closed (uvloop raises; asyncio drops it)
WRITE_CLOSED: tuple[type[Exception], ...] = (LinkClosed, RuntimeError)


class MalformedFrame(Exception):
    """A frame could not be decoded: the worker (or its channel) is broken."""


@dataclass(frozen=True)
class ExitStatus:
    exitcode: int | None
    signal: int | None

    def describe(self) -> str:
        if self.signal is not None:
            try:
                name = _signal.Signals(self.signal).name
            except ValueError:
                name = str(self.signal)
            return f"killed by signal {self.signal} ({name})"
        if self.exitcode is not None:
            return f"exited with code {self.exitcode}"
        return "exit status unknown"


@runtime_checkable
class Link(Protocol):
    """One worker incarnation's channel and process."""

    pid: int
    log: deque[str]

    async def send(self, msg: p.Message) -> None:
        """Send one message; raises LinkClosed if the channel is gone."""

    def send_nowait(self, msg: p.Message) -> bool:
        """Send at once if that needs no waiting (True); False: use ``send``."""

    async def receive(self) -> list[p.Message]:
        """The next message(s); raises LinkClosed at EOF, MalformedFrame on a bad frame.

        Used for the handshake; after it the pool calls ``serve``.
        """

    async def serve(self, deliver: Callable[[list[p.Message]], None]) -> None:
        """Call ``deliver(messages)`` for everything received, until EOF (then return).

        Raises MalformedFrame on a bad frame. Push-based so that a transport with callbacks
        (asyncio protocols) completes a request without waking an extra reader task.
        """

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the worker and its process group; ProcessLookupError if gone."""

    def close(self) -> None:
        """Close the pool's end of the channel (the worker sees EOF and leaves)."""

    async def wait(self) -> ExitStatus:
        """Wait until the worker has exited and was reaped; return how it ended."""

    def exit_status(self) -> ExitStatus | None:
        """How it ended, once reaped (None while alive)."""


@runtime_checkable
class Measured(Protocol):
    """What a link may also tell of its worker (``WorkerHandle.rss``/``status``).

    Optional: only the link can know (a local process through psutil, a fake worker's
    emulated stop, a remote actor's last signals); a link without it answers None.
    """

    def rss(self) -> int | None:
        """Resident set size in bytes; None when unknown or gone."""

    def status(self) -> str | None:
        """psutil-style status ("running", "sleeping", "stopped", ...); None when gone."""


@runtime_checkable
class Exits(Protocol):
    """What a link may also tell: the moment its worker exits, before it is reaped.

    Optional: a link that has it lets the supervisor replace the worker as soon as it is
    certainly dead, while it is reaped (docs/design.md, "Replacing at death"); without it the
    replacement waits for ``wait``.
    """

    async def exited(self) -> ExitStatus:
        """Once the worker process has exited, or every thread of it is in its exit (the
        kernel tearing it down: docs/design.md, "Exit bells") -- never while any code of it
        may still run -- how it ended (possibly before ``wait``: the status need not wait for
        the reap)."""


@runtime_checkable
class SendsFrames(Protocol):
    """What a link may also do: take a Request already encoded as a frame.

    Optional: the pool encodes a plain command's Request in its caller, so that the reply
    callback that dispatches it -- while its worker waits -- only writes it (docs/design.md,
    "Performance"); a link without it is given the message (``send_nowait``).
    """

    def frame_writer(self) -> Callable[[bytes], object] | None:
        """Asked once the link is started: what writes one Request frame (``p.encode_frame``)
        now, buffering what the channel cannot take yet -- or None if this link cannot (it is
        then given messages). Once the link is down the writer may raise (``WRITE_CLOSED``)
        or drop the frame: the pool fails every call in flight on a link that went down."""


@runtime_checkable
class Spares(Protocol):
    """What a backend may also do: hand out a worker that is ready now, in the caller's step.

    Optional: a backend with a started worker in stock (the process backend's spare) lets a
    replacement serve without a turn of the loop (docs/design.md, "Replacing at death").
    """

    def take_ready(self, index: int) -> tuple[Link, list[p.Message]] | None:
        """A worker given slot ``index`` whose handshake messages were already received (they
        are returned, for the pool to check), or None: then ``spawn``."""


@runtime_checkable
class Backend(Protocol):
    """Starts workers of one worker module."""

    #: True when workers are real OS processes (psutil can measure them).
    real_processes: bool

    async def start(self, tg: TaskGroup) -> list[str]:
        """Prepare (import the worker module once, say); return its command names.

        Raises WorkerStartError (with the remote traceback) if the module cannot be loaded.
        ``tg`` is the pool's task group, for the backend's own long-lived tasks.
        """

    async def spawn(self, index: int) -> Link:
        """Start one worker for slot ``index``; the Hello is the pool's to read."""

    async def aclose(self) -> None:
        """Stop what ``start`` began; every process reaped on return."""


def new_log() -> deque[str]:
    return deque(maxlen=LOG_LINES)


def decode_frames(buf: p.FrameBuffer, chunk: bytes) -> list[p.Message]:
    """The messages ``chunk`` completes (maybe none); MalformedFrame if one cannot be decoded."""
    try:
        return [p.decode(f) for f in buf.feed(chunk)]
    except (ValueError, msgspec.DecodeError) as exc:
        raise MalformedFrame(str(exc)) from exc


async def serve_by_receive(link: Link, deliver: Callable[[list[p.Message]], None]) -> None:
    """``Link.serve`` for a link that only knows how to ``receive``."""
    while True:
        try:
            msgs = await link.receive()
        except LinkClosed:
            return
        deliver(msgs)


_CAPABLE: dict[tuple[type, type], bool] = {}


def capable(obj: object, capability: type) -> bool:
    """``isinstance(obj, capability)`` for one of the optional protocols above, known per
    class: an isinstance on a runtime-checkable Protocol costs ~10 us, and some are asked on
    the path from a death to its replacement or at every check-in."""
    key = (type(obj), capability)
    known = _CAPABLE.get(key)
    if known is None:
        known = _CAPABLE[key] = isinstance(obj, capability)
    return known
