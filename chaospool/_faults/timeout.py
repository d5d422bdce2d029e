"""timeout: the target worker stops answering for a while."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from chaospool.fault import Acted, Duration, Fault, FaultContext

from ._common import EventLog, check_choice, check_positive, close_log, step_duration, wait_status

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
    failures, and whether the pool killed the silent worker. Proof (``took_effect``): psutil
    shows every target ``stopped`` (``how: stop``), or each worker acknowledged it is blocked
    (``how: block``); a worker the pool killed while silent counts as silenced.
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
        how, token = ctx.params.how, ctx.actions.token

        async def silence(handle: WorkerHandle) -> tuple[str | None, bool]:
            """(the status seen after, whether it is silenced)"""
            if how == "stop":
                handle.signal(signal.SIGSTOP)
                # the kernel stops it asynchronously: poll until psutil shows it
                status = await wait_status(handle, lambda s: s == "stopped")
                return status, status == "stopped"
            reply = await handle.control("block", {"duration": duration, "token": token})
            # blocked: still running, just silent -- as the worker itself acknowledges
            blocked = reply.get("blocked") if isinstance(reply, dict) else None
            return handle.status(), blocked is not False

        done = await ctx.actions.each(ctx, self.name, silence)
        ctx.record(
            how=how,
            duration=duration,
            silenced=[{"index": e.record["index"], "pid": e.record["pid"]} for e in done],
            skipped=ctx.actions.skipped,
            status_seen={str(e.handle.index): e.memo[0] for e in done if e.acted},
        )

    async def revert(self, ctx: FaultContext) -> None:
        how, token = ctx.params.how, {"token": ctx.actions.token}

        async def resume(entry: Acted) -> dict[str, Any]:
            if how == "stop":
                entry.handle.signal(signal.SIGCONT)
            else:
                await entry.handle.control("unblock", token)
            status = await wait_status(entry.handle, lambda s: s != "stopped")
            return {"resumed": True, "status_after": status, "killed_by_pool": False}

        # A worker the pool killed while silent (request timeout or failed health check) has
        # nothing left to resume, and its slot has a new process.
        gone = {"resumed": False, "status_after": None, "killed_by_pool": True}
        try:
            await ctx.actions.undo(self.name, resume, gone=gone)
        finally:
            resumed = [_resumed(r) for r in ctx.actions.undone]
            log = close_log(ctx.state)
            ctx.record(resumed=resumed, **_timeouts(log, resumed))
            ctx.took_effect(*_proof(ctx))


def _resumed(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "worker_gone"}


def _proof(ctx: FaultContext) -> tuple[bool, str]:
    """A process seen stopped (psutil) or a worker that acknowledged it is blocked."""
    acted = [e for e in ctx.actions.done if e.acted]
    if not acted:
        return False, "no target worker could be silenced (every target was gone)"
    wanted = "stopped" if ctx.params.how == "stop" else "blocked"
    missed = [e for e in acted if not e.memo[1] and not e.record.get("killed_by_pool")]
    if missed:
        return False, f"not {wanted}: " + ", ".join(
            f"slot {e.handle.index} (pid {e.handle.pid}, status {e.memo[0]})" for e in missed)
    return True, f"{len(acted)} worker(s) seen {wanted}"


def _timeouts(log: EventLog | None, resumed: list[dict[str, Any]]) -> dict[str, Any]:
    if log is None:
        return {}
    pids = [r["pid"] for r in resumed]
    return {
        "requests_timed_out": log.count("timeout", pids),
        "health_failures": log.count("health_fail", pids),
        "crashes": log.count("crash", pids),
    }
