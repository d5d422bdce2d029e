"""network_partition: the channel to a worker loses or holds back messages."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from chaospool.fault import Acted, Duration, Fault, FaultContext

from ._common import EventLog, check_choice, check_positive, close_log, step_duration

if TYPE_CHECKING:
    from chaospool.pool import Partition, WorkerHandle

COUNTS = ("dropped", "held", "delivered_late", "late_discarded")
# How long the proof probe waits for an answer a working partition never lets through.
PROBE_WAIT = 0.25


class NetworkPartition(Fault):
    """Cut the channel between pool and worker (drop or hold messages) for `duration`.

    Mechanism: ``WorkerHandle.partition(direction, mode)`` installs a filter at the pool's
    channel seam: ``to_worker`` affects requests, ``from_worker`` replies and heartbeats,
    ``both`` both. ``drop`` discards the frames; ``hold`` queues them and ``heal()`` at revert
    delivers them late -- a late reply whose caller gave up must be discarded, never handed to
    another caller. If no frame met the partition by revert, one ``info`` control frame is sent
    across it first: a partition that held or dropped a frame is the proof it took effect.
    Evidence: the partition's own counts per target (dropped, held,
    delivered_late, late_discarded) and, from the pool's events, timeouts and late replies.
    Proof (``took_effect``): every partition dropped or held at least one frame.
    """

    name: ClassVar[str] = "network_partition"
    one_per_worker: ClassVar[bool] = True  # a worker's channel holds one partition at a time

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
        direction, mode = ctx.params.direction, ctx.params.mode
        done = await ctx.actions.each(ctx, self.name, lambda h: h.partition(direction, mode))
        ctx.record(
            skipped=ctx.actions.skipped,
            direction=direction,
            mode=mode,
            duration=step_duration(ctx.duration, ctx.params.duration),
            partitioned=[dict(e.record) for e in done if e.acted],
        )

    async def revert(self, ctx: FaultContext) -> None:
        async def heal(entry: Acted) -> dict[str, int]:
            partition: Partition = entry.memo
            try:
                if not any(_counts(partition).values()):
                    await _probe(entry.handle)  # no traffic met it: one frame to see it cut
                # heal() on a worker that died meanwhile must still release held frames.
                await partition.heal()
            finally:
                entry.record.update(_counts(partition))  # a failed heal still counts
            return {}

        try:
            await ctx.actions.undo(self.name, heal, acted_only=True)
        finally:
            healed = ctx.actions.undone
            log = close_log(ctx.state)
            ctx.record(partitions=healed, totals=_totals(healed), **_events(log, healed))
            ctx.took_effect(*_proof(healed))


async def _probe(handle: WorkerHandle) -> None:
    """One control frame across the partition: a frame that the partition held or dropped is
    what proves it took effect (docs/faults.md). Its answer, if any, is not needed."""
    with contextlib.suppress(Exception):  # reason: a lost or refused probe is the expected case
        await handle.control("info", timeout=PROBE_WAIT)


def _proof(healed: list[dict[str, Any]]) -> tuple[bool, str]:
    if not healed:
        return False, "no target worker could be partitioned (every target was gone)"
    open_ = [h for h in healed if not (h.get("dropped") or h.get("held"))]
    if open_:
        return False, "no frame was dropped or held on " + ", ".join(
            f"slot {h['index']} (pid {h['pid']})" for h in open_)
    return True, f"frames dropped or held on {len(healed)} worker(s)"


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
