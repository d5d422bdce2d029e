"""timeout: the target worker stops answering for a while."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from chaospool.fault import Duration, Fault, FaultContext

from ._common import (
    EventLog,
    RevertErrors,
    act_on,
    check_choice,
    check_positive,
    close_log,
    live_targets,
    step_duration,
    target_record,
    undo,
    wait_status,
)

if TYPE_CHECKING:
    from chaospool.pool import WorkerHandle


class Timeout(Fault):
    """The target worker stops answering for `duration`: in-flight requests must time out.

    Mechanism: ``how: stop`` sends SIGSTOP to the worker (``WorkerHandle.signal``) and SIGCONT
    at revert -- the kernel freezes the whole process, heartbeats included; ``how: block`` runs
    the ``block {duration}`` control op inside the worker, which keeps running but answers
    nothing until ``unblock`` (sent at revert; the worker also unblocks itself when ``duration``
    ends, so a lost revert cannot wedge it). Evidence: the psutil status seen after the stop,
    and from the pool's events the requests that timed out on the target, health-check
    failures, and whether the pool killed the silent worker.
    """

    name: ClassVar[str] = "timeout"

    @dataclass
    class Params:
        duration: Duration = 2.0
        how: Literal["stop", "block"] = "stop"

        def __post_init__(self) -> None:
            check_positive("duration", self.duration)
            check_choice("how", self.how, ("stop", "block"))

    async def inject(self, ctx: FaultContext) -> None:
        duration = step_duration(ctx.duration, ctx.params.duration)
        ctx.state["log"] = EventLog(ctx.pool, ("timeout", "crash", "health_fail", "restart"))
        silenced: list[WorkerHandle] = ctx.state.setdefault("silenced", [])
        seen: dict[int, Any] = ctx.state.setdefault("status_seen", {})
        for handle in await live_targets(ctx, self.name):
            silenced.append(handle)  # before acting: revert must undo even a half-done act
            acted, _ = await act_on(ctx, handle, _silence, handle, ctx.params.how, duration)
            if acted:
                seen[handle.index] = await _status_seen(handle, ctx.params.how)
        ctx.record(
            how=ctx.params.how,
            duration=duration,
            silenced=[target_record(h) for h in silenced],
            skipped=ctx.state["skipped"],
            status_seen={str(i): s for i, s in seen.items()},
        )

    async def revert(self, ctx: FaultContext) -> None:
        pending: list[WorkerHandle] = ctx.state.get("silenced", [])
        resumed: list[dict[str, Any]] = ctx.state.setdefault("resumed", [])
        errors = RevertErrors(self.name)
        try:
            while pending:
                handle = pending.pop(0)
                try:
                    resumed.append(await self._resume(ctx, handle))
                except Exception as exc:  # reason: every target is resumed; reported together
                    errors.add(handle, exc)
        finally:
            log = close_log(ctx.state)
            ctx.record(resumed=resumed, **_timeouts(log, resumed))
        errors.raise_if_any()

    async def _resume(self, ctx: FaultContext, handle: WorkerHandle) -> dict[str, Any]:
        async def resume() -> dict[str, Any]:
            if ctx.params.how == "stop":
                handle.signal(signal.SIGCONT)
            else:
                await handle.control("unblock")
            status = await wait_status(handle, lambda s: s != "stopped")
            return {"resumed": True, "status_after": status, "killed_by_pool": False}

        outcome = await undo(handle, resume)
        if outcome.get("worker_gone"):
            # The pool killed the silent worker (request timeout or failed health check):
            # there is nothing left to resume, and the slot has a new process.
            outcome = {"resumed": False, "status_after": None, "killed_by_pool": True}
        return {**target_record(handle), **outcome}


async def _silence(handle: WorkerHandle, how: str, duration: float) -> None:
    if how == "stop":
        handle.signal(signal.SIGSTOP)
    else:
        await handle.control("block", {"duration": duration})


async def _status_seen(handle: WorkerHandle, how: str) -> str | None:
    if how == "stop":  # the kernel stops it asynchronously: poll until psutil shows it
        return await wait_status(handle, lambda s: s == "stopped")
    return handle.status()  # blocked: still running, just silent


def _timeouts(log: EventLog | None, resumed: list[dict[str, Any]]) -> dict[str, Any]:
    if log is None:
        return {}
    pids = [r["pid"] for r in resumed]
    return {
        "requests_timed_out": log.count("timeout", pids),
        "health_failures": log.count("health_fail", pids),
        "crashes": log.count("crash", pids),
    }
