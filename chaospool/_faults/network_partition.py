"""network_partition: the channel to a worker loses or holds back messages."""

from __future__ import annotations

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
)

if TYPE_CHECKING:
    from chaospool.pool import Partition, WorkerHandle

COUNTS = ("dropped", "held", "delivered_late", "late_discarded")


class NetworkPartition(Fault):
    """Cut the channel between pool and worker (drop or hold messages) for `duration`.

    Mechanism: ``WorkerHandle.partition(direction, mode)`` installs a filter at the pool's
    channel seam: ``to_worker`` affects requests, ``from_worker`` replies and heartbeats,
    ``both`` both. ``drop`` discards the frames; ``hold`` queues them and ``heal()`` at revert
    delivers them late -- a late reply whose caller gave up must be discarded, never handed to
    another caller. Evidence: the partition's own counts per target (dropped, held,
    delivered_late, late_discarded) and, from the pool's events, timeouts and late replies.
    """

    name: ClassVar[str] = "network_partition"

    @dataclass
    class Params:
        duration: Duration = 1.0
        direction: Literal["both", "to_worker", "from_worker"] = "both"
        mode: Literal["drop", "hold"] = "drop"

        def __post_init__(self) -> None:
            check_positive("duration", self.duration)
            check_choice("direction", self.direction, ("both", "to_worker", "from_worker"))
            check_choice("mode", self.mode, ("drop", "hold"))

    async def inject(self, ctx: FaultContext) -> None:
        ctx.state["log"] = EventLog(ctx.pool, ("timeout", "late_reply", "crash", "health_fail"))
        cut: list[tuple[WorkerHandle, Partition]] = ctx.state.setdefault("partitions", [])
        for handle in await live_targets(ctx, self.name):
            acted, partition = await act_on(
                ctx, handle, handle.partition, ctx.params.direction, ctx.params.mode
            )
            if acted:
                cut.append((handle, partition))
        ctx.record(
            skipped=ctx.state["skipped"],
            direction=ctx.params.direction,
            mode=ctx.params.mode,
            duration=step_duration(ctx.duration, ctx.params.duration),
            partitioned=[target_record(h) for h, _ in cut],
        )

    async def revert(self, ctx: FaultContext) -> None:
        pending: list[tuple[WorkerHandle, Partition]] = ctx.state.get("partitions", [])
        healed: list[dict[str, Any]] = ctx.state.setdefault("healed", [])
        errors = RevertErrors(self.name)
        try:
            while pending:
                handle, partition = pending.pop(0)
                try:
                    # heal() on a worker that died meanwhile must still release held frames.
                    await partition.heal()
                except Exception as exc:  # reason: every partition is healed; reported together
                    errors.add(handle, exc)
                healed.append({**target_record(handle), **_counts(partition)})
        finally:
            log = close_log(ctx.state)
            ctx.record(partitions=healed, totals=_totals(healed), **_events(log, healed))
        errors.raise_if_any()


def _counts(partition: Partition) -> dict[str, int]:
    counts = dict(partition.counts)
    return {key: int(counts.get(key, 0)) for key in COUNTS}


def _totals(healed: list[dict[str, Any]]) -> dict[str, int]:
    return {key: sum(int(h[key]) for h in healed) for key in COUNTS}


def _events(log: EventLog | None, healed: list[dict[str, Any]]) -> dict[str, Any]:
    if log is None:
        return {}
    pids = [h["pid"] for h in healed]
    return {
        "requests_timed_out": log.count("timeout", pids),
        "late_replies_discarded": log.count("late_reply", pids),
        "health_failures": log.count("health_fail", pids),
    }
