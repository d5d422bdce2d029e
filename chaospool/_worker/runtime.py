"""The transport-independent worker runtime: runs commands and control ops, sends replies.

``WorkerCore`` is used unchanged by the process worker (a command thread and a control thread
on two sockets) and by the in-memory backend (anyio tasks in the pool's process). Everything
that faults can bend on the way out -- reply delay, a blocked worker, damaged frames -- lives
in ``ControlRuntime.send_*``, so both backends behave alike.
"""

from __future__ import annotations

import importlib
import os
import random
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from chaospool._wire import protocol as p
from chaospool._worker.builtins import COMMANDS as BUILTIN_COMMANDS
from chaospool._worker.sessions import SessionCache, SessionCopy

Transport = Callable[[bytes], None]
ReplyFilter = Callable[[bytes], bytes]
ControlFn = Callable[[dict[str, Any], "ControlRuntime"], Any]

_ENCODE_ERRORS = (TypeError, ValueError, OverflowError, msgspec.EncodeError)
_NO_DELAY = (0.0, 0.0)
_encode = msgspec.msgpack.Encoder().encode  # as ``p.encode_frame`` encodes
_pack = p.HEADER.pack
_decode_value = p.decode_value


class ControlRuntime:
    """What control functions get: the levers on this worker's behaviour.

    Thread-safe: control ops run on the control thread while a command runs on another.
    """

    def __init__(self, transport: Transport, *, worker_index: int, pid: int) -> None:
        self.worker_index = worker_index
        self.pid = pid
        self.state: dict[str, Any] = {}  # free for control functions (keep-alive of objects)
        self._transport = transport
        self._lock = threading.Lock()
        self._delay: tuple[float, float] = _NO_DELAY
        # False while a block may hold replies (block() clears it first, unblock() sets it
        # last): with no delay and no filter either, a reply goes straight out (send_reply)
        self._open = True
        self.delayed_replies = 0  # replies held back by set_delay (the slow_worker evidence)
        self._unblocked = threading.Event()
        self._unblocked.set()
        self._blocked_until: float | None = None
        self._filters: list[ReplyFilter] = []
        self._threads: dict[str, tuple[threading.Thread, threading.Event]] = {}

    # -- levers -------------------------------------------------------------------------
    def set_delay(self, latency: float, jitter: float = 0.0) -> None:
        """Delay every command reply by ``latency`` ± ``jitter`` seconds."""
        delay = (max(0.0, latency), max(0.0, jitter))
        self._delay = _NO_DELAY if delay == _NO_DELAY else delay

    def block(self, duration: float | None = None) -> None:
        """Answer nothing (replies held, heartbeats dropped) until ``unblock`` or ``duration``."""
        self._open = False
        self._blocked_until = None if duration is None else time.monotonic() + duration
        self._unblocked.clear()

    def unblock(self) -> None:
        self._blocked_until = None
        self._unblocked.set()
        self._open = True

    @property
    def blocked(self) -> bool:
        if self._unblocked.is_set():
            return False
        until = self._blocked_until
        if until is not None and time.monotonic() >= until:
            self.unblock()
            return False
        return True

    def add_reply_filter(self, fn: ReplyFilter) -> Callable[[], None]:
        """``fn(frame) -> frame`` is applied to every command reply frame; returns a remover."""
        self._filters.append(fn)
        return lambda: self._filters.remove(fn) if fn in self._filters else None

    def clear_reply_filters(self) -> None:
        self._filters.clear()

    def start_thread(self, name: str, target: Callable[[threading.Event], None]) -> None:
        """Run ``target(stop_event)`` on a daemon thread; ``stop_thread(name)`` ends it."""
        self.stop_thread(name)
        stop = threading.Event()
        thread = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
        self._threads[name] = (thread, stop)
        thread.start()

    def stop_thread(self, name: str, timeout: float = 2.0) -> bool:
        entry = self._threads.pop(name, None)
        if entry is None:
            return False
        thread, stop = entry
        stop.set()
        thread.join(timeout)
        return True

    def thread_names(self) -> list[str]:
        return [n for n, (t, _) in self._threads.items() if t.is_alive()]

    # -- the way out --------------------------------------------------------------------
    def _wait_unblocked(self) -> None:
        while self.blocked:
            until = self._blocked_until
            self._unblocked.wait(None if until is None else max(0.0, until - time.monotonic()))

    def send_reply(self, frame: bytes) -> None:
        if self._open and self._delay is _NO_DELAY and not self._filters:
            with self._lock:  # nothing bends replies (the common case): three checks
                self._transport(frame)
            return
        latency, jitter = self._delay
        if latency or jitter:
            self.delayed_replies += 1
            time.sleep(max(0.0, latency + random.uniform(-jitter, jitter)))
        if not self._unblocked.is_set():  # every reply passes here: the common case is one check
            self._wait_unblocked()
        if self._filters:
            for fn in list(self._filters):
                frame = fn(frame)
        self._send(frame)

    def send_control(self, frame: bytes, *, bypass: bool = False) -> None:
        if not bypass:
            self._wait_unblocked()
        self._send(frame)

    def send_pong(self, frame: bytes) -> None:
        if not self.blocked:  # a blocked worker answers nothing, heartbeats included
            self._send(frame)

    def _send(self, frame: bytes) -> None:
        with self._lock:
            self._transport(frame)


class Context:
    """What a handler gets besides its args: the session's state and where it runs.

    A call without a session gets its worker's one plain Context, its scratch emptied for
    each call (a Context per call cost as much as the rest of the worker's request loop):
    keep nothing of it past the call."""

    __slots__ = ("_copy", "_scratch", "runtime", "session_id", "worker_index")

    def __init__(
        self,
        session_id: str | None,
        copy: SessionCopy | None,
        worker_index: int,
        runtime: ControlRuntime | None = None,
    ) -> None:
        self.session_id = session_id
        self.worker_index = worker_index
        self.runtime = runtime
        self._copy = copy
        self._scratch: dict[str, Any] | None = None

    @property
    def session(self) -> dict[str, Any]:
        """The session's state: a dict owned by the pool. What the handler changes in it is
        shipped back per top-level key; a handler that raises changes nothing. Without a
        session it is a scratch dict that nobody keeps."""
        if self._copy is not None:
            return self._copy.state
        if self._scratch is None:
            self._scratch = {}
        return self._scratch


def _failure(rid: int, exc: BaseException, tb: str = "") -> bytes:
    return p.encode_frame(p.Failure(rid, type(exc).__name__, str(exc), tb))


class WorkerCore:
    """Dispatches decoded messages to handlers and control ops; sends the answers."""

    def __init__(
        self,
        commands: Mapping[str, Callable[[Any, Context], Any]],
        runtime: ControlRuntime,
        controls: Mapping[str, ControlFn],
    ) -> None:
        self.commands = dict(commands)
        self.runtime = runtime
        self.controls = dict(controls)
        # the session states this worker serves, kept decoded (chaospool/_worker/sessions.py)
        self.sessions = SessionCache()
        # the user's commands, then the probe's built-ins: one lookup per request
        self._handlers = {**BUILTIN_COMMANDS, **self.commands}
        # the Context of every call without a session, its scratch emptied per call (made at
        # the first one: a spare learns its index before any request reaches it)
        self._plain: Context | None = None

    def hello(self) -> bytes:
        return p.encode_frame(p.Hello(p.PROTOCOL_VERSION, os.getpid(), sorted(self.commands)))

    def handle_request(self, msg: p.Request) -> None:
        """Run one command; the reply (or Failure, or Miss) is sent before this returns."""
        self.runtime.send_reply(self.run(msg))

    def run(self, msg: p.Request) -> bytes:
        """Run one command: the frame of its reply (or Failure, or Miss), to be sent."""
        copy = None
        if msg.session_id is not None:
            copy = self.sessions.lookup(msg.session_id, msg.version, msg.state)
            if copy is None:  # the pool's mirror was wrong: it sends the state again
                return p.encode_frame(p.Miss(msg.id))
        handler = self._handlers.get(msg.command)
        if handler is None:
            known = ", ".join(sorted(self.commands))
            text = f"unknown command {msg.command!r} (this worker has: {known})"
            return self._fail(msg, "UnknownCommand", text)
        ctx = self._plain
        if copy is not None or ctx is None:
            ctx = self._context(msg.session_id, copy)
        else:
            ctx._scratch = None  # (one worker runs one call at a time)
        try:
            result = handler(_decode_value(msg.args), ctx)
        except Exception as exc:
            return self._fail(msg, type(exc).__name__, str(exc), traceback.format_exc())
        if copy is None:  # no session, nothing else to ship: the reply in one encoding pass
            # the result encoded in place, in one pass: a Struct does not check its fields'
            # types when built, and the encoder writes whatever they hold -- the same bytes as
            # ``Raw(encode(result))``; raises what ``p.encode_value`` raises
            try:
                body = _encode(p.Reply(msg.id, result))
                frame = _pack(len(body)) + body
            except _ENCODE_ERRORS:
                return self._encode_reply(msg, result, None)  # the failure says why
            if len(frame) - 4 <= p.MAX_FRAME:  # read at call time: tests lower it
                return frame
        return self._encode_reply(msg, result, copy)

    def _context(self, session_id: str | None, copy: SessionCopy | None) -> Context:
        runtime = self.runtime
        ctx = Context(session_id, copy, runtime.worker_index, runtime)
        if copy is None:
            self._plain = ctx
        return ctx

    def _fail(self, msg: p.Request, error_type: str, text: str, tb: str = "") -> bytes:
        """A Failure: the call changed nothing, so this worker forgets its copy of the session
        (the handler may have changed it in place); the pool forgets it too on any Failure."""
        if msg.session_id is not None:
            self.sessions.drop(msg.session_id)
        return p.encode_frame(p.Failure(msg.id, error_type, text, tb))

    def _encode_reply(self, msg: p.Request, result: Any, copy: SessionCopy | None) -> bytes:
        try:
            value = p.encode_value(result)
        except _ENCODE_ERRORS as exc:
            text = f"the result of {msg.command!r} cannot be serialised: {exc}"
            return self._fail(msg, "UnserialisableResult", text)
        changed: dict[Any, msgspec.Raw] | None = None
        deleted: list[Any] | None = None
        if copy is not None and copy.state.touched:
            try:
                changed, deleted = copy.delta()
            except _ENCODE_ERRORS as exc:
                text = f"the session state set by {msg.command!r} cannot be serialised: {exc}"
                return self._fail(msg, "UnserialisableSession", text)
            if changed or deleted:
                copy.version = msg.id  # the version the pool gives this state if it adopts it
        return self._framed(msg, p.Reply(msg.id, value, changed or None, deleted or None))

    def _framed(self, msg: p.Request, reply: p.Reply) -> bytes:
        """The reply's frame; a Failure instead when it would exceed the frame limit (the
        pool would take it for a corrupt stream and kill this worker)."""
        frame = p.encode_frame(reply)
        size = len(frame) - p.HEADER.size
        if size <= p.MAX_FRAME:
            return frame
        text = (f"the reply to {msg.command!r} (its result and session changes) is {size} "
                f"bytes, above the frame limit of {p.MAX_FRAME} bytes")
        return self._fail(msg, "FrameTooLarge", text)

    def handle_control(self, msg: p.Message) -> None:
        """A Ping or a Control op (runs on the control thread, beside any command)."""
        if isinstance(msg, p.Ping):
            self.runtime.send_pong(p.encode_frame(p.Pong(msg.id)))
        elif isinstance(msg, p.Control):
            # never held by a block: other faults' control ops must work while one blocks
            # (docs/faults.md, "Overlapping faults on one worker")
            self.runtime.send_control(self._control(msg), bypass=True)

    def _control(self, msg: p.Control) -> bytes:
        try:
            fn = self._resolve(msg.op)
            args = p.decode_value(msg.args) or {}
            value = fn(dict(args), self.runtime)
            frame = p.encode_frame(p.Reply(msg.id, p.encode_value(value)))
        except Exception as exc:
            return _failure(msg.id, exc, traceback.format_exc())
        if len(frame) - p.HEADER.size > p.MAX_FRAME:
            text = (f"the answer of control op {msg.op!r} is {len(frame) - p.HEADER.size} "
                    f"bytes, above the frame limit of {p.MAX_FRAME} bytes")
            return p.encode_frame(p.Failure(msg.id, "FrameTooLarge", text))
        return frame

    def _resolve(self, op: str) -> ControlFn:
        fn = self.controls.get(op)
        if fn is not None:
            return fn
        module, sep, name = op.partition(":")
        if not sep:
            raise LookupError(f"unknown control op {op!r} (built-ins: {sorted(self.controls)})")
        fn = getattr(importlib.import_module(module), name)
        if not callable(fn):
            raise TypeError(f"control op {op!r} is not callable")
        return fn  # type: ignore[no-any-return]
