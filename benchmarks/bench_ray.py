"""Benchmark: the pool on Ray actors, side by side with raw Ray actor calls (docs/ray.md).

One run on one local 3-node cluster (every node on 127.0.0.1):

1. noop throughput: ``pool.execute("ping")`` from ``--clients`` asyncio tasks through a pool of
   ``--size`` Ray workers, vs raw noop calls on as many plain actors (same placement, same
   options) from an asyncio driver -- twice: the same tasks with calls pipelined (up to
   ``--clients`` in flight, many per actor), and one call in flight per actor, which is what a
   pool worker serves by design (a checked-out worker runs one request); and once more one per
   actor with Ray's task events off, as the pool's own calls run. Every mode runs in
   ``--rounds`` interleaved rounds of ``--seconds`` (a load change on a shared machine hits
   each alike); the median round counts. Goal: pool >= 0.8x raw. Also the CPU each call
   costs, summed over the driver and every cluster process: steadier than throughput when
   other work shares the machine.
2. actor replacement after SIGKILL: kill a worker (through its node's agent), time until its
   slot serves again with a new actor (median of ``--kills``).
3. node crash: a worker node's processes all killed; the time until Ray declares it dead, until
   every worker it held serves again on the surviving node, and until a replacement node joins.

    python benchmarks/bench_ray.py [--seconds 2] [--rounds 3] [--clients 50] [--size 4]
                                   [--kills 5]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import time
from typing import Any

import psutil

from chaospool._ray import cluster as ray_cluster
from chaospool._ray.settings import RaySettings

RAY = {"address": "local", "nodes": 3}


class Noop:
    """The raw baseline: an actor whose method does nothing."""

    def ping(self) -> str:
        return "pong"


def _quiet_noop(ray: Any) -> type:
    class QuietNoop:
        """The same, its calls without Ray's task events (as the pool's calls run)."""

        @ray.method(enable_task_events=False)
        def ping(self) -> str:
            return "pong"

    return QuietNoop


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def _drive(call: Any, clients: int, seconds: float) -> tuple[int, float, list[float]]:
    latencies: list[float] = []
    end = time.perf_counter() + seconds

    async def client(i: int) -> None:
        while time.perf_counter() < end:
            t = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - t)

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return len(latencies), time.perf_counter() - started, latencies


def _raw_actors(session: Any, size: int, events: bool) -> list[Any]:
    ray = session.ray
    nodes = session.candidates()
    noop = ray.remote(Noop if events else _quiet_noop(ray))
    return [noop.options(
        num_cpus=0, max_restarts=0, max_task_retries=0, max_concurrency=16,
        scheduling_strategy=ray_cluster._affinity(ray, nodes[i % len(nodes)].node_id),
    ).remote() for i in range(size)]


def _raw_call(actors: list[Any]) -> Any:
    async def call(i: int) -> None:
        await asyncio.wait_for(actors[i % len(actors)].ping.remote(), 30)

    return call


async def _throughput(session: Any, ns: argparse.Namespace) -> dict[str, float]:
    """Every mode in interleaved rounds on the same cluster and event loop: a load change on
    a shared machine hits each mode alike. Returns each mode's median rate."""
    import chaospool

    raw = _raw_actors(session, ns.size, events=True)
    quiet = _raw_actors(session, ns.size, events=False)
    await asyncio.wait_for(asyncio.gather(*(a.ping.remote() for a in raw + quiet)), 60)
    async with chaospool.Pool(worker="chaospool.workers.demo", size=ns.size, backend="ray",
                              ray=RAY, start_timeout=60, request_timeout=30) as pool:
        modes = {
            f"raw Ray calls, {ns.clients} in flight": (_raw_call(raw), ns.clients),
            "raw Ray calls, 1 per actor": (_raw_call(raw), ns.size),
            "raw, 1 per actor, no task events": (_raw_call(quiet), ns.size),
            "chaospool pool on Ray (ping)": (lambda _i: pool.execute("ping"), ns.clients),
        }
        await _drive(modes["chaospool pool on Ray (ping)"][0], ns.clients, 1.0)  # warm-up
        runs: dict[str, list[tuple[int, float, list[float]]]] = {m: [] for m in modes}
        cpu = {m: [0.0, 0.0] for m in modes}  # cluster + driver CPU seconds, driver's alone
        for _ in range(ns.rounds):
            for mode, (call, clients) in modes.items():
                before = _cpu()
                runs[mode].append(await _drive(call, clients, ns.seconds))
                cpu[mode] = [a + b - c for a, b, c in zip(cpu[mode], _cpu(), before, strict=True)]
        rates = {mode: _summary(mode, results) for mode, results in runs.items()}
        _cpu_rows(runs, cpu)
        await _replacements(pool, ns.kills)
    for actor in raw + quiet:
        session.ray.kill(actor)
    return rates


def _summary(label: str, results: list[tuple[int, float, list[float]]]) -> float:
    rates = [calls / elapsed for calls, elapsed, _ in results]
    lat = [x for _, _, latencies in results for x in latencies]
    rate = statistics.median(rates)
    print(f"{label:<34} {rate:>7.0f} calls/s (rounds: {' '.join(f'{r:.0f}' for r in rates)})"
          f"  p50 {_pct(lat, .5) * 1e3:6.2f} ms  p99 {_pct(lat, .99) * 1e3:6.2f} ms")
    return rate


def _cpu() -> list[float]:
    """CPU seconds (user + system) of this driver and every cluster process (a local
    cluster's processes are the driver's descendants), and of the driver alone."""
    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:  # a process that ended meanwhile: its time is lost to both
            continue
        total += times.user + times.system
    own = me.cpu_times()
    return [total, own.user + own.system]


def _cpu_rows(runs: dict[str, list[tuple[int, float, list[float]]]],
              cpu: dict[str, list[float]]) -> None:
    """CPU per call: on a shared 2-core machine throughput follows the load of others, while
    the CPU a call costs (driver + actors + raylets + GCS) does not -- the steadier figure."""
    for mode, results in runs.items():
        calls = sum(n for n, _, _ in results)
        total, driver = (x / max(calls, 1) * 1e6 for x in cpu[mode])
        print(f"{mode:<34} CPU {total:6.0f} us/call (driver {driver:4.0f} us)")


async def _replacements(pool: Any, kills: int) -> None:
    times = []
    for _ in range(kills):
        victim = pool.workers[0]
        t = time.perf_counter()
        victim.signal(signal.SIGKILL)
        await pool.wait_serving(0, not_pid=victim.pid, timeout=60)
        times.append(time.perf_counter() - t)
    print(f"actor replacement after SIGKILL: median {statistics.median(times) * 1e3:.0f} ms"
          f" (min {min(times) * 1e3:.0f}, max {max(times) * 1e3:.0f}, n={kills})")


def _node_crash(size: int) -> None:
    import chaospool

    report = chaospool.run({
        "version": 1, "seed": 1, "duration": "12s",
        "pool": {"worker": "chaospool.workers.demo", "size": size, "backend": "ray", "ray": RAY},
        "load": {"clients": 4, "retries": 3},
        "method": [{"fault": "node_crash", "at": "2s", "target": {"node": 1}}],
    })
    effect = report.faults[0].effect
    print(f"node crash ({len(effect.get('workers', []))} workers on it): declared dead after "
          f"{effect.get('declared_dead_after')} s, every worker serving again after "
          f"{effect.get('every_worker_serving_after')} s, replacement node joined in "
          f"{effect.get('replacement_join_time')} s; success rate "
          f"{report.metrics.success_rate:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per mode and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--size", type=int, default=4)
    parser.add_argument("--kills", type=int, default=5)
    ns = parser.parse_args()
    started = time.perf_counter()
    session = ray_cluster.on_ray_thread(ray_cluster.acquire, RaySettings(**RAY)).result(180)
    print(f"local cluster of {len(session.alive())} nodes up in "
          f"{time.perf_counter() - started:.1f} s")
    try:
        rates = asyncio.run(_throughput(session, ns))
        pooled = rates["chaospool pool on Ray (ping)"]
        for mode in list(rates)[:3]:
            print(f"pool / {mode}: {pooled / rates[mode]:.2f}x (goal >= 0.8x)")
        _node_crash(ns.size)
    finally:
        ray_cluster.on_ray_thread(ray_cluster.release, session).result(60)


if __name__ == "__main__":
    main()
