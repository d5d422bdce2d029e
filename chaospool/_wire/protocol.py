"""The framed, versioned wire protocol between the pool and its workers.

Every message is a msgspec ``Struct`` of the tagged union ``Message``, encoded as msgpack and
sent as one *frame*: a 4-byte big-endian length, then that many bytes. Frames travel on a
channel of their own (a socketpair), never on the worker's stdout/stderr, so a stray
``print()`` cannot corrupt them.

A worker speaks first: ``Hello`` (protocol version, pid, commands) or ``StartFailed`` (with the
remote traceback). After that the pool sends ``Request`` / ``Control`` / ``Ping`` /
``Shutdown`` and the worker answers ``Reply`` / ``Failure`` / ``Miss`` / ``Pong``. Request ids
are unique per pool, so a reply can only ever complete the call that sent it.

Session state travels by *version* (docs/design.md, Pool, "Sessions"): a ``Request`` names
the version of the session's state the pool holds, and carries the whole state only when the
pool does not know the worker to hold that version; a worker lacking it answers ``Miss`` (the
handler did not run) and the pool sends it again with the state. A ``Reply`` carries only the
top-level keys the handler changed or deleted, and the worker's copy then takes the request's
id as its version -- which is the version the pool gives the state when it adopts the change.

Payloads (command args, results, session state) are carried as ``msgspec.Raw``: encoded once
where they are produced and decoded once where they are used, never re-encoded on the way.

This module imports only the standard library and msgspec: both sides share it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import msgspec

__all__ = (
    "FRAME_HEADROOM",
    "HEADER",
    "MAX_FRAME",
    "NIL",
    "PROTOCOL_VERSION",
    "SESSION_CACHE",
    "SPARE",
    "Control",
    "Exited",
    "Failure",
    "FrameBuffer",
    "FrameReader",
    "Hello",
    "Message",
    "Miss",
    "Ping",
    "Pong",
    "Reply",
    "Request",
    "Shutdown",
    "Spawn",
    "Spawned",
    "Start",
    "StartFailed",
    "ZygoteMessage",
    "decode",
    "decode_state",
    "decode_value",
    "encode_frame",
    "encode_value",
    "payload_limit",
)

PROTOCOL_VERSION = 4
HEADER = struct.Struct(">I")
# A larger declared length is a corrupt stream. Neither side ever sends a larger frame: a reply
# that would not fit becomes a ``Failure`` (the worker lives on), a request is refused in the pool.
MAX_FRAME = 64 * 1024 * 1024
# Room a request or reply needs beside its payloads (ids, names, framing): a payload (args, a
# session's whole state, a result with its session changes) may use at most MAX_FRAME minus this.
FRAME_HEADROOM = 64 * 1024
# Session states a worker keeps between requests (least recently used dropped beyond it); the
# pool mirrors each worker's copies with the same bound, so that it rarely guesses wrong.
SESSION_CACHE = 1024
NIL = msgspec.Raw(b"\xc0")  # msgpack nil: "no value" for Raw fields (Raw | None is not decodable)


class Hello(msgspec.Struct, tag="hello", array_like=True):
    version: int
    pid: int
    commands: list[str]


class StartFailed(msgspec.Struct, tag="startfail", array_like=True):
    version: int
    pid: int
    error_type: str
    message: str
    traceback: str


class Request(msgspec.Struct, tag="req", array_like=True):
    id: int
    command: str
    args: msgspec.Raw
    session_id: str | None = None
    # version: the pool's current version of the session's state (0: the empty state, which
    # never travels); state: that whole state (a map of top-level key -> value), or NIL when
    # the pool believes the worker holds that version -- a worker that does not answers Miss
    version: int = 0
    state: msgspec.Raw = NIL


class Reply(msgspec.Struct, tag="rep", array_like=True):
    id: int
    value: msgspec.Raw
    # the top-level keys of the session's state the handler changed (key -> new value) and
    # deleted; both None when it changed nothing
    changed: dict[Any, msgspec.Raw] | None = None
    deleted: list[Any] | None = None


class Miss(msgspec.Struct, tag="miss", array_like=True):
    """The worker does not hold the session version the request named; nothing ran."""

    id: int


class Failure(msgspec.Struct, tag="fail", array_like=True):
    id: int
    error_type: str
    message: str
    traceback: str = ""


class Control(msgspec.Struct, tag="ctl", array_like=True):
    id: int
    op: str
    args: msgspec.Raw


class Ping(msgspec.Struct, tag="ping", array_like=True):
    id: int


class Pong(msgspec.Struct, tag="pong", array_like=True):
    id: int


class Shutdown(msgspec.Struct, tag="bye", array_like=True):
    pass


class Start(msgspec.Struct, tag="start", array_like=True):
    """A spare worker is taken into slot ``index`` (docs/design.md, "Spare worker"): sent
    before any request, on the data socket, so the stream orders it first."""

    index: int


Message = (
    Hello | StartFailed | Request | Reply | Failure | Miss | Control | Ping | Pong | Shutdown
    | Start
)


# The zygote's own messages (pool <-> fork server), one per SOCK_SEQPACKET datagram.
class Spawn(msgspec.Struct, tag="spawn", array_like=True):
    token: int
    index: int  # SPARE: a spare worker, whose slot a later ``Start`` names
    bell: int = -1  # the exit bell the worker holds (chaospool._wire.bells); -1: none


SPARE = -1


class Spawned(msgspec.Struct, tag="spawned", array_like=True):
    token: int
    pid: int


class Exited(msgspec.Struct, tag="exited", array_like=True):
    pid: int
    exitcode: int | None
    signal: int | None


ZygoteMessage = Hello | StartFailed | Spawn | Spawned | Exited

_encoder = msgspec.msgpack.Encoder()
_encode = _encoder.encode
_pack = HEADER.pack
_unpack_from = HEADER.unpack_from
_decoder: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(Message)
_zdecoder: msgspec.msgpack.Decoder[ZygoteMessage] = msgspec.msgpack.Decoder(
    ZygoteMessage
)
_value_decoder = msgspec.msgpack.Decoder()
_state_decoder: msgspec.msgpack.Decoder[dict[Any, msgspec.Raw]] = msgspec.msgpack.Decoder(
    dict[Any, msgspec.Raw]
)


def encode_frame(msg: Message) -> bytes:
    """One message as a complete frame (length prefix included).

    Two small ``bytes`` joined: ~2.5x faster than ``encode_into`` a ``bytearray`` and copying
    it out (that copy and the bytearray's growth cost more than the message; measured
    ~150 ns vs ~370 ns for a reply, docs/design.md, "Performance")."""
    body = _encode(msg)
    return _pack(len(body)) + body


def encode_zygote(msg: ZygoteMessage) -> bytes:
    return _encoder.encode(msg)


def decode_zygote(data: bytes) -> ZygoteMessage:
    return _zdecoder.decode(data)


# decode one frame's payload (raises ``msgspec.DecodeError`` on a malformed one); the
# decoder's own method, not a wrapper: one Python frame less per message, on both sides
decode: Callable[[bytes | memoryview], Message] = _decoder.decode


def encode_value(value: Any) -> msgspec.Raw:
    """Encode an application value (args, result, session) once; TypeError if unserialisable."""
    return msgspec.Raw(_encoder.encode(value))


# an application value (args, result, session), decoded where it is used
decode_value: Callable[[msgspec.Raw | bytes], Any] = _value_decoder.decode


def decode_state(raw: msgspec.Raw | bytes) -> dict[Any, msgspec.Raw]:
    """A session's whole state as top-level key -> encoded value (values stay encoded)."""
    return _state_decoder.decode(raw)


def payload_limit() -> int:
    """The most bytes a request's or reply's payloads may take (read at call time, so that
    tests can lower ``MAX_FRAME``)."""
    return MAX_FRAME - FRAME_HEADROOM


class FrameBuffer:
    """Complete frame payloads from a stream that arrives as ``bytes`` chunks (the memory and
    Ray links); the framing itself is :class:`FrameReader`'s, so there is one parser.

    Raises ``ValueError`` when a frame declares an impossible length (a corrupt stream).
    """

    __slots__ = ("_reader",)

    def __init__(self) -> None:
        self._reader = FrameReader()

    def feed(self, data: bytes) -> list[bytes]:
        frames: list[bytes] = []
        chunk = memoryview(data)
        while chunk:
            target = self._reader.get_buffer()
            n = min(len(target), len(chunk))
            target[:n] = chunk[:n]
            frames += self._reader.filled(n)
            chunk = chunk[n:]
        return frames


class FrameReader:
    """Frames from a stream read *into* a reusable buffer (``sock.recv_into``, or asyncio's
    ``BufferedProtocol``): no allocation per read.

    Why: ``recv(256 KiB)`` -- what a plain asyncio transport and a naive reader do -- allocates a
    fresh 256 KiB object per read, which glibc serves with ``mmap`` and frees with ``mremap`` +
    ``munmap``: three extra syscalls per request on each side (docs/design.md, "Performance").
    Each payload is copied out (one small ``bytes``), because decoded ``msgspec.Raw`` fields
    reference their input and the buffer is overwritten by the next read.
    Raises ``ValueError`` when a frame declares an impossible length (a corrupt stream).
    """

    __slots__ = ("_buf", "_cap", "_end", "_initial", "_start", "_view")

    def __init__(self, size: int = 65536) -> None:
        self._initial = self._cap = size
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._start = self._end = 0  # unread bytes are _buf[_start:_end]

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Where the next read goes (never empty); ``sizehint`` is ignored (asyncio's
        ``BufferedProtocol.get_buffer`` signature, so a protocol can hand this method over)."""
        end = self._end
        if end == 0:
            return self._view  # the usual read, into an empty buffer: no slice made per read
        if end == self._cap:  # (the capacity kept: no len() per read)
            self._make_room()
            end = self._end
        return self._view[end:]

    def filled(self, n: int) -> list[bytes]:
        """``n`` bytes were written at ``get_buffer()``: the payloads of the frames completed."""
        end = self._end = self._end + n
        buf, view, start = self._buf, self._view, self._start
        if start == 0 and end >= 4:  # the usual read: one whole frame, nothing before it
            (size,) = _unpack_from(buf)
            if size + 4 == end and size <= MAX_FRAME:
                payload = bytes(view[4:end])
                self._end = 0
                if self._cap > self._initial:  # a huge frame passed: do not keep its buffer
                    self._resize(self._initial)
                return [payload]
        frames: list[bytes] = []
        while end - start >= 4:
            (size,) = HEADER.unpack_from(buf, start)
            if size > MAX_FRAME:
                raise ValueError(f"frame of {size} bytes exceeds the {MAX_FRAME}-byte limit")
            if end - start - 4 < size:
                break
            frames.append(bytes(view[start + 4 : start + 4 + size]))
            start += 4 + size
        if start == end:
            self._start = self._end = 0
            if self._cap > self._initial:  # a huge frame passed: do not keep its buffer
                self._resize(self._initial)
        else:
            self._start = start
        return frames

    def _make_room(self) -> None:
        """The buffer is full: move the partial frame to the front, grow if it needs more."""
        start, end, buf = self._start, self._end, self._buf
        pending = end - start
        need = pending + 1
        if pending >= 4:
            need = max(need, 4 + min(HEADER.unpack_from(buf, start)[0], MAX_FRAME))
        if need > len(buf):
            self._resize(max(need, 2 * len(buf)))
        else:
            buf[:pending] = buf[start:end]  # same size: allowed while views are exported
            self._start, self._end = 0, pending

    def _resize(self, size: int) -> None:
        old = self._view[self._start : self._end]
        self._buf = bytearray(size)
        self._cap = size
        self._view = memoryview(self._buf)
        self._view[: len(old)] = old
        self._start, self._end = 0, len(old)
