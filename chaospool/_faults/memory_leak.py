"""memory_leak: the target worker's memory grows steadily."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from chaospool.fault import Duration, Fault, FaultContext, Rate, Size

from ._common import (
    EventLog,
    RevertErrors,
    act_on,
    check_positive,
    close_log,
    live_targets,
    step_duration,
    target_record,
    undo,
)

if TYPE_CHECKING:
    from chaospool.pool import WorkerHandle

MB = 1_000_000  # decimal, as the DSL parses "500MB"


class MemoryLeak(Fault):
    """Grow the target worker's RSS at `rate` up to `limit` for `duration` (psutil-measured).

    Mechanism: the ``leak {rate, limit}`` control op starts a thread inside the worker that
    allocates and touches memory at ``rate`` bytes/s and keeps it referenced until ``limit``;
    ``unleak`` at revert stops the thread, frees the memory and returns the bytes leaked. The
    fault measures RSS with psutil at injection and just before and after the release; if the
    pool's ``max_memory`` recycles the worker first, the ``recycle`` event (reason, rss) is
    recorded and the leak counts as ended with that process.
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
        leaking: list[dict[str, Any]] = ctx.state.setdefault("leaking", [])
        leak = {"rate": ctx.params.rate, "limit": ctx.params.limit}
        for handle in await live_targets(ctx, self.name):
            # before acting: revert must undo even a half-done act
            leaking.append({"handle": handle, **target_record(handle), "rss_start": handle.rss()})
            await act_on(ctx, handle, handle.control, "leak", leak)
        ctx.record(
            skipped=ctx.state["skipped"],
            rate=ctx.params.rate,
            limit=ctx.params.limit,
            duration=step_duration(ctx.duration, ctx.params.duration),
            leaking=[_public(entry) for entry in leaking],
        )

    async def revert(self, ctx: FaultContext) -> None:
        pending: list[dict[str, Any]] = ctx.state.get("leaking", [])
        ended: list[dict[str, Any]] = ctx.state.setdefault("ended", [])
        log = ctx.state.get("log")
        errors = RevertErrors(self.name)
        try:
            while pending:
                entry = pending.pop(0)
                try:
                    entry.update(await _stop_leak(entry["handle"], log))
                except Exception as exc:  # reason: every leak is stopped; reported together
                    errors.add(entry["handle"], exc)
                ended.append(_public(entry))
        finally:
            close_log(ctx.state)
            ctx.record(leaks=ended)
        errors.raise_if_any()


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "handle"}


async def _stop_leak(handle: WorkerHandle, log: EventLog | None) -> dict[str, Any]:
    async def unleak() -> dict[str, Any]:
        peak = handle.rss()  # the leak keeps what it allocated until unleak: now is its peak
        reply = await handle.control("unleak")
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
