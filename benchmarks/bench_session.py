"""Benchmark: what a session-state change costs, against the size of the state.

    python benchmarks/bench_session.py [--sizes 10,10000] [--calls 3000] [--rounds 3]
                                       [--backend process|memory]

For each size N, one session is filled with N top-level entries; then ``--calls`` calls each
change one entry (``set_entry``), one at a time on a one-worker pool, so every call is a full
round trip through the worker and back. The worker keeps the state decoded and the reply
carries only the changed key (docs/design.md, Pool, "Sessions"), so the cost per change must
not grow with N: target 10,000 entries within 1.5x of 10 entries. Reads (``read_entry``) are
shown beside for reference, and the one cost that does grow with N: moving the session to
another worker, which must carry the whole state once (``move``, two workers alternating).

This file is also the benchmark's worker module (the pool imports it by name).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from chaospool.worker import Context, command

WORKER = Path(__file__).stem


@command
def fill(args: Any, ctx: Context) -> int:
    for i in range(args["entries"]):
        ctx.session[f"k{i}"] = {"value": i, "tags": ["a", "b"]}
    return len(ctx.session)


@command
def set_entry(args: Any, ctx: Context) -> None:
    ctx.session[args["key"]] = {"value": args["value"], "tags": ["a", "b"]}


@command
def read_entry(args: Any, ctx: Context) -> Any:
    return ctx.session.get(args["key"])


async def _timed(pool: Any, calls: int, command_: str, session: str, entries: int,
                 move: bool = False) -> float:
    """Mean microseconds per call of ``command_`` on ``session``."""
    start = time.perf_counter()
    for i in range(calls):
        if move:  # the other worker serves it next: the whole state travels
            pool._affinity[session] = pool._slots[i % 2]
        await pool.execute(command_, {"key": f"k{i % entries}", "value": i}, session=session)
    return (time.perf_counter() - start) / calls * 1e6


async def measure(size: int, args: argparse.Namespace) -> dict[str, float]:
    from chaospool import Pool

    async with Pool(WORKER, size=2, backend=args.backend, health_check=False) as pool:
        session = f"s{size}"
        await pool.execute("fill", {"entries": size}, session=session)
        await _timed(pool, 200, "set_entry", session, size)  # warm up
        moves = max(20, args.calls // 50)
        return {
            "change": await _timed(pool, args.calls, "set_entry", session, size),
            "read": await _timed(pool, args.calls, "read_entry", session, size),
            "move": await _timed(pool, moves, "set_entry", session, size, move=True),
        }


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,10000")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", default="process", choices=("process", "memory"))
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, list[dict[str, float]]] = {size: [] for size in sizes}
    for _ in range(args.rounds):  # interleaved, so that machine noise hits every size alike
        for size in sizes:
            results[size].append(await measure(size, args))
    print(f"{'entries':>8}{'change us':>11}{'read us':>9}{'move us':>9}  (median of "
          f"{args.rounds} rounds, {args.calls} calls, backend {args.backend})")
    medians = {size: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
               for size, rows in results.items()}
    for size, m in medians.items():
        print(f"{size:>8}{m['change']:>11.0f}{m['read']:>9.0f}{m['move']:>9.0f}")
    small, large = medians[min(sizes)]["change"], medians[max(sizes)]["change"]
    print(f"change cost, {max(sizes)} entries / {min(sizes)} entries: {large / small:.2f}x "
          "(target <= 1.5x)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))  # the workers import this file by name
    anyio.run(main, sys.argv[1:])
