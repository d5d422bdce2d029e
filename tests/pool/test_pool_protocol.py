"""The wire protocol, the pool's option parsing and command registration (pure units)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaospool._pool.config import parse_size
from chaospool._wire import protocol as p
from chaospool._worker.registry import command, load_commands

pytestmark = pytest.mark.unit


def test_frames_round_trip_in_any_chunking() -> None:
    msgs: list[p.Message] = [
        p.Request(1, "echo", p.encode_value({"x": [1, 2]}), "s", 7, p.encode_value({"n": 1})),
        p.Reply(1, p.encode_value("pong"), {"n": p.encode_value(2)}, ["gone"]),
        p.Failure(2, "ValueError", "boom", "tb"),
        p.Miss(4),
        p.Ping(3),
        p.Hello(p.PROTOCOL_VERSION, 42, ["ping"]),
    ]
    stream = b"".join(p.encode_frame(m) for m in msgs)
    for step in (1, 3, 7, len(stream)):
        buf = p.FrameBuffer()
        chunks = [stream[i : i + step] for i in range(0, len(stream), step)]
        got = [p.decode(f) for chunk in chunks for f in buf.feed(chunk)]
        assert [type(m) for m in got] == [type(m) for m in msgs]
        assert p.decode_value(got[0].args) == {"x": [1, 2]}  # type: ignore[union-attr]
        assert p.decode_state(got[0].state) == {"n": p.encode_value(1)}  # type: ignore[union-attr]
        assert p.decode_value(got[1].changed["n"]) == 2  # type: ignore[union-attr]
        assert got[1].deleted == ["gone"]  # type: ignore[union-attr]


@settings(max_examples=200, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=300), max_size=30),
    reads=st.lists(st.integers(1, 400), min_size=1, max_size=50),
    size=st.integers(1, 64),
)
def test_frame_reader_yields_every_frame_whatever_the_reads(
    payloads: list[bytes], reads: list[int], size: int
) -> None:
    """FrameReader (recv_into a reused buffer) against any split of the stream into reads, with
    a buffer far smaller than a frame (it must grow, then shrink back)."""
    stream = b"".join(p.HEADER.pack(len(x)) + x for x in payloads)
    reader, got, pos, turn = p.FrameReader(size), list[bytes](), 0, 0
    while pos < len(stream):
        into = reader.get_buffer()
        assert len(into) > 0
        n = min(len(into), reads[turn % len(reads)], len(stream) - pos)
        into[:n] = stream[pos : pos + n]
        pos, turn = pos + n, turn + 1
        got += reader.filled(n)
    assert got == payloads
    assert all(type(x) is bytes for x in got)  # copies: the buffer is reused by the next read
    assert len(reader.get_buffer()) == size  # back to its first size once drained


@settings(max_examples=100, deadline=None)
@given(payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=30),
       size=st.integers(1, 64))
def test_frame_reader_one_whole_frame_per_read(payloads: list[bytes], size: int) -> None:
    """The usual read -- exactly one whole frame (FrameReader's fast path) -- with a buffer
    that must grow for some frames and shrink back after them."""
    reader, got = p.FrameReader(size), list[bytes]()
    for x in payloads:
        frame, pos = p.HEADER.pack(len(x)) + x, 0
        while pos < len(frame):  # the frame's bytes, in as many reads as the buffer needs
            into = reader.get_buffer()
            n = min(len(into), len(frame) - pos)
            into[:n] = frame[pos : pos + n]
            pos += n
            got += reader.filled(n)
    assert got == payloads
    assert len(reader.get_buffer()) == size


def test_frame_reader_refuses_an_impossible_length() -> None:
    reader = p.FrameReader()
    frame = p.HEADER.pack(p.MAX_FRAME + 1) + b"x"
    reader.get_buffer()[: len(frame)] = frame
    with pytest.raises(ValueError, match="exceeds"):
        reader.filled(len(frame))


def test_an_impossible_frame_length_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        p.FrameBuffer().feed(p.HEADER.pack(p.MAX_FRAME + 1) + b"x")


def test_garbage_does_not_decode() -> None:
    with pytest.raises(msgspec.DecodeError):
        p.decode(b"\xc1\x00\x01")
    truncated = p.encode_frame(p.Reply(1, p.encode_value("x" * 50)))[4:30]
    with pytest.raises(msgspec.DecodeError):
        p.decode(truncated)


def test_sizes() -> None:
    assert parse_size("300MB") == 300 * 10**6  # MB as in the DSL
    assert parse_size("300MiB") == 300 * 2**20
    assert parse_size("1.5GiB") == int(1.5 * 2**30)
    assert parse_size(4096) == 4096
    assert parse_size(None) is None
    for bad in ("lots", -1, True):
        with pytest.raises(ValueError, match="size"):
            parse_size(bad)  # type: ignore[arg-type]


def test_module_object_form_and_missing_commands() -> None:
    commands = load_commands("pool_test_workers:COMMANDS")
    assert sorted(commands) == ["hello", "ping"]
    with pytest.raises(LookupError, match="registers no @command"):
        load_commands("chaospool.worker")


def test_async_handlers_are_refused_at_registration() -> None:
    async def handler(args: Any, ctx: Any) -> None:
        return None

    with pytest.raises(TypeError, match="not async def"):
        command(handler)


@pytest.mark.parametrize("module", ["chaospool.pool", "chaospool.worker", "chaospool.workers.demo"])
def test_public_names_resolve(module: str) -> None:
    import importlib

    mod = importlib.import_module(module)
    names = getattr(mod, "__all__", ())
    assert isinstance(names, tuple)
    for name in names:
        assert getattr(mod, name) is not None


def test_demo_worker_has_the_contract_commands() -> None:
    commands = load_commands("chaospool.workers.demo")
    assert sorted(commands) == sorted(
        ["ping", "echo", "sleep", "compute", "alloc", "create_program", "list_programs",
         "execute"])
