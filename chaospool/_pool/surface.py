"""``FaultSurface``: the pool's ``WorkerOps`` (``ops.py``), what every ``WorkerHandle`` uses.

Signals and the channel go to the worker's link; control ops and partitions ride the request
path's sends and deliveries (so a partition holds control ops and replies alike); memory and
status come from the link when it can tell (``backend.Measured``), since only the backend
knows what its worker is (a local process, a fake one, a remote actor).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from chaospool._pool.backend import Link, Measured, capable
from chaospool._pool.kinds import DEAD
from chaospool._pool.psinfo import ProcessInfo
from chaospool._pool.seams import Dispatch
from chaospool._pool.worker import Call, Partition, Worker
from chaospool._wire import protocol as p
from chaospool.errors import CommandError, RequestTimeout

if TYPE_CHECKING:
    from chaospool._pool.state import PoolState


def _live_link(w: Worker) -> Link:
    """The link of a live incarnation; ProcessLookupError once it is gone."""
    link = w.link
    if link is None or w.state == DEAD or link.exit_status() is not None:
        raise ProcessLookupError(f"worker {w.index} (pid {w.pid}) is {w.state}")
    return link


class Meter:
    """A worker's memory and status: from its link when it can tell (``Measured``); else --
    a backend whose links predate ``Measured`` -- psutil on its pid if the backend says its
    workers are real processes, and "running" while it has a link (what 0.1.0 answered)."""

    def __init__(self, real_processes: bool) -> None:
        self._real = real_processes

    def rss(self, w: Worker) -> int | None:
        link = w.link
        if link is None or w.state == DEAD:
            return None
        if capable(link, Measured):
            return cast(Measured, link).rss()
        return ProcessInfo(w.pid).rss() if self._real and w.pid else None

    def status(self, w: Worker) -> str | None:
        link = w.link
        if link is None or w.state == DEAD:
            return None
        if capable(link, Measured):
            return cast(Measured, link).status()
        return ProcessInfo(w.pid).status() if self._real and w.pid else "running"


class FaultSurface:
    """Given the shared state (request ids, flags), the request path (sends, deliveries) and
    the meter (memory, status)."""

    def __init__(self, state: PoolState, dispatch: Dispatch, meter: Meter) -> None:
        self._state = state
        self._send = dispatch.send
        self._deliver = dispatch.deliver
        self.rss = meter.rss
        self.status = meter.status

    def signal(self, w: Worker, sig: int) -> None:
        _live_link(w).signal(sig)

    def close_channel(self, w: Worker) -> None:
        _live_link(w).close()

    async def control(
        self,
        w: Worker,
        op: str,
        args: Mapping[str, Any] | None,
        timeout: float,  # noqa: ASYNC109  reason: the seam's API takes a timeout
    ) -> Any:
        _live_link(w)
        rid = next(self._state.ids)
        pending = Call(None, self._state.flag())
        pending.worker = w
        w.pending[rid] = pending
        try:
            await self._send(w, p.Control(rid, op, p.encode_value(dict(args or {}))))
            await pending.event.wait(timeout)
        finally:
            w.pending.pop(rid, None)
        return _control_result(w, op, timeout, pending)

    def partition(self, w: Worker, direction: str, mode: str) -> Partition:
        _live_link(w)
        if w.partition is not None and w.partition.active:
            raise RuntimeError(f"{w.describe()} is already partitioned")
        part = Partition(direction, mode, self._healer(w))
        w.partition = part
        return part

    def _healer(self, w: Worker) -> Callable[[Partition], Any]:
        async def heal(part: Partition) -> None:
            if w.partition is part:
                w.partition = None
            held_out, part.held_out = part.held_out, []
            for msg in held_out:
                if w.alive:
                    await self._send(w, msg)
                    part.counts["delivered_late"] += 1
            held_in, part.held_in = part.held_in, []
            for msg in held_in:
                late = "delivered_late" if self._deliver(w, msg) else "late_discarded"
                part.counts[late] += 1

        return heal


def _control_result(w: Worker, op: str, timeout: float, pending: Call) -> Any:
    if not pending.event.is_set():
        raise RequestTimeout(f"control op {op!r} got no answer from {w.describe()} "
                             f"within {timeout}s")
    if pending.error is not None:
        raise pending.error
    if isinstance(pending.msg, p.Failure):
        raise CommandError(pending.msg.error_type, pending.msg.message, pending.msg.traceback)
    assert pending.msg is not None
    return p.decode_value(pending.msg.value)
