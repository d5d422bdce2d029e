"""port_crash: kill a worker process, or cut its channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from chaospool.errors import ChaospoolError
from chaospool.fault import Fault, FaultContext

from ._common import (
    REPLACE_WAIT,
    EventLog,
    act_on,
    check_choice,
    close_log,
    live_targets,
    now,
    parse_signal,
    seconds,
)


@dataclass
class Killed:
    """One slot this injection killed: what revert waits to see replaced."""

    index: int
    pid: int
    at: float


class PortCrash(Fault):
    """Kill the target worker process (or close its channel); the pool must replace it.

    Mechanism: ``mode: kill`` sends ``signal`` to the worker process and its process group
    (``WorkerHandle.signal``); ``mode: close`` closes the pool's end of the worker's channel
    (``WorkerHandle.close_channel``), so the worker sees end-of-file and the pool a broken link.
    The effect ends when every killed slot serves again with a new process: ``revert`` waits for
    that (``pool.wait_serving(index, not_pid=old)``, bounded) and records, per slot, the old pid,
    the exit status seen in the pool's ``crash`` event, the replacement pid and the time to it.
    """

    name: ClassVar[str] = "port_crash"

    @dataclass
    class Params:
        signal: str | int = "SIGKILL"
        mode: Literal["kill", "close"] = "kill"

        def __post_init__(self) -> None:
            parse_signal(self.signal)
            check_choice("mode", self.mode, ("kill", "close"))

    async def inject(self, ctx: FaultContext) -> None:
        sig = parse_signal(ctx.params.signal)
        ctx.state["log"] = EventLog(ctx.pool, ("crash", "start", "restart"))
        killed: list[Killed] = ctx.state.setdefault("killed", [])
        for handle in await live_targets(ctx, self.name):
            # Recorded before acting: if the act raises half-way, revert still waits for the slot
            # (a worker that died on its own just before counts too: its slot is refilled alike).
            killed.append(Killed(handle.index, handle.pid or 0, now()))
            if ctx.params.mode == "kill":
                await act_on(ctx, handle, handle.signal, sig)
            else:
                await act_on(ctx, handle, handle.close_channel)
        ctx.record(
            mode=ctx.params.mode,
            signal=sig.name if ctx.params.mode == "kill" else None,
            killed=[{"index": k.index, "pid": k.pid} for k in killed],
            skipped=ctx.state["skipped"],
        )

    async def revert(self, ctx: FaultContext) -> None:
        pending: list[Killed] = ctx.state.get("killed", [])
        log = ctx.state.get("log")
        replaced: list[dict[str, Any]] = ctx.state.setdefault("replaced", [])
        # One deadline for all slots: the engine bounds the whole revert, not each wait.
        deadline = now() + REPLACE_WAIT
        try:
            while pending:
                replaced.append(await _await_replacement(ctx, pending[0], log, deadline))
                pending.pop(0)
        finally:
            close_log(ctx.state)
            # slots still pending: the run ended (see engine wind_down) before they served again
            missing = [r["index"] for r in replaced if r["replacement_pid"] is None]
            missing += [k.index for k in pending]
            ctx.record(replaced=replaced, not_replaced=missing)


async def _await_replacement(
    ctx: FaultContext, killed: Killed, log: EventLog | None, deadline: float
) -> dict[str, Any]:
    record: dict[str, Any] = {"index": killed.index, "pid": killed.pid}
    try:
        fresh = await ctx.pool.wait_serving(
            killed.index, not_pid=killed.pid, timeout=max(0.0, deadline - now())
        )
    except (TimeoutError, ChaospoolError) as exc:
        # The pool did not refill the slot (restart intensity exceeded, pool closed): that is
        # the system's behaviour under test, recorded as evidence, not a failure to revert.
        record.update(_exit_status(log, killed), replacement_pid=None,
                      time_to_replacement=None, reason=f"{type(exc).__name__}: {exc}")
        return record
    started = _start_time(log, killed.index, fresh.pid)
    record.update(_exit_status(log, killed), replacement_pid=fresh.pid,
                  time_to_replacement=seconds((started or now()) - killed.at))
    return record


def _exit_status(log: EventLog | None, killed: Killed) -> dict[str, Any]:
    crashes = log.of("crash", pid=killed.pid) if log is not None else []
    if not crashes:
        return {"exitcode": None, "exit_signal": None}
    data = crashes[0].data
    return {"exitcode": data.get("exitcode"), "exit_signal": data.get("signal")}


def _start_time(log: EventLog | None, index: int, pid: int | None) -> float | None:
    starts = log.of("start", pid=pid, index=index) if log is not None else []
    return starts[0].time if starts else None
