"""``WorkerHandle``: the fault-facing view of one worker incarnation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaospool._pool.kinds import WorkerState
    from chaospool._pool.ops import WorkerOps
    from chaospool._pool.worker import Partition, Worker


class WorkerHandle:
    """Bound to *one* worker process (one incarnation of a slot).

    Its data is the incarnation's record; its operations go through ``WorkerOps``
    (``chaospool/_pool/ops.py``), which refuse to act on an incarnation that is gone
    (``ProcessLookupError``): a fault never hits the replacement of the worker it meant.
    """

    __slots__ = ("_ops", "_w")

    def __init__(self, ops: WorkerOps, worker: Worker) -> None:
        self._ops = ops
        self._w = worker

    @property
    def index(self) -> int:
        return self._w.index

    @property
    def pid(self) -> int | None:
        return self._w.pid

    @property
    def node(self) -> int | None:
        """The index of the cluster node the worker runs on (0 = head); None off Ray."""
        return self._w.node

    @property
    def state(self) -> WorkerState:
        """"starting" | "ready" | "busy" | "stopping" | "dead" (a ``str`` enum)."""
        return self._w.state

    @property
    def overflow(self) -> bool:
        return self._w.overflow

    @property
    def requests(self) -> int:
        """Requests this incarnation has answered."""
        return self._w.requests

    @property
    def log(self) -> list[str]:
        """The last lines this worker wrote to its stdout/stderr."""
        return self._w.log_tail(50)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to this worker process and its process group."""
        self._ops.signal(self._w, sig)

    def close_channel(self) -> None:
        """Close the pool's end of the channel (the worker sees EOF and exits)."""
        self._ops.close_channel(self._w)

    async def control(
        self,
        op: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109  reason: the seam's API takes a timeout
    ) -> Any:
        """Run control op ``op`` inside the worker (works while a user command runs)."""
        return await self._ops.control(self._w, op, args, timeout)

    def partition(self, direction: str = "both", mode: str = "drop") -> Partition:
        """Partition this worker's channel; ``await partition.heal()`` ends it."""
        return self._ops.partition(self._w, direction, mode)

    def rss(self) -> int | None:
        """Resident set size in bytes; None when dead or not measurable."""
        return self._ops.rss(self._w)

    def status(self) -> str | None:
        """psutil status ("running", "sleeping", "stopped", ...); None when dead."""
        return self._ops.status(self._w)

    def is_for(self, worker: Worker) -> bool:
        """Whether this handle is bound to ``worker`` (the pool's handle cache checks)."""
        return self._w is worker

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WorkerHandle) and other._w is self._w

    def __hash__(self) -> int:
        return id(self._w)

    def __repr__(self) -> str:
        kind = " overflow" if self.overflow else ""
        return f"<WorkerHandle {self.index}{kind} pid={self.pid} {self.state}>"
