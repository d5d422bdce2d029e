"""A chaospool plugin you can copy: ``byzantine_reply``, a worker that lies on the wire.

The target worker damages its next ``count`` reply frames -- random bytes (``garbage``) or a
frame cut short (``truncate``) -- through the worker's built-in ``corrupt`` control operation.
A sound pool must take such a frame as a protocol error: fail only the request it belonged to,
never hand the bytes to a caller, kill the liar and start a replacement; a probe with
``retries`` then recovers the failed call on a healthy worker.

Evidence in the journal (the step's ``effect``): which workers were corrupted, and at revert,
for each of them whether the pool replaced it (old pid -> new pid) and the ``crash`` events the
pool reported for it. It shows the fault helper ``ctx.actions`` (act on each target, remember
what was done, undo exactly that) and leaves ``took_effect`` unset: a plugin fault that does
not prove its effect is not checked (docs/plugins.md).

Use it from an experiment (paths are relative to the experiment file)::

    plugins: [../plugins/byzantine.py]
    method:
      - {fault: byzantine_reply, at: 1s, duration: 1s, target: {worker: 0}, mode: garbage}

or ``chaospool run --plugin plugins/byzantine.py ...``. Only the public API is used here.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from chaospool.errors import ChaospoolError, ProtocolError
from chaospool.fault import Acted, Duration, Fault, FaultContext
from chaospool.hookspecs import hookimpl

if TYPE_CHECKING:
    from chaospool.pool import WorkerHandle

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
        args = {"mode": ctx.params.mode, "count": ctx.params.count, "token": ctx.actions.token}
        # ctx.actions acts on each live target and remembers it, so that revert settles
        # exactly the workers this step corrupted (and only its own corruption: the token).
        done = await ctx.actions.each(ctx, self.name, lambda handle: _corrupt(handle, args))
        ctx.record(
            mode=ctx.params.mode,
            count=ctx.params.count,
            corrupted=[dict(entry.record) for entry in done],
            lied_before_ack=[e.record["pid"] for e in done if e.memo or not e.acted],
        )

    async def revert(self, ctx: FaultContext) -> None:
        token = {"token": ctx.actions.token}
        try:
            await ctx.actions.undo(self.name, lambda entry: _settle(ctx, entry, token))
        finally:
            unsubscribe = ctx.state.pop("unsubscribe", None)
            if unsubscribe is not None:
                unsubscribe()
            pids = {entry.record["pid"] for entry in ctx.actions.done}
            ctx.record(
                outcomes=ctx.actions.undone,
                crashes=[c for c in ctx.state.get("crashes", []) if c["pid"] in pids],
            )


async def _corrupt(handle: WorkerHandle, args: dict[str, Any]) -> bool:
    """Whether the worker lied before acknowledging the operation."""
    try:
        await handle.control("corrupt", args)
    except ProtocolError:
        # The worker damaged a user reply that overtook the acknowledgement of this very
        # operation: the pool dropped the worker, failing every call in flight on it -- ours
        # included. The fault took effect; revert confirms the replacement.
        return True
    return False


async def _settle(ctx: FaultContext, entry: Acted, token: dict[str, Any]) -> dict[str, Any]:
    """Stop a worker that has not lied yet; or confirm the pool replaced the one that did."""
    handle, pid = entry.handle, entry.record["pid"]
    if handle.state != "dead":
        try:
            left = await handle.control("uncorrupt", token)
            return {"replaced_by": None, "uncorrupt": left}
        except ChaospoolError:
            pass  # it died under us: it sent its bad frame after all -- see the replacement
    new = await ctx.pool.wait_serving(handle.index, not_pid=pid, timeout=REPLACE_WAIT)
    return {"replaced_by": new.pid}


def _crash(event: Any) -> dict[str, Any]:
    return {"index": event.index, "pid": event.pid, "data": dict(event.data)}


@hookimpl
def chaospool_register_faults() -> list[type[Fault]]:
    return [ByzantineReply]
