"""chaospool's pool against a bare loop, ProcessPoolExecutor and multiprocessing.Pool, per loop.

    python benchmarks/bench_pool.py [--rounds 5] [--ops 20000] [--clients 50] [--workers 2]
                                    [--loops asyncio,uvloop] [--profile LOOP]
                                    [--bytecodes LOOP] [--reaction]

Noop throughput and latency with ``--workers`` workers and ``--clients`` concurrent clients
(closed loop), on each event loop in turn, in interleaved rounds (round 1 on asyncio, round 1 on
uvloop, round 2 on asyncio, ...; the contenders' order rotates) so that machine noise hits every
contender alike. The *bare loop* is the physical reference: forked workers on socketpairs,
length-prefixed msgspec frames, an asyncio protocol per worker and a FIFO of waiting callers,
dispatched from the reply callback -- nothing else (no timeouts, supervision, sessions or
events). It reads as chaospool does (into a reused buffer: a buffered protocol, ``recv_into``
in the workers), so that the ratio measures chaospool's machinery, not a read strategy.
Then, per loop, the replacement time after a SIGKILL (kill -> slot serving again), with the
spare worker and without it (fork on demand, as in 0.1), and the time to start 16 workers.
Latency percentiles come from an HDR histogram (microseconds).

Targets (docs/design.md, "Performance"): chaospool >= 0.85x the bare loop on the same event
loop, >= 2.5x ProcessPoolExecutor, >= 1.5x multiprocessing.Pool on asyncio and >= 2x on
uvloop; replacement median <= 2 ms.

``--profile LOOP`` runs chaospool, then the bare loop, on LOOP under cProfile: the top entries
of chaospool's request path, and each one's Python calls per request (cProfile's count: the
figure machine load does not change; the driver's own calls are left out). ``cpu us/op`` is the
parent's CPU per call, ``wcpu us/op`` the workers' (the pool's and the bare loop's workers, read
from /proc): on 2 CPUs shared by the parent and its workers, both bound the throughput.

``--bytecodes LOOP`` counts the bytecodes each side executes per request in the parent
(``sys.settrace`` opcode events: a count, the same on a busy machine), chaospool's by function.
``--reaction`` times the reply callback's path on each loop -- from a worker's reply reaching
the protocol until the next queued request is written to it: what a worker waits for.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import contextlib
import cProfile
import io
import multiprocessing
import os
import pstats
import signal
import socket
import statistics
import sys
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import psutil
import uvloop
from hdrh.histogram import HdrHistogram
from replacement_trace import Trace, traced

from chaospool._pool.process import ProcessBackend
from chaospool.pool import Pool

Call = Callable[[], Awaitable[Any]]
CONTENDERS = ("chaospool", "bare loop", "multiprocessing.Pool", "ProcessPoolExecutor")
TARGETS = {  # chaospool / contender, per loop
    "asyncio": {"bare loop": 0.85, "multiprocessing.Pool": 1.5, "ProcessPoolExecutor": 2.5},
    "uvloop": {"bare loop": 0.85, "multiprocessing.Pool": 2.0, "ProcessPoolExecutor": 2.5},
}


def noop(_: Any = None) -> str:
    return "pong"


def run_on(loop: str, main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return uvloop.run(main()) if loop == "uvloop" else asyncio.run(main())


# ---------------------------------------------------------------------------- the bare loop
class BareRequest(msgspec.Struct, array_like=True):
    id: int
    command: str
    args: msgspec.Raw


class BareReply(msgspec.Struct, array_like=True):
    id: int
    value: msgspec.Raw


class Frames:
    """Length-prefixed frames read into one reused buffer (as chaospool does: a fresh 256 KiB
    ``recv`` per read costs an mmap + munmap, and that is not what is being compared)."""

    def __init__(self) -> None:
        self.buf = bytearray(65536)
        self.view = memoryview(self.buf)
        self.end = 0

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        return self.view[self.end :]

    def filled(self, n: int) -> list[bytes]:
        self.end += n
        frames, start, buf = [], 0, self.buf
        while self.end - start >= 4 and self.end - start >= 4 + (
                size := int.from_bytes(buf[start : start + 4], "big")):
            frames.append(bytes(self.view[start + 4 : start + 4 + size]))
            start += 4 + size
        buf[: self.end - start] = buf[start : self.end]  # (noop frames never fill 64 KiB)
        self.end -= start
        return frames


def bare_worker(sock: socket.socket) -> None:
    """A forked worker: blocking reads, one frame in, one frame out (never returns)."""
    encoder, decoder = msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder(BareRequest)
    handlers = {"ping": noop}
    frames = Frames()
    while n := sock.recv_into(frames.get_buffer()):
        for frame in frames.filled(n):
            req = decoder.decode(frame)
            value = handlers[req.command](msgspec.msgpack.decode(req.args))
            body = encoder.encode(BareReply(req.id, msgspec.Raw(encoder.encode(value))))
            sock.sendall(len(body).to_bytes(4, "big") + body)
    os._exit(0)


def fork_bare_workers(n: int) -> list[tuple[int, socket.socket]]:
    """Fork before any thread exists (PPE and multiprocessing.Pool start threads)."""
    workers: list[tuple[int, socket.socket]] = []
    for _ in range(n):
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            for sock in [ours, *(s for _, s in workers)]:
                sock.close()  # only the parent may hold our peers' ends: EOF must reach them
            bare_worker(theirs)
        theirs.close()
        workers.append((pid, ours))
    return workers


class BareLink(asyncio.BufferedProtocol):
    def __init__(self, bare: BareLoop) -> None:
        self.bare = bare
        self.frames = Frames()
        self.get_buffer = self.frames.get_buffer  # type: ignore[method-assign]
        self.fut: asyncio.Future[Any] | None = None
        self.transport: Any = None
        self.decoder = msgspec.msgpack.Decoder(BareReply)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def send(self, frame: bytes, fut: asyncio.Future[Any]) -> None:
        self.fut = fut
        self.transport.write(frame)

    def buffer_updated(self, nbytes: int) -> None:
        for frame in self.frames.filled(nbytes):
            reply = self.decoder.decode(frame)
            fut, self.fut = self.fut, None
            self.bare.free(self)  # the next waiting caller's frame goes out before we wake
            if fut is not None and not fut.cancelled():
                fut.set_result(reply.value)


class BareLoop:
    """The physical reference: a FIFO of waiting callers over forked workers, nothing else."""

    def __init__(self) -> None:
        self.idle: list[BareLink] = []
        self.waiters: deque[tuple[bytes, asyncio.Future[Any]]] = deque()
        self.encoder = msgspec.msgpack.Encoder()
        self.ids = 0
        self.links: list[BareLink] = []

    async def attach(self, socks: list[socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        for sock in socks:  # a dup per event loop: closing the transport keeps the worker
            _, link = await loop.connect_accepted_socket(lambda: BareLink(self), sock.dup())
            self.links.append(link)
            self.idle.append(link)

    def close(self) -> None:
        for link in self.links:
            link.transport.close()

    def free(self, link: BareLink) -> None:
        if self.waiters:
            frame, fut = self.waiters.popleft()
            link.send(frame, fut)
        else:
            self.idle.append(link)

    async def call(self, command: str, args: Any = None) -> Any:
        self.ids += 1
        body = self.encoder.encode(
            BareRequest(self.ids, command, msgspec.Raw(self.encoder.encode(args))))
        frame = len(body).to_bytes(4, "big") + body
        fut = asyncio.get_running_loop().create_future()
        if self.idle:
            self.idle.pop().send(frame, fut)
        else:
            self.waiters.append((frame, fut))
        return msgspec.msgpack.decode(await fut)


# ---------------------------------------------------------------------------- the others
def ppe_call(ex: cf.ProcessPoolExecutor) -> Call:
    loop = asyncio.get_running_loop()
    return lambda: loop.run_in_executor(ex, noop)


def mp_call(pool: Any) -> Call:
    loop = asyncio.get_running_loop()

    def call() -> asyncio.Future[Any]:
        fut = loop.create_future()

        def done(result: Any) -> None:
            loop.call_soon_threadsafe(fut.set_result, result)

        pool.apply_async(noop, callback=done)
        return fut

    return call


# ---------------------------------------------------------------------------- measuring
def cpu_of(pids: list[int]) -> float:
    """CPU seconds the processes ``pids`` have used (0 for one that is gone)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


async def drive(
    call: Call, ops: int, clients: int, hist: HdrHistogram | None
) -> tuple[float, float]:
    """Run ``ops`` calls from ``clients`` concurrent clients; return ops/s and the parent's CPU
    seconds per op (all its threads) -- the figure a loaded machine distorts least."""
    left = ops

    async def client() -> None:
        nonlocal left
        clock = time.perf_counter
        while left > 0:
            left -= 1
            start = clock()
            await call()
            if hist is not None:
                hist.record_value(max(1, int((clock() - start) * 1e6)))

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client() for _ in range(clients)))
    return ops / (time.perf_counter() - start), (time.process_time() - cpu) / ops


class Results:
    def __init__(self, loops: list[str]) -> None:
        self.rates = {(lp, n): list[float]() for lp in loops for n in CONTENDERS}
        self.cpu = {key: list[float]() for key in self.rates}
        self.wcpu = {key: list[float]() for key in self.rates}
        self.hists = {key: HdrHistogram(1, 60_000_000, 3) for key in self.rates}

    def row(self, loop: str, name: str) -> tuple[float, float, float, int, int]:
        hist = self.hists[loop, name]
        return (statistics.median(self.rates[loop, name]),
                statistics.median(self.cpu[loop, name]) * 1e6,
                statistics.median(self.wcpu[loop, name]) * 1e6,
                hist.get_value_at_percentile(50), hist.get_value_at_percentile(99))


@contextlib.asynccontextmanager
async def contenders(
    args: argparse.Namespace, bare_workers: list[tuple[int, socket.socket]], ex: Any, mpp: Any
) -> AsyncIterator[dict[str, tuple[Call, list[int]]]]:
    """Each contender's call and its workers' pids (for their CPU time)."""
    bare = BareLoop()
    await bare.attach([sock for _, sock in bare_workers])
    try:
        async with Pool("chaospool.workers.demo", size=args.workers,
                        health_check=False) as pool:
            pids = [w.pid for w in pool.workers if w.pid is not None]
            yield {"chaospool": (lambda: pool.execute("ping"), pids),
                   "bare loop": (lambda: bare.call("ping"), [pid for pid, _ in bare_workers]),
                   "ProcessPoolExecutor": (ppe_call(ex), list(ex._processes)),
                   "multiprocessing.Pool": (mp_call(mpp), [w.pid for w in mpp._pool])}
    finally:
        bare.close()


async def one_round(
    loop: str, turn: int, args: argparse.Namespace, res: Results, pools: tuple[Any, ...]
) -> None:
    async with contenders(args, *pools) as calls:
        names = args.only
        for name in names:  # warm up: workers started, code paths hot
            await drive(calls[name][0], min(2000, args.ops), args.clients, None)
        order = names[turn % len(names) :] + names[: turn % len(names)]
        for name in order:
            call, pids = calls[name]
            before = cpu_of(pids)
            rate, cpu = await drive(call, args.ops, args.clients, res.hists[loop, name])
            res.rates[loop, name].append(rate)
            res.cpu[loop, name].append(cpu)
            res.wcpu[loop, name].append((cpu_of(pids) - before) / args.ops)


def throughput(
    args: argparse.Namespace, loops: list[str], bare: list[tuple[int, socket.socket]]
) -> Results:
    res = Results(loops)
    with cf.ProcessPoolExecutor(args.workers) as ex, \
            multiprocessing.get_context("fork").Pool(args.workers) as mpp:
        for turn in range(args.rounds):
            for loop in loops:
                run_on(loop, lambda loop=loop, turn=turn: one_round(  # type: ignore[misc]
                    loop, turn, args, res, (bare, ex, mpp)))
    return res


async def replacement(kills: int, spare: bool, trace: Trace | None = None) -> list[float]:
    """Seconds from SIGKILL of slot 0's worker until slot 0 serves a new process; ``spare``
    False is the fork-on-demand path of 0.1 (docs/design.md, "Spare worker"). ``trace``
    records per-step times (``replacement_trace.py``)."""
    times: list[float] = []
    restart = {"max_restarts": kills + 1, "within": 60.0}  # every kill is a failure: allow them
    backend = ProcessBackend("chaospool.workers.demo", spare=spare)
    async with Pool("chaospool.workers.demo", size=2, health_check=False,
                    restart=restart, backend=backend) as pool:
        for _ in range(kills):
            # kills 20 ms apart (a crash storm, yet the pool is back in its steady state:
            # the spare of the last replacement is forked)
            await asyncio.sleep(0.02)
            pid = pool.workers[0].pid
            assert pid is not None
            if trace is not None:
                trace.start()
            start = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            await pool.wait_serving(0, not_pid=pid)
            times.append(time.perf_counter() - start)
            if trace is not None:
                trace.done(times[-1])
    return times


def replacements(args: argparse.Namespace, loops: list[str]) -> None:
    """The replacement section alone (``--replacement``): ``--repeat`` back-to-back runs per
    loop, fork on demand and spare side by side; with ``--trace``, per-step medians."""
    for loop in loops:
        for spare in (False, True):
            trace = Trace() if args.trace else None
            with traced(trace) if trace is not None else contextlib.nullcontext():
                runs = [run_on(loop, lambda spare=spare, trace=trace: replacement(  # type: ignore[misc]
                    args.kills, spare, trace)) for _ in range(args.repeat)]
            how = "spare worker" if spare else "fork on demand (0.1)"
            medians = ", ".join(f"{statistics.median(t) * 1e3:.2f}" for t in runs)
            every = sorted(x for t in runs for x in t)
            print(f"{loop}: replacement after SIGKILL, {how}: medians per run {medians} ms; "
                  f"all {statistics.median(every) * 1e3:.2f} ms (min {every[0] * 1e3:.2f}, "
                  f"n={len(every)}; target <= 2 ms)")
            if trace is not None:
                print(trace.report(f"{loop}, {how}"))


async def cancel_queued(n: int) -> float:
    """Seconds to cancel ``n`` callers queued behind one busy worker (last in, first out: the
    worst order for a list-like queue). Linear: 10x the callers take ~10x as long."""
    async with Pool("chaospool.workers.demo", size=1, health_check=False, max_queue=n,
                    checkout_timeout=600) as pool:
        busy = asyncio.ensure_future(pool.execute("sleep", {"duration": 0.2}))
        queued = [asyncio.ensure_future(pool.execute("ping")) for _ in range(n)]
        await asyncio.sleep(0.05)  # every caller has reached the queue (a workload shape)
        start = time.perf_counter()
        for task in reversed(queued):
            task.cancel()
        await asyncio.gather(*queued, return_exceptions=True)
        took = time.perf_counter() - start
        await busy
    return took


async def startup(size: int, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        async with Pool("chaospool.workers.demo", size=size, health_check=False):
            times.append(time.perf_counter() - start)
    return times


# ---------------------------------------------------------------------------- reporting
def report_loop(loop: str, res: Results, names: list[str]) -> None:
    ours = res.row(loop, "chaospool")[0]
    print(f"\n== {loop} ==")
    print(f"{'pool':<22}{'ops/s':>10}{'cpu us/op':>10}{'wcpu us/op':>11}{'p50 us':>9}"
          f"{'p99 us':>9}{'p99/p50':>9}{'chaospool x':>13}{'target':>9}")
    for name in names:
        ops, cpu, wcpu, p50, p99 = res.row(loop, name)
        target = TARGETS.get(loop, {}).get(name)
        mark = "" if target is None else f">={target:<4}" + ("ok" if ours / ops >= target
                                                                else "MISS")
        print(f"{name:<22}{ops:>10.0f}{cpu:>10.1f}{wcpu:>11.1f}{p50:>9}{p99:>9}"
              f"{p99 / max(p50, 1):>9.2f}{ours / ops:>13.2f}  {mark}")


def report_times(loop: str, repl: dict[bool, list[float]], start: list[float]) -> None:
    for spare, times in repl.items():
        how = "spare worker" if spare else "fork on demand (0.1)"
        print(f"{loop}: replacement after SIGKILL, {how}: median "
              f"{statistics.median(times) * 1e3:.2f} ms (min {min(times) * 1e3:.2f}, "
              f"max {max(times) * 1e3:.2f}, n={len(times)}; target <= 2 ms)")
    print(f"{loop}: start 16 workers: median {statistics.median(start) * 1e3:.0f} ms "
          f"(n={len(start)})")


T = TypeVar("T")


async def each_side(
    args: argparse.Namespace, socks: list[socket.socket], run: Callable[[Call], Awaitable[T]],
    prepare: Callable[[str], None] = lambda side: None,
) -> tuple[T, T]:
    """``run(call)`` on chaospool, then on the bare loop: each side opened, and closed after.
    ``prepare(side)`` runs before that side's links connect (uvloop binds a protocol's
    methods when it connects)."""
    prepare("chaospool")
    async with Pool("chaospool.workers.demo", size=args.workers, health_check=False) as pool:
        ours = await run(lambda: pool.execute("ping"))
    prepare("bare loop")
    bare = BareLoop()
    await bare.attach(socks)
    try:
        theirs = await run(lambda: bare.call("ping"))
    finally:
        bare.close()
    return ours, theirs


async def profiled(call: Call, ops: int, clients: int) -> pstats.Stats:
    await drive(call, min(2000, ops), clients, None)
    prof = cProfile.Profile()
    prof.enable()
    await drive(call, ops, clients, None)
    prof.disable()
    return pstats.Stats(prof, stream=io.StringIO())


def calls_per_request(stats: pstats.Stats, ops: int) -> float:
    """Python calls (functions and builtins) per request, the driver's own left out."""
    driver = {"<built-in method time.perf_counter>"}
    table: dict[Any, tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    calls = sum(row[1] for (path, _, name), row in table.items()
                if path != __file__ and name not in driver)
    return float(calls) / ops


def profile(loop: str, args: argparse.Namespace, socks: list[socket.socket]) -> None:
    """chaospool, then the bare loop, on ``loop`` under cProfile: chaospool's top entries and
    each one's Python calls per request."""

    async def main() -> None:
        ours, theirs = await each_side(
            args, socks, lambda call: profiled(call, args.ops, args.clients))
        out = io.StringIO()
        ours.stream = out  # type: ignore[attr-defined]
        ours.sort_stats("tottime").print_stats(args.top)
        print(out.getvalue())
        print(f"Python calls per request ({loop}): chaospool "
              f"{calls_per_request(ours, args.ops):.1f}, bare loop "
              f"{calls_per_request(theirs, args.ops):.1f}")

    run_on(loop, main)


# ---------------------------------------------------------------------------- reaction
class Reaction:
    """The reply callback's path: from the transport handing a worker's reply to the protocol
    until the next queued request is written to that worker -- what the worker waits for on
    each request (a worker holds one request at a time, so throughput follows it).

    Timed by the same two wrappers on both sides (a reply read, a request written; a write
    outside a read callback is not counted), so the ~0.1 us each wrapper adds hits both."""

    def __init__(self) -> None:
        self.start = 0
        self.samples: list[int] = []
        self._undo: list[Callable[[], None]] = []

    def time_read(self, cls: type, name: str) -> None:
        old, clock = getattr(cls, name), time.perf_counter_ns

        def timed(obj: Any, *args: Any) -> Any:
            self.start = clock()
            try:
                return old(obj, *args)
            finally:
                self.start = 0

        self._patch(cls, name, timed)

    def time_write(self, cls: type, name: str) -> None:
        old, clock = getattr(cls, name), time.perf_counter_ns

        def timed(obj: Any, *args: Any) -> Any:
            if self.start:
                self.samples.append(clock() - self.start)
                self.start = 0
            return old(obj, *args)

        self._patch(cls, name, timed)

    def time_writer(self, cls: type, name: str) -> None:
        """``cls.name()`` hands out a writer (a C-level one, not to be patched): time that."""
        old, clock = getattr(cls, name), time.perf_counter_ns

        def timed_writer(obj: Any) -> Any:
            write = old(obj)

            def timed(frame: bytes) -> Any:
                if self.start:
                    self.samples.append(clock() - self.start)
                    self.start = 0
                return write(frame)

            return None if write is None else timed

        self._patch(cls, name, timed_writer)

    def _patch(self, cls: type, name: str, fn: Callable[..., Any]) -> None:
        old = cls.__dict__[name]
        setattr(cls, name, fn)
        self._undo.append(lambda: setattr(cls, name, old))

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()

    def percentiles(self) -> str:
        s = sorted(self.samples)
        return " / ".join(f"{s[int(len(s) * q)] / 1e3:.2f}" for q in (0.1, 0.5, 0.9))


def reaction(args: argparse.Namespace, loop: str, socks: list[socket.socket]) -> None:
    """chaospool, then the bare loop, on ``loop``: the reply callback's path, p10/p50/p90."""
    from chaospool._pool.process import ProcessLink, _FrameProtocol

    ours, theirs = Reaction(), Reaction()

    def prepare(side: str) -> None:
        if side == "chaospool":
            ours.time_read(_FrameProtocol, "buffer_updated")
            # (older trees wrote through ``send_frame_nowait`` (0.3) or ``send_nowait`` (0.2):
            # timed the same way, for a comparison)
            if hasattr(ProcessLink, "frame_writer"):
                ours.time_writer(ProcessLink, "frame_writer")
            else:
                new = hasattr(ProcessLink, "send_frame_nowait")
                ours.time_write(ProcessLink, "send_frame_nowait" if new else "send_nowait")
        else:
            ours.undo()
            theirs.time_read(BareLink, "buffer_updated")
            theirs.time_write(BareLink, "send")

    async def main() -> None:
        try:
            await each_side(args, socks,
                            lambda call: drive(call, args.ops, args.clients, None), prepare)
        finally:
            ours.undo()
            theirs.undo()
        print(f"{loop}: reply read -> next request written, us p10 / p50 / p90: chaospool "
              f"{ours.percentiles()}, bare loop {theirs.percentiles()}")

    run_on(loop, main)


# ---------------------------------------------------------------------------- bytecodes
async def traced_ops(call: Call, ops: int, clients: int) -> Counter[str]:
    """Bytecodes executed per function over ``ops`` calls (``sys.settrace`` opcode events:
    a count, not a time -- the same on a busy machine; the driver's own left out: its client
    loop and the lambdas that call each contender)."""
    counts: Counter[str] = Counter()

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        code = frame.f_code
        if event == "opcode" and not (code.co_filename == __file__
                                          and code.co_name in ("client", "<lambda>")):
            counts[f"{Path(code.co_filename).name}:{code.co_name}"] += 1
        return tracer

    await drive(call, min(2000, ops), clients, None)
    sys.settrace(tracer)  # (the tasks' frames, made from now on, are traced)
    try:
        await drive(call, ops, clients, None)
    finally:
        sys.settrace(None)
    return counts


def bytecodes(args: argparse.Namespace, loop: str, socks: list[socket.socket]) -> None:
    """chaospool, then the bare loop, on ``loop``: bytecodes per request in the parent, and
    chaospool's functions by their share."""

    ops = min(args.ops, 2000)  # a count needs no more (asyncio's loop is traced too: slow)

    async def main() -> None:
        ours, theirs = await each_side(
            args, socks, lambda call: traced_ops(call, ops, args.clients))
        for name, n in ours.most_common(args.top):
            print(f"{n / ops:8.1f}  {name}")
        print(f"bytecodes per request ({loop}): chaospool {sum(ours.values()) / ops:.1f}, "
              f"bare loop {sum(theirs.values()) / ops:.1f}")

    run_on(loop, main)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument("--profile", metavar="LOOP", choices=("asyncio", "uvloop"))
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--bytecodes", metavar="LOOP", choices=("asyncio", "uvloop"),
                        help="bytecodes per request in the parent (a count: load-independent)")
    parser.add_argument("--reaction", action="store_true",
                        help="time the reply callback's path (reply read -> next write), per loop")
    parser.add_argument("--cancel", type=int, default=20000,
                        help="queued callers to cancel (and a tenth of it, for the scaling)")
    parser.add_argument("--only", default=",".join(CONTENDERS),
                        help="contenders to run (chaospool always runs)")
    parser.add_argument("--replacement", action="store_true",
                        help="quick mode: only the replacement after SIGKILL, per loop")
    parser.add_argument("--repeat", type=int, default=2,
                        help="with --replacement: back-to-back runs of --kills kills each")
    parser.add_argument("--trace", action="store_true",
                        help="with --replacement: per-step times from the kill (medians)")
    args = parser.parse_args(argv)
    only = args.only.split(",")
    args.only = ["chaospool", *(n for n in only if n != "chaospool")]
    unknown = set(args.only) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}; choose from {CONTENDERS}")
    return args


def main(argv: list[str]) -> None:
    args = parse(argv)
    loops = args.loops.split(",")
    if args.replacement:
        replacements(args, loops)
        return
    bare = fork_bare_workers(args.workers)
    try:
        if args.profile:
            profile(args.profile, args, [sock for _, sock in bare])
            return
        if args.bytecodes:
            bytecodes(args, args.bytecodes, [sock for _, sock in bare])
            return
        if args.reaction:
            for loop in loops:
                reaction(args, loop, [sock for _, sock in bare])
            return
        res = throughput(args, loops, bare)
    finally:
        for pid, sock in bare:
            sock.close()  # EOF: the worker leaves
            os.waitpid(pid, 0)
    for loop in loops:
        report_loop(loop, res, args.only)
    print()
    for loop in loops:
        repl = {spare: run_on(loop, lambda spare=spare: replacement(  # type: ignore[misc]
            args.kills, spare)) for spare in (False, True)}
        start = run_on(loop, lambda: startup(16, args.starts))
        report_times(loop, repl, start)
    small = run_on(loops[0], lambda: cancel_queued(max(1, args.cancel // 10)))
    large = run_on(loops[0], lambda: cancel_queued(args.cancel))
    print(f"cancel queued callers: {args.cancel // 10} in {small * 1e3:.0f} ms, {args.cancel} in "
          f"{large * 1e3:.0f} ms (x{large / max(small, 1e-9):.1f} for 10x the callers; "
          f"linear ~10, quadratic ~100)")


if __name__ == "__main__":
    main(sys.argv[1:])
