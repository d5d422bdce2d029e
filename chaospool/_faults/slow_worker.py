"""slow_worker: the target worker answers late."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from chaospool.fault import Duration, Fault, FaultContext

from ._common import (
    EventLog,
    RevertErrors,
    act_on,
    check_positive,
    close_log,
    live_targets,
    seconds,
    step_duration,
    target_record,
    undo,
)

if TYPE_CHECKING:
    from chaospool.pool import WorkerHandle


class SlowWorker(Fault):
    """Add `latency` (± `jitter`) to every reply of the target worker for `duration`.

    Mechanism: the ``slow {latency, jitter}`` control op makes the worker runtime hold each
    reply for ``latency`` plus a uniform draw in ``[-jitter, +jitter]`` (never below zero);
    ``unslow`` at revert restores it and returns the worker's own count of delayed replies.
    Evidence: that count, and the service time the pool saw (checkout to checkin events) on the
    slowed workers against the other workers over the same window -- the added latency, measured
    from outside the worker.
    """

    name: ClassVar[str] = "slow_worker"

    @dataclass
    class Params:
        latency: Duration = 0.2
        jitter: Duration = 0.0
        duration: Duration = 5.0

        def __post_init__(self) -> None:
            check_positive("latency", self.latency, allow_zero=True)
            check_positive("jitter", self.jitter, allow_zero=True)
            check_positive("duration", self.duration)

    async def inject(self, ctx: FaultContext) -> None:
        ctx.state["log"] = EventLog(ctx.pool, ("checkout", "checkin", "crash"))
        slowed: list[WorkerHandle] = ctx.state.setdefault("slowed", [])
        delay = {"latency": ctx.params.latency, "jitter": ctx.params.jitter}
        for handle in await live_targets(ctx, self.name):
            slowed.append(handle)  # before acting: revert must undo even a half-done act
            await act_on(ctx, handle, handle.control, "slow", delay)
        ctx.record(
            skipped=ctx.state["skipped"],
            latency=ctx.params.latency,
            jitter=ctx.params.jitter,
            duration=step_duration(ctx.duration, ctx.params.duration),
            slowed=[target_record(h) for h in slowed],
        )

    async def revert(self, ctx: FaultContext) -> None:
        pending: list[WorkerHandle] = ctx.state.get("slowed", [])
        restored: list[dict[str, Any]] = ctx.state.setdefault("restored", [])
        errors = RevertErrors(self.name)
        try:
            while pending:
                handle = pending.pop(0)
                record = target_record(handle)
                try:
                    record.update(await _unslow(handle))
                except Exception as exc:  # reason: every target is restored; reported together
                    errors.add(handle, exc)
                restored.append(record)
        finally:
            log = close_log(ctx.state)
            ctx.record(restored=restored, **_service_times(log, restored))
        errors.raise_if_any()


async def _unslow(handle: WorkerHandle) -> dict[str, Any]:
    async def unslow() -> dict[str, Any]:
        reply = await handle.control("unslow")
        # The worker's own count of replies it held back, when its runtime keeps one.
        delayed = reply.get("delayed") if isinstance(reply, dict) else None
        return {"restored": True, "delayed_replies": delayed}

    outcome = await undo(handle, unslow)
    return {"restored": False, **outcome} if outcome.get("worker_gone") else outcome


def _service_times(log: EventLog | None, restored: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean checkout-to-checkin time on the slowed workers vs the others in the same window."""
    if log is None:
        return {}
    slowed_pids = {r["pid"] for r in restored}
    slowed: list[float] = []
    others: list[float] = []
    out: dict[int | None, float] = {}
    for event in log.events:
        if event.kind == "checkout":
            out[event.pid] = event.time
        elif event.kind == "checkin" and event.pid in out:
            spent = event.time - out.pop(event.pid)
            (slowed if event.pid in slowed_pids else others).append(spent)
    mean_slowed = statistics.fmean(slowed) if slowed else None
    mean_others = statistics.fmean(others) if others else None
    added = None
    if mean_slowed is not None and mean_others is not None:
        added = seconds(mean_slowed - mean_others)
    return {
        "requests_on_slowed": len(slowed),
        "service_time_slowed": None if mean_slowed is None else seconds(mean_slowed),
        "service_time_others": None if mean_others is None else seconds(mean_others),
        "added_latency": added,
    }
