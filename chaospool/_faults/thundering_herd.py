"""thundering_herd: many simultaneous calls released at one instant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
from hdrh.histogram import HdrHistogram

from chaospool.fault import Fault, FaultContext

from ._common import now, seconds

if TYPE_CHECKING:
    from chaospool.pool import Pool, PoolEvent

# Latencies are recorded in microseconds, from 1 µs to one hour, 3 significant digits.
_US = 1_000_000
_HIST_MAX = 3600 * _US


class _Herd:
    """The herd's bookkeeping: one outcome per call, latencies in a histogram."""

    def __init__(self, pool: Pool, requests: int) -> None:
        self.pool = pool
        self.requests = requests
        self.ready = 0
        self.go = anyio.Event()
        self.succeeded = 0
        self.errors_by_kind: dict[str, int] = {}
        self.histogram = HdrHistogram(1, _HIST_MAX, 3)
        self.max_queue_depth = 0
        self.released_at = 0.0
        self.last_end = 0.0

    def on_event(self, event: PoolEvent) -> None:
        # The queue is deepest right after the release; sample it whenever the pool moves.
        self.max_queue_depth = max(self.max_queue_depth, self.pool.stats().queue_depth)

    def arrive(self) -> None:
        self.ready += 1
        if self.ready == self.requests:
            self.released_at = now()
            self.go.set()

    def outcome(self, started: float, kind: str | None) -> None:
        ended = now()
        self.last_end = max(self.last_end, ended)
        self.histogram.record_value(max(1, int((ended - started) * _US)))
        self.max_queue_depth = max(self.max_queue_depth, self.pool.stats().queue_depth)
        if kind is None:
            self.succeeded += 1
        else:
            self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + 1


class ThunderingHerd(Fault):
    """Release `requests` simultaneous calls at one instant (a barrier); they are the fault's.

    Mechanism (pool-level): ``requests`` tasks each wait on one anyio Event that is set when
    the last of them has arrived, then call ``pool.execute(command, args)`` once (no retries,
    the pool's own timeouts). ``inject`` runs the herd to completion, so the effect ends -- and
    ``revert`` has nothing left to undo -- when the last call ended. Evidence: ``{requests,
    succeeded, errors_by_kind, p99_latency, max_queue_depth}`` with ``requests = succeeded +
    sum(errors_by_kind)``, latencies from an HDR histogram, the queue depth sampled on pool
    events. Proof (``took_effect``): the calls were released at the barrier and reached the
    pool.
    """

    name: ClassVar[str] = "thundering_herd"
    pool_level: ClassVar[bool] = True

    @dataclass
    class Params:
        requests: int = 1000
        command: str = "ping"
        args: dict[str, Any] = field(default_factory=dict)

        def __post_init__(self) -> None:
            if self.requests < 1:
                raise ValueError(f"requests must be >= 1; got {self.requests!r}")
            if not self.command:
                raise ValueError("command must not be empty")

    async def inject(self, ctx: FaultContext) -> None:
        herd = _Herd(ctx.pool, ctx.params.requests)
        ctx.state["herd"] = herd
        unsubscribe = ctx.pool.subscribe(herd.on_event)
        try:
            async with anyio.create_task_group() as tg:
                for _ in range(herd.requests):
                    tg.start_soon(_call, herd, ctx.params.command, ctx.params.args)
        finally:
            unsubscribe()
            _record(ctx, herd)

    async def revert(self, ctx: FaultContext) -> None:
        # The herd ran to completion inside inject (or was cancelled with it): no call survives.
        return None


async def _call(herd: _Herd, command: str, args: Any) -> None:
    herd.arrive()
    await herd.go.wait()
    started = now()
    try:
        await herd.pool.execute(command, args)
    except Exception as exc:  # reason: every call ends with exactly one recorded outcome
        herd.outcome(started, str(getattr(exc, "kind", type(exc).__name__)))
    else:
        herd.outcome(started, None)


def _record(ctx: FaultContext, herd: _Herd) -> None:
    done = herd.succeeded + sum(herd.errors_by_kind.values())
    if done < herd.requests:
        # Cancelled with the experiment: the calls that never ended still get one outcome each.
        herd.errors_by_kind["cancelled"] = herd.requests - done
    p99 = herd.histogram.get_value_at_percentile(99) / _US if done else None
    ctx.record(
        requests=herd.requests,
        succeeded=herd.succeeded,
        errors_by_kind=dict(sorted(herd.errors_by_kind.items())),
        p99_latency=None if p99 is None else seconds(p99),
        max_latency=seconds(herd.histogram.get_max_value() / _US) if done else None,
        max_queue_depth=herd.max_queue_depth,
        command=ctx.params.command,
        completed=done,
        herd_duration=seconds(herd.last_end - herd.released_at) if done else None,
    )
    if herd.go.is_set():  # cut short before the release (the run ended): not checked
        ctx.took_effect(done > 0, f"{herd.requests} calls released at one instant; "
                                  f"{done} of them reached the pool and ended")
