"""port_crash: kill a worker process, or cut its channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from chaospool.errors import ChaospoolError
from chaospool.fault import Acted, Fault, FaultContext

if TYPE_CHECKING:
    from chaospool.pool import WorkerHandle

from ._common import (
    REPLACE_WAIT,
    EventLog,
    check_choice,
    close_log,
    is_gone,
    now,
    parse_signal,
    seconds,
    wait_gone,
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
    Proof (``took_effect``): every target process seen gone -- its ``crash`` event, a
    replacement in its slot, or psutil; a signal the worker survives does not take effect.
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
        kill = ctx.params.mode == "kill"
        # A target that died on its own just before is remembered too (each() records it
        # before acting): its slot is refilled alike, and revert waits for that.
        async def crash(handle: WorkerHandle) -> None:
            handle.signal(sig) if kill else handle.close_channel()
            # Seen gone before the next step may pick the slot (bounded): a process that is
            # still dying would otherwise look alive to it and be "killed" twice.
            await wait_gone(handle)

        done = await ctx.actions.each(ctx, self.name, crash)
        ctx.record(
            mode=ctx.params.mode,
            signal=sig.name if kill else None,
            killed=[{"index": e.handle.index, "pid": e.handle.pid or 0} for e in done],
            skipped=ctx.actions.skipped,
        )

    async def revert(self, ctx: FaultContext) -> None:
        log = ctx.state.get("log")
        # One deadline for all slots: the engine bounds the whole revert, not each wait.
        deadline = now() + REPLACE_WAIT

        async def replaced(entry: Acted) -> dict[str, Any]:
            return await _await_replacement(ctx, _killed(entry), log, deadline)

        try:
            await ctx.actions.undo(self.name, replaced)
        finally:
            close_log(ctx.state)
            records = ctx.actions.undone
            # slots still pending: the run ended (see engine wind_down) before they served again
            missing = [r["index"] for r in records if r["replacement_pid"] is None]
            missing += [e.handle.index for e in ctx.actions.pending]
            ctx.record(replaced=records, not_replaced=missing)
            ctx.took_effect(*_proof(ctx, log))


def _killed(entry: Acted) -> Killed:
    return Killed(entry.handle.index, entry.handle.pid or 0, entry.at)


def _proof(ctx: FaultContext, log: EventLog | None) -> tuple[bool, str]:
    """Every target process seen gone: its crash event, a replacement, or psutil."""
    done = ctx.actions.done
    if not done:
        return False, "no target worker to kill (none served)"
    alive = [e for e in done if e.acted and not _seen_gone(e, log)]
    if alive:
        return False, "still running after the fault: " + ", ".join(
            f"slot {e.handle.index} (pid {e.handle.pid})" for e in alive)
    return True, f"{len(done)} worker process(es) seen gone"


def _seen_gone(entry: Acted, log: EventLog | None) -> bool:
    if entry.record.get("replacement_pid") is not None or is_gone(entry.handle):
        return True
    return bool(log is not None and log.of("crash", pid=entry.handle.pid))


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
