"""resource_exhaustion: run the pool (or one worker) out of capacity, CPU, memory or fds."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import anyio
import psutil

from chaospool.errors import ChaospoolError, CircuitOpen, PoolClosed
from chaospool.fault import Acted, Duration, Fault, FaultContext, Size

from ._common import (
    EventLog,
    check_choice,
    check_positive,
    now,
    pool_capacity,
    seconds,
    step_duration,
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
# Proof that cpu was exhausted: the busy threads used at least this share of one core.
CPU_SEEN_SHARE = 0.05
# Proof that capacity was held: completed sleeps covered this share of slots x hold time.
CAPACITY_SEEN_SHARE = 0.5


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
    Proof (``took_effect``): ``capacity`` -- the completed ``sleep`` calls held at least half of
    the slots for the hold's length (a worker module without ``sleep`` fails the step; the
    fault declares ``required_commands: sleep``); ``cpu`` -- the busy threads used at least 5%
    of a core; ``memory`` -- RSS grew by at least half of ``amount``; ``fds`` -- the process
    has more open fds than before.
    """

    @classmethod
    def acts_on_pool(cls, params: Any) -> bool:
        return getattr(params, "resource", None) == "capacity"

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

    @classmethod
    def required_commands(cls, params: Any) -> tuple[str, ...]:
        # capacity holds each slot with a call of the worker module's own ``sleep`` command
        return ("sleep",) if getattr(params, "resource", None) == "capacity" else ()

    async def inject(self, ctx: FaultContext) -> None:
        duration = step_duration(ctx.duration, ctx.params.duration)
        ctx.record(resource=ctx.params.resource, duration=duration)
        if ctx.params.resource == "capacity":
            await _hold_capacity(ctx, duration)
            return
        exhaust = _EXHAUST[ctx.params.resource]
        done = await ctx.actions.each(ctx, self.name, lambda h: exhaust(ctx, h, duration))
        for entry in done:
            entry.record.update(_public(entry.memo or {}))
        ctx.record(targets=[dict(e.record) for e in done], skipped=ctx.actions.skipped)

    async def revert(self, ctx: FaultContext) -> None:
        if ctx.params.resource == "capacity":
            return  # the hold ended inside inject
        resource = ctx.params.resource

        async def release(entry: Acted) -> dict[str, Any]:
            return await _undo(resource, entry.handle, entry.memo or {}, ctx.actions.token)

        try:
            await ctx.actions.undo(self.name, release, gone={"released": False})
        finally:
            if ctx.actions.undone:
                ctx.record(targets=ctx.actions.undone)
            ctx.took_effect(*_proof(resource, ctx.actions.done))


def _public(evidence: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in evidence.items() if not k.startswith("_")}


def _proof(resource: str, done: list[Acted]) -> tuple[bool, str]:
    """From outside the worker: cpu time really consumed, RSS really grown, fds really open."""
    acted = [e for e in done if e.acted and not e.record.get("worker_gone")]
    if not acted:
        return False, f"no target worker could be exhausted of {resource} (every one was gone)"
    missed = [e.record for e in acted if not _PROVED[resource](e.record)]
    if missed:
        return False, f"{resource} not exhausted on " + ", ".join(
            f"slot {r['index']} (pid {r['pid']}: {_show(resource, r)})" for r in missed)
    return True, f"{resource} exhausted on {len(acted)} worker(s)"


def _cpu_proved(record: dict[str, Any]) -> bool:
    return float(record.get("cpu_utilisation") or 0.0) >= CPU_SEEN_SHARE


def _memory_proved(record: dict[str, Any]) -> bool:
    before, during = record.get("rss_before") or 0, record.get("rss_during") or 0
    return bool(during - before >= int(record.get("amount") or 0) * MEMORY_SEEN_SHARE)


def _fds_proved(record: dict[str, Any]) -> bool:
    if not record.get("amount"):
        return True  # no fd left to open under the soft limit: already exhausted
    return bool((record.get("fds_during") or 0) > (record.get("fds_before") or 0))


_PROVED = {"cpu": _cpu_proved, "memory": _memory_proved, "fds": _fds_proved}
_SHOWN = {"cpu": ("cpu_seconds", "cpu_utilisation"), "memory": ("rss_before", "rss_during"),
          "fds": ("fds_before", "fds_during")}


def _show(resource: str, record: dict[str, Any]) -> str:
    return ", ".join(f"{key} {record.get(key)}" for key in _SHOWN[resource])


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
    outcomes: dict[str, Any] = {}  # kind -> calls; "_held": seconds inside completed sleeps
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
        sleeper_calls={k: v for k, v in outcomes.items() if k != "_held"},
        held_for=seconds(now() - started),
        slot_seconds_held=seconds(outcomes.get("_held", 0.0)),
    )
    ctx.took_effect(*_capacity_proof(ctx.effect, slots, outcomes))


def _capacity_proof(
    effect: dict[str, Any], slots: int, outcomes: dict[str, Any]
) -> tuple[bool, str]:
    """Slots really occupied: the sleep calls that completed held, together, at least half of
    ``slots`` times the hold's window.

    The window ends at the hold's deadline (or earlier, if the pool stopped serving): a sleep
    is counted only up to the deadline, so the time its reply takes to come back after it
    (seconds on a loaded Ray cluster) must not count against it either."""
    window = min(float(effect["held_for"]), float(effect["duration"]))
    wanted = slots * window * CAPACITY_SEEN_SHARE
    if float(effect["slot_seconds_held"]) >= wanted:
        return True, f"{slots} slots held by sleep calls"
    failures = {k: v for k, v in outcomes.items() if k not in ("ok", "_held")}
    return False, (f"sleep calls held {effect['slot_seconds_held']} slot-seconds of "
                   f"{seconds(wanted / CAPACITY_SEEN_SHARE)} (max busy workers "
                   f"{effect['max_busy_workers']}); failed calls: {failures or 'none'}")


async def _sleeper(pool: Pool, deadline: float, outcomes: dict[str, Any]) -> None:
    """Keep one slot busy until ``deadline``: a lost checkout race or a crash just means
    sleeping again for the time that is left."""
    while (left := deadline - now()) > 0.01:
        began = now()
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
            outcomes["_held"] = outcomes.get("_held", 0.0) + min(left, now() - began)


# --- cpu / memory / fds (inside the target worker) --------------------------------------------


async def _exhaust_cpu(ctx: FaultContext, handle: WorkerHandle, duration: float) -> dict[str, Any]:
    threads = int(ctx.params.amount or os.cpu_count() or 1)
    proc = psutil.Process(handle.pid)
    times = proc.cpu_times()
    await handle.control("cpu", {"threads": threads, "duration": duration,
                                 "token": ctx.actions.token})
    return {"threads": threads, "_cpu_before": times.user + times.system, "_since": now()}


async def _exhaust_memory(
    ctx: FaultContext, handle: WorkerHandle, duration: float
) -> dict[str, Any]:
    amount = int(ctx.params.amount or DEFAULT_MEMORY)
    before = handle.rss() or 0
    await handle.control("leak", {"rate": amount / MEMORY_FILL_TIME, "limit": amount,
                                  "token": ctx.actions.token})
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
    reply = await handle.control("fds", {"amount": amount, "token": ctx.actions.token})
    return {"amount": amount, "soft_limit": soft, "fds_before": before,
            "opened": _field(reply, "opened"), "fds_during": proc.num_fds()}


_EXHAUST = {"cpu": _exhaust_cpu, "memory": _exhaust_memory, "fds": _exhaust_fds}


async def _undo(
    resource: str, handle: WorkerHandle, entry: dict[str, Any], token: str
) -> dict[str, Any]:
    if resource == "cpu":
        times = psutil.Process(handle.pid).cpu_times()
        used = times.user + times.system - entry["_cpu_before"]
        elapsed = now() - entry["_since"]
        await handle.control("uncpu", {"token": token})
        return {"released": True, "cpu_seconds": seconds(used),
                "cpu_utilisation": round(used / elapsed, 3) if elapsed > 0 else None}
    if resource == "memory":
        peak = handle.rss()
        reply = await handle.control("unleak", {"token": token})
        return {"released": True, "rss_peak": peak, "freed": _field(reply, "leaked"),
                "rss_after": handle.rss()}
    reply = await handle.control("unfds", {"token": token})
    return {"released": True, "closed": _field(reply, "closed"),
            "fds_after": psutil.Process(handle.pid).num_fds()}


def _field(reply: Any, key: str) -> Any:
    return reply.get(key) if isinstance(reply, dict) else reply
