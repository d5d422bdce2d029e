"""A chaospool plugin you can copy: ``byzantine_reply``, a worker that lies on the wire.

The target worker damages its next ``count`` reply frames -- random bytes (``garbage``) or a
frame cut short (``truncate``) -- through the worker's built-in ``corrupt`` control operation.
A sound pool must take such a frame as a protocol error: fail only the request it belonged to,
never hand the bytes to a caller, kill the liar and start a replacement; a probe with
``retries`` then recovers the failed call on a healthy worker.

Evidence in the journal (the step's ``effect``): which workers were corrupted, and at revert,
for each of them whether the pool replaced it (old pid -> new pid) and the ``crash`` events the
pool reported for it.

Use it from an experiment (paths are relative to the experiment file)::

    plugins: [../plugins/byzantine.py]
    method:
      - {fault: byzantine_reply, at: 1s, duration: 1s, target: {worker: 0}, mode: garbage}

or ``chaospool run --plugin plugins/byzantine.py ...``. Only the public API is used here.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from chaospool.errors import ChaospoolError, ProtocolError
from chaospool.fault import Duration, Fault, FaultContext
from chaospool.hookspecs import hookimpl

# How long revert waits for the pool to bring a replaced slot back (bounded: revert must end).
REPLACE_WAIT = 10.0


class ByzantineReply(Fault):
    """The target worker sends corrupt reply frames (garbage or truncated): a byzantine worker."""

    name: ClassVar[str] = "byzantine_reply"

    @dataclasses.dataclass
    class Params:
        mode: Literal["garbage", "truncate"] = "garbage"
        count: int = 1  # how many reply frames each target damages
        duration: Duration = 1.0

        def __post_init__(self) -> None:
            if self.count < 1:
                raise ValueError(f"count must be at least 1, not {self.count}")

    async def inject(self, ctx: FaultContext) -> None:
        crashes: list[dict[str, Any]] = []
        ctx.state["crashes"] = crashes
        ctx.state["unsubscribe"] = ctx.pool.subscribe(
            lambda event: crashes.append(_crash(event)) if event.kind == "crash" else None
        )
        corrupted = ctx.state.setdefault("corrupted", [])
        early = []
        for handle in ctx.targets:
            args = {"mode": ctx.params.mode, "count": ctx.params.count}
            try:
                await handle.control("corrupt", args)
            except ProtocolError:
                # The worker damaged a user reply that overtook the acknowledgement of this very
                # operation: the pool dropped the worker, failing every call in flight on it --
                # ours included. The fault took effect; revert confirms the replacement.
                early.append(handle.pid)
            corrupted.append((handle, handle.index, handle.pid))
        ctx.record(
            mode=ctx.params.mode,
            count=ctx.params.count,
            corrupted=[{"index": index, "pid": pid} for _, index, pid in corrupted],
            lied_before_ack=early,
        )

    async def revert(self, ctx: FaultContext) -> None:
        outcomes = []
        try:
            for handle, index, pid in ctx.state.get("corrupted", []):
                outcomes.append(await _settle(ctx, handle, index, pid))
        finally:
            unsubscribe = ctx.state.pop("unsubscribe", None)
            if unsubscribe is not None:
                unsubscribe()
            pids = {pid for _, _, pid in ctx.state.get("corrupted", [])}
            ctx.record(
                outcomes=outcomes,
                crashes=[c for c in ctx.state.get("crashes", []) if c["pid"] in pids],
            )


async def _settle(ctx: FaultContext, handle: Any, index: int, pid: int) -> dict[str, Any]:
    """Stop a worker that has not lied yet; or confirm the pool replaced the one that did."""
    if handle.state != "dead":
        try:
            left = await handle.control("uncorrupt")
            return {"index": index, "pid": pid, "replaced_by": None, "uncorrupt": left}
        except ChaospoolError:
            pass  # it died under us: it sent its bad frame after all -- see the replacement
    new = await ctx.pool.wait_serving(index, not_pid=pid, timeout=REPLACE_WAIT)
    return {"index": index, "pid": pid, "replaced_by": new.pid}


def _crash(event: Any) -> dict[str, Any]:
    return {"index": event.index, "pid": event.pid, "data": dict(event.data)}


@hookimpl
def chaospool_register_faults() -> list[type[Fault]]:
    return [ByzantineReply]
