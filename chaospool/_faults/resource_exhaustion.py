"""resource_exhaustion: run the pool (or one worker) out of capacity, CPU, memory or fds."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import anyio
import psutil

from chaospool.errors import ChaospoolError, CircuitOpen, PoolClosed
from chaospool.fault import Duration, Fault, FaultContext, Size

from ._common import (
    EventLog,
    RevertErrors,
    act_on,
    check_choice,
    check_positive,
    close_log,
    live_targets,
    now,
    pool_capacity,
    seconds,
    step_duration,
    target_record,
    undo,
)

if TYPE_CHECKING:
    from chaospool.pool import Pool, PoolEvent, WorkerHandle

RESOURCES = ("capacity", "cpu", "memory", "fds")
DEFAULT_MEMORY = 256_000_000  # "256MB", decimal as the DSL parses it
FD_HEADROOM = 16  # fds left free: "all but 16 of the soft limit"
# A sleeper's request deadline beyond the sleep itself (it must not be the one that times out).
SLEEP_GRACE = 5.0
SLEEPER_BACKOFF = 0.01
# capacity / cpu amounts are counts (sleepers, busy threads): a size like "256MB" is a mistake.
MAX_COUNT = 1024
# How fast the memory variant allocates: the whole amount within ~50 ms.
MEMORY_FILL_TIME = 0.05
# When the leak is checked, RSS should have grown by at least this share of the amount.
MEMORY_SEEN_SHARE = 0.5


class ResourceExhaustion(Fault):
    """Exhaust the pool's capacity, or the CPU, memory or file descriptors of a worker.

    Mechanism: ``resource: capacity`` (pool-level) occupies every worker and overflow slot with
    long ``sleep`` calls through ``pool.execute`` for ``duration`` -- the probe's callers must
    queue, time out at checkout or be refused (queue full); ``inject`` returns when the hold
    ends. ``cpu``, ``memory`` and ``fds`` run control ops inside each target worker: ``cpu``
    (``threads`` busy loops, default one per core), ``leak`` at a rate that allocates
    ``amount`` (default 256MB) at once, ``fds`` (open all but 16 of the soft limit); revert runs
    ``uncpu`` / ``unleak`` / ``unfds``. Evidence: pool stats and queue/checkout events during the
    hold; per worker CPU seconds, RSS or open fds measured with psutil before, during and after.
    """

    @classmethod
    def acts_on_pool(cls, params: Any) -> bool:
        return getattr(params, "resource", None) == "capacity"

    @classmethod
    def required_commands(cls, params: Any) -> dict[str, str]:
        """Worker commands it calls, checked at validate time (docs/plugins.md)."""
        return {"resource": "sleep"} if cls.acts_on_pool(params) else {}

    name: ClassVar[str] = "resource_exhaustion"

    @dataclass
    class Params:
        resource: Literal["capacity", "cpu", "memory", "fds"] = "capacity"
        amount: Size | None = None
        duration: Duration = 5.0

        def __post_init__(self) -> None:
            check_choice("resource", self.resource, RESOURCES)
            check_positive("duration", self.duration)
            if self.amount is not None:
                check_positive("amount", self.amount)
                if self.resource in ("capacity", "cpu") and self.amount > MAX_COUNT:
                    raise ValueError(f"amount for {self.resource} counts slots or threads "
                                     f"(at most {MAX_COUNT}); got {self.amount!r}")

    async def inject(self, ctx: FaultContext) -> None:
        duration = step_duration(ctx.duration, ctx.params.duration)
        ctx.record(resource=ctx.params.resource, duration=duration)
        if ctx.params.resource == "capacity":
            await _hold_capacity(ctx, duration)
            return
        applied: list[dict[str, Any]] = ctx.state.setdefault("applied", [])
        exhaust = _EXHAUST[ctx.params.resource]
        for handle in await live_targets(ctx, self.name):
            entry = {"handle": handle, **target_record(handle)}
            applied.append(entry)  # before acting: revert must undo even a half-done act
            acted, evidence = await act_on(ctx, handle, exhaust, ctx, handle, duration)
            if acted:
                entry.update(evidence)
        ctx.record(targets=[_public(a) for a in applied], skipped=ctx.state["skipped"])

    async def revert(self, ctx: FaultContext) -> None:
        close_log(ctx.state)
        pending: list[dict[str, Any]] = ctx.state.get("applied", [])
        released: list[dict[str, Any]] = ctx.state.setdefault("released", [])
        errors = RevertErrors(self.name)
        while pending:
            entry = pending.pop(0)
            try:
                entry.update(await _release(ctx.params.resource, entry["handle"], entry))
            except Exception as exc:  # reason: every target is released; reported together
                errors.add(entry["handle"], exc)
            released.append(_public(entry))
        if released:
            ctx.record(targets=released)
        errors.raise_if_any()


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "handle" and not k.startswith("_")}


# --- capacity (pool-level) -----------------------------------------------------------------


class _Saturation:
    """What the pool looked like while every slot was held: a cheap event subscriber."""

    def __init__(self, pool: Pool, wanted: int) -> None:
        self.pool = pool
        self.wanted = wanted
        self.max_queue_depth = 0
        self.max_busy = 0
        self.saturated_at: float | None = None  # when every held slot was first busy

    def on_event(self, event: PoolEvent) -> None:
        stats = self.pool.stats()
        self.max_queue_depth = max(self.max_queue_depth, stats.queue_depth)
        self.max_busy = max(self.max_busy, stats.busy_workers)
        if self.saturated_at is None and stats.busy_workers >= self.wanted:
            self.saturated_at = now()


async def _hold_capacity(ctx: FaultContext, duration: float) -> None:
    slots = ctx.params.amount or pool_capacity(ctx.pool)
    log = EventLog(ctx.pool, ("queue_full", "checkout_timeout", "timeout", "crash"))
    watch = _Saturation(ctx.pool, slots)
    unsubscribe = ctx.pool.subscribe(watch.on_event)
    outcomes: dict[str, int] = {}
    started = now()
    deadline = started + duration
    try:
        async with anyio.create_task_group() as tg:
            for _ in range(slots):
                tg.start_soon(_sleeper, ctx.pool, deadline, outcomes)
    finally:
        unsubscribe()
        log.close()
    ctx.record(
        slots_held=slots,
        saturated_after=None if watch.saturated_at is None else seconds(
            watch.saturated_at - started),
        max_busy_workers=watch.max_busy,
        max_queue_depth=watch.max_queue_depth,
        others_refused={"queue_full": log.count("queue_full"),
                        "checkout_timeout": log.count("checkout_timeout")},
        sleeper_calls=outcomes,
        held_for=seconds(now() - started),
    )


async def _sleeper(pool: Pool, deadline: float, outcomes: dict[str, int]) -> None:
    """Keep one slot busy until ``deadline``: a lost checkout race or a crash just means
    sleeping again for the time that is left."""
    while (left := deadline - now()) > 0.01:
        try:
            await pool.execute("sleep", {"duration": left}, timeout=left + SLEEP_GRACE)
        except (PoolClosed, CircuitOpen) as exc:
            outcomes[exc.kind] = outcomes.get(exc.kind, 0) + 1
            return  # the pool will not serve again: nothing left to hold
        except ChaospoolError as exc:
            outcomes[exc.kind] = outcomes.get(exc.kind, 0) + 1
            # Refused at once (queue full) or lost a race: back off a little so that a pool
            # refusing instantly cannot turn this loop into a busy spin.
            await anyio.sleep(SLEEPER_BACKOFF)
        else:
            outcomes["ok"] = outcomes.get("ok", 0) + 1


# --- cpu / memory / fds (inside the target worker) --------------------------------------------


async def _exhaust_cpu(ctx: FaultContext, handle: WorkerHandle, duration: float) -> dict[str, Any]:
    threads = int(ctx.params.amount or os.cpu_count() or 1)
    proc = psutil.Process(handle.pid)
    times = proc.cpu_times()
    await handle.control("cpu", {"threads": threads, "duration": duration})
    return {"threads": threads, "_cpu_before": times.user + times.system, "_since": now()}


async def _exhaust_memory(
    ctx: FaultContext, handle: WorkerHandle, duration: float
) -> dict[str, Any]:
    amount = int(ctx.params.amount or DEFAULT_MEMORY)
    before = handle.rss() or 0
    await handle.control("leak", {"rate": amount / MEMORY_FILL_TIME, "limit": amount})
    grown = await _wait_rss(handle, before + int(amount * MEMORY_SEEN_SHARE), min(duration, 5.0))
    return {"amount": amount, "rss_before": before, "rss_during": grown}


async def _wait_rss(handle: WorkerHandle, at_least: int, within: float) -> int | None:
    rss = handle.rss()
    with anyio.move_on_after(within):
        while rss is not None and rss < at_least:
            await anyio.sleep(0.01)
            rss = handle.rss()
    return rss


async def _exhaust_fds(ctx: FaultContext, handle: WorkerHandle, duration: float) -> dict[str, Any]:
    proc = psutil.Process(handle.pid)
    before = proc.num_fds()
    soft, _hard = proc.rlimit(psutil.RLIMIT_NOFILE)
    amount = int(ctx.params.amount or max(0, soft - FD_HEADROOM - before))
    reply = await handle.control("fds", {"amount": amount})
    return {"amount": amount, "soft_limit": soft, "fds_before": before,
            "opened": _field(reply, "opened"), "fds_during": proc.num_fds()}


_EXHAUST = {"cpu": _exhaust_cpu, "memory": _exhaust_memory, "fds": _exhaust_fds}


async def _release(resource: str, handle: WorkerHandle, entry: dict[str, Any]) -> dict[str, Any]:
    outcome = await undo(handle, lambda: _undo(resource, handle, entry))
    return {"released": False, **outcome} if outcome.get("worker_gone") else outcome


async def _undo(resource: str, handle: WorkerHandle, entry: dict[str, Any]) -> dict[str, Any]:
    if resource == "cpu":
        times = psutil.Process(handle.pid).cpu_times()
        used = times.user + times.system - entry["_cpu_before"]
        elapsed = now() - entry["_since"]
        await handle.control("uncpu")
        return {"released": True, "cpu_seconds": seconds(used),
                "cpu_utilisation": round(used / elapsed, 3) if elapsed > 0 else None}
    if resource == "memory":
        peak = handle.rss()
        reply = await handle.control("unleak")
        return {"released": True, "rss_peak": peak, "freed": _field(reply, "leaked"),
                "rss_after": handle.rss()}
    reply = await handle.control("unfds")
    return {"released": True, "closed": _field(reply, "closed"),
            "fds_after": psutil.Process(handle.pid).num_fds()}


def _field(reply: Any, key: str) -> Any:
    return reply.get(key) if isinstance(reply, dict) else reply
