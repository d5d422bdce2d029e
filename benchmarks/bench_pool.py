"""chaospool's pool against ProcessPoolExecutor and multiprocessing.Pool.

    python benchmarks/bench_pool.py [--rounds 5] [--ops 20000] [--clients 50] [--workers 2]

Noop throughput and latency with ``--workers`` workers and ``--clients`` concurrent asyncio
clients (closed loop), in interleaved rounds so that machine noise hits every contender alike;
then the replacement time after a SIGKILL (kill -> slot serving again) and the time to start
16 workers. Latency percentiles come from an HDR histogram (microsecond resolution).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import multiprocessing
import os
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from hdrh.histogram import HdrHistogram

from chaospool.pool import Pool

Call = Callable[[], Awaitable[Any]]


def noop(_: Any = None) -> str:
    return "pong"


async def drive(call: Call, ops: int, clients: int, hist: HdrHistogram) -> float:
    """Run ``ops`` calls from ``clients`` concurrent clients; return ops/s."""
    left = ops

    async def client() -> None:
        nonlocal left
        clock = time.perf_counter
        while left > 0:
            left -= 1
            start = clock()
            await call()
            hist.record_value(max(1, int((clock() - start) * 1e6)))

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return ops / (time.perf_counter() - start)


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


async def throughput(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    names = ("chaospool", "ProcessPoolExecutor", "multiprocessing.Pool")
    rates: dict[str, list[float]] = {n: [] for n in names}
    hists = {n: HdrHistogram(1, 60_000_000, 3) for n in names}
    async with Pool("chaospool.workers.demo", size=args.workers, health_check=False) as pool:
        with cf.ProcessPoolExecutor(args.workers) as ex, \
                multiprocessing.get_context("fork").Pool(args.workers) as mpp:
            calls: dict[str, Call] = {
                "chaospool": lambda: pool.execute("ping"),
                "ProcessPoolExecutor": ppe_call(ex),
                "multiprocessing.Pool": mp_call(mpp),
            }
            for name in names:  # warm up: workers started, code paths hot
                warm = HdrHistogram(1, 60_000_000, 3)
                await drive(calls[name], min(2000, args.ops), args.clients, warm)
            for _ in range(args.rounds):
                for name in names:
                    rate = await drive(calls[name], args.ops, args.clients, hists[name])
                    rates[name].append(rate)
    return {
        n: {"ops": statistics.median(rates[n]), "p50": hists[n].get_value_at_percentile(50),
            "p99": hists[n].get_value_at_percentile(99)}
        for n in names
    }


async def replacement(kills: int) -> list[float]:
    """Seconds from SIGKILL of slot 0's worker until slot 0 serves a new process."""
    times = []
    restart = {"max_restarts": kills + 1, "within": 60.0}  # every kill is a failure: allow them
    async with Pool("chaospool.workers.demo", size=2, health_check=False,
                    restart=restart) as pool:
        for _ in range(kills):
            handle = pool.workers[0]
            pid = handle.pid
            start = time.perf_counter()
            os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]
            await pool.wait_serving(0, not_pid=pid)
            times.append(time.perf_counter() - start)
    return times


async def startup(size: int, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        async with Pool("chaospool.workers.demo", size=size, health_check=False):
            times.append(time.perf_counter() - start)
    return times


def report(rows: dict[str, dict[str, Any]], repl: list[float], start: list[float]) -> None:
    ours = rows["chaospool"]["ops"]
    print(f"{'pool':<22}{'ops/s':>10}{'p50 us':>9}{'p99 us':>9}{'p99/p50':>9}{'chaospool x':>13}")
    for name, r in rows.items():
        print(f"{name:<22}{r['ops']:>10.0f}{r['p50']:>9}{r['p99']:>9}"
              f"{r['p99'] / max(r['p50'], 1):>9.2f}{ours / r['ops']:>13.2f}")
    print(f"replacement after SIGKILL: median {statistics.median(repl) * 1e3:.2f} ms "
          f"(min {min(repl) * 1e3:.2f}, max {max(repl) * 1e3:.2f}, n={len(repl)})")
    print(f"start 16 workers: median {statistics.median(start) * 1e3:.0f} ms "
          f"(n={len(start)})")


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args(argv)
    rows = await throughput(args)
    repl = await replacement(args.kills)
    start = await startup(16, args.starts)
    report(rows, repl, start)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
