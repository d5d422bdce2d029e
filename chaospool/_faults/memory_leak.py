"""memory_leak: the target worker's memory grows steadily."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from chaospool.fault import Duration, Fault, FaultContext, Rate, Size

from ._common import EventLog, check_positive, close_log, step_duration, undo

if TYPE_CHECKING:
    from chaospool.pool import WorkerHandle

MB = 1_000_000  # decimal, as the DSL parses "500MB"


class MemoryLeak(Fault):
    """Grow the target worker's RSS at `rate` up to `limit` for `duration` (psutil-measured).

    Mechanism: the ``leak {rate, limit, token}`` control op starts a thread inside the worker
    that allocates and touches memory at ``rate`` bytes/s and keeps it referenced until
    ``limit``; ``unleak {token}`` at revert stops this step's thread (an overlapping step's leak
    stays), frees its memory and returns the bytes leaked. The fault measures RSS with psutil
    at injection and just before and after the release; if the pool's ``max_memory`` recycles
    the worker first, the ``recycle`` event (reason, rss) is recorded and the leak counts as
    ended with that process. Proof (``took_effect``): RSS at revert above RSS at injection
    on every target (or the worker was recycled or died, its memory with it).
    """

    name: ClassVar[str] = "memory_leak"

    @dataclass
    class Params:
        rate: Rate = 50.0 * MB
        limit: Size = 500 * MB
        duration: Duration = 10.0

        def __post_init__(self) -> None:
            check_positive("rate", self.rate)
            check_positive("limit", self.limit)
            check_positive("duration", self.duration)

    async def inject(self, ctx: FaultContext) -> None:
        ctx.state["log"] = EventLog(ctx.pool, ("recycle", "crash"))
        leak = {"rate": ctx.params.rate, "limit": ctx.params.limit, "token": ctx.actions.token}

        async def start(handle: WorkerHandle) -> None:
            ctx.actions.done[-1].record["rss_start"] = handle.rss()
            await handle.control("leak", leak)

        done = await ctx.actions.each(ctx, self.name, start)
        ctx.record(
            skipped=ctx.actions.skipped,
            rate=ctx.params.rate,
            limit=ctx.params.limit,
            duration=step_duration(ctx.duration, ctx.params.duration),
            leaking=[dict(e.record) for e in done],
        )

    async def revert(self, ctx: FaultContext) -> None:
        log = ctx.state.get("log")
        token = {"token": ctx.actions.token}
        try:
            await ctx.actions.undo(self.name, lambda entry: _stop_leak(entry.handle, log, token))
        finally:
            close_log(ctx.state)
            ctx.record(leaks=ctx.actions.undone)
            ctx.took_effect(*_proof(ctx))


def _proof(ctx: FaultContext) -> tuple[bool, str]:
    """RSS really grown (measured with psutil from outside), or the pool recycled the worker."""
    acted = [e.record for e in ctx.actions.done if e.acted]
    if not acted:
        return False, "no target worker could leak (every target was gone)"
    flat = [r for r in acted if not _grew(r)]
    if flat:
        return False, "RSS did not grow on " + ", ".join(
            f"slot {r['index']} (pid {r['pid']}: {r.get('rss_start')} -> {r.get('rss_peak')})"
            for r in flat)
    return True, f"RSS grew on {len(acted)} worker(s)"


def _grew(record: dict[str, Any]) -> bool:
    if record.get("recycled") or (record.get("worker_gone") and record.get("rss_peak") is None):
        return True  # recycled for its memory, or gone: the leak ended with the process
    start, peak = record.get("rss_start"), record.get("rss_peak")
    return isinstance(start, int) and isinstance(peak, int) and peak > start


async def _stop_leak(
    handle: WorkerHandle, log: EventLog | None, token: dict[str, Any]
) -> dict[str, Any]:
    async def unleak() -> dict[str, Any]:
        peak = handle.rss()  # the leak keeps what it allocated until unleak: now is its peak
        reply = await handle.control("unleak", token)
        leaked = reply.get("leaked") if isinstance(reply, dict) else None
        return {"rss_peak": peak, "recycled": None, "leaked": leaked, "rss_after": handle.rss()}

    recycled = _recycle(log, handle.pid)
    outcome = {"worker_gone": True} if recycled is not None else await undo(handle, unleak)
    if outcome.get("worker_gone"):
        # The pool recycled (or lost) the leaking process: its memory went with it.
        recycled = recycled or _recycle(log, handle.pid)
        return {"rss_peak": recycled.get("rss") if recycled else None,
                "recycled": recycled, "leaked": None, "rss_after": None}
    return outcome


def _recycle(log: EventLog | None, pid: int | None) -> dict[str, Any] | None:
    events = log.of("recycle", pid=pid) if log is not None else []
    if not events:
        return None
    data = dict(events[0].data)
    return {"reason": data.get("reason"), "rss": data.get("rss")}
