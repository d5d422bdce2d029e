"""``WorkerHandle``: the fault-facing view of one worker incarnation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaospool._pool.backend import Link
    from chaospool._pool.core import Pool
    from chaospool._pool.worker import Partition, Worker


class WorkerHandle:
    """Bound to *one* worker process (one incarnation of a slot).

    The operations refuse to act on an incarnation that is gone (``ProcessLookupError``): a
    fault never hits the replacement of the worker it meant.
    """

    __slots__ = ("_pool", "_w")

    def __init__(self, pool: Pool, worker: Worker) -> None:
        self._pool = pool
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
        return getattr(self._w.link, "node", None)

    @property
    def state(self) -> str:
        """"starting" | "ready" | "busy" | "stopping" | "dead"."""
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

    def _link(self) -> Link:
        link = self._w.link
        if link is None or self._w.state == "dead" or link.exit_status() is not None:
            raise ProcessLookupError(f"worker {self.index} (pid {self.pid}) is {self.state}")
        return link

    def signal(self, sig: int) -> None:
        """Send ``sig`` to this worker process and its process group."""
        self._link().signal(sig)

    def close_channel(self) -> None:
        """Close the pool's end of the channel (the worker sees EOF and exits)."""
        self._link().close()

    async def control(
        self,
        op: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109  reason: the seam's API takes a timeout
    ) -> Any:
        """Run control op ``op`` inside the worker (works while a user command runs)."""
        self._link()
        return await self._pool._control(self._w, op, args, timeout)

    def partition(self, direction: str = "both", mode: str = "drop") -> Partition:
        """Partition this worker's channel; ``await partition.heal()`` ends it."""
        self._link()
        return self._pool._partition(self._w, direction, mode)

    def rss(self) -> int | None:
        """Resident set size in bytes (psutil); None when dead or not a real process."""
        return self._pool._rss(self._w)

    def status(self) -> str | None:
        """psutil status ("running", "sleeping", "stopped", ...); None when dead."""
        if self._w.state == "dead":
            return None
        proc = self._pool._psproc(self._w)
        if proc is None:
            stopped = getattr(self._w.link, "stopped", False)
            return None if self._w.link is None else ("stopped" if stopped else "running")
        try:
            return str(proc.status())
        except Exception:
            return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WorkerHandle) and other._w is self._w

    def __hash__(self) -> int:
        return id(self._w)

    def __repr__(self) -> str:
        kind = " overflow" if self.overflow else ""
        return f"<WorkerHandle {self.index}{kind} pid={self.pid} {self.state}>"
