"""slow_worker: the target worker answers late."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from chaospool.fault import Acted, Duration, Fault, FaultContext

from ._common import check_positive, seconds, step_duration

if TYPE_CHECKING:
    from chaospool.pool import PoolEvent


class SlowWorker(Fault):
    """Add `latency` (± `jitter`) to every reply of the target worker for `duration`.

    Mechanism: the ``slow {latency, jitter, token}`` control op makes the worker runtime hold
    each reply for ``latency`` plus a uniform draw in ``[-jitter, +jitter]`` (never below zero);
    ``unslow {token}`` at revert ends this step's delay (an overlapping step's stays) and returns
    the worker's own count of replies delayed meanwhile. Evidence: that count, and the service
    time the pool saw (checkout to checkin events) on the slowed workers against the other
    workers over the same window -- the added latency, measured from outside the worker --
    summed as the events arrive (memory does not grow with the step's length). Proof
    (``took_effect``): the workers delayed at least one reply; requests served by a slowed
    worker with none delayed do not take effect (with no request at all, the worker's
    acknowledgement of the delay is what is recorded).
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
        times = ServiceTimes()
        ctx.state["service_times"] = times
        times.unsubscribe = ctx.pool.subscribe(times.on_event, ("checkout", "checkin", "crash"))
        delay = {"latency": ctx.params.latency, "jitter": ctx.params.jitter,
                 "token": ctx.actions.token}

        async def slow(handle: Any) -> None:
            times.slowed.add(handle.pid)
            await handle.control("slow", delay)

        done = await ctx.actions.each(ctx, self.name, slow)
        ctx.record(
            skipped=ctx.actions.skipped,
            latency=ctx.params.latency,
            jitter=ctx.params.jitter,
            duration=step_duration(ctx.duration, ctx.params.duration),
            slowed=[dict(e.record) for e in done],
        )

    async def revert(self, ctx: FaultContext) -> None:
        token = {"token": ctx.actions.token}

        async def unslow(entry: Acted) -> dict[str, Any]:
            reply = await entry.handle.control("unslow", token)
            # The worker's own count of replies it held back for this step.
            delayed = reply.get("delayed") if isinstance(reply, dict) else None
            return {"restored": True, "delayed_replies": delayed}

        times = ctx.state.get("service_times")
        try:
            await ctx.actions.undo(self.name, unslow, gone={"restored": False})
        finally:
            summary = times.close() if isinstance(times, ServiceTimes) else {}
            ctx.record(restored=ctx.actions.undone, **summary)
            ctx.took_effect(*_proof(ctx, summary))


class ServiceTimes:
    """Mean checkout-to-checkin time on the slowed workers vs the others, summed as events
    arrive: only the checkouts still in flight are kept (one per worker at most)."""

    def __init__(self) -> None:
        self.slowed: set[int | None] = set()
        self.unsubscribe: Any = None
        self._out: dict[int | None, float] = {}
        self._sums = {True: [0, 0.0], False: [0, 0.0]}  # slowed? -> [count, seconds]

    def on_event(self, event: PoolEvent) -> None:
        if event.kind == "checkout":
            self._out[event.pid] = event.time
        elif event.kind == "checkin" and event.pid in self._out:
            sums = self._sums[event.pid in self.slowed]
            sums[0] += 1
            sums[1] += event.time - self._out.pop(event.pid)
        elif event.kind == "crash":
            self._out.pop(event.pid, None)

    def close(self) -> dict[str, Any]:
        unsubscribe, self.unsubscribe = self.unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        slowed, others = (self._mean(flag) for flag in (True, False))
        added = None if slowed is None or others is None else seconds(slowed - others)
        return {
            "requests_on_slowed": int(self._sums[True][0]),
            "service_time_slowed": None if slowed is None else seconds(slowed),
            "service_time_others": None if others is None else seconds(others),
            "added_latency": added,
        }

    def _mean(self, flag: bool) -> float | None:
        count, total = self._sums[flag]
        return total / count if count else None


def _proof(ctx: FaultContext, summary: dict[str, Any]) -> tuple[bool, str]:
    """Replies really delayed: the workers' own counts, checked against the pool's view."""
    acted = [e.record for e in ctx.actions.done if e.acted]
    if not acted:
        return False, "no target worker could be slowed (every target was gone)"
    delayed = sum(int(r.get("delayed_replies") or 0) for r in acted)
    served = int(summary.get("requests_on_slowed") or 0)
    if delayed:
        return True, f"{delayed} replies delayed on {len(acted)} worker(s)"
    if ctx.params.latency == 0 and ctx.params.jitter == 0:
        return True, "latency and jitter are 0: nothing to delay"
    if any(r.get("worker_gone") for r in acted):
        return True, "the slowed worker(s) died during the step: the delay ended with them"
    if served:
        return False, f"{served} requests served by the slowed worker(s), none delayed"
    return True, (f"delay installed on {len(acted)} worker(s), acknowledged; "
                  "no request reached them during the step")
