"""``WorkerOps``: the fault-facing operations on a worker incarnation, as one typed seam.

``WorkerHandle`` (what faults hold) reads an incarnation's data -- index, pid, node, state --
from its ``Worker`` record and does everything else through this interface; it never sees the
pool. The pool's implementation is ``FaultSurface`` (``surface.py``); what only the worker's
side of a backend can know (its memory, whether it is stopped) comes from the backend's link
(``backend.Measured``), so a new backend provides it in its own module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from chaospool._pool.worker import Partition, Worker


class WorkerOps(Protocol):
    """Every operation refuses an incarnation that is gone with ``ProcessLookupError``
    (``rss``/``status`` answer None instead): a fault never hits the replacement of the
    worker it meant."""

    def signal(self, w: Worker, sig: int) -> None:
        """Send ``sig`` to the worker (and its process group)."""

    def close_channel(self, w: Worker) -> None:
        """Close the pool's end of the worker's channel."""

    async def control(
        self,
        w: Worker,
        op: str,
        args: Mapping[str, Any] | None,
        timeout: float,  # noqa: ASYNC109  reason: the seam's API takes a timeout
    ) -> Any:
        """Run control op ``op`` inside the worker; its answer."""

    def partition(self, w: Worker, direction: str, mode: str) -> Partition:
        """Partition the worker's channel at the pool-side seam."""

    def rss(self, w: Worker) -> int | None:
        """Resident set size in bytes; None when dead or unknown to the backend."""

    def status(self, w: Worker) -> str | None:
        """psutil-style status ("running", "sleeping", "stopped", ...); None when dead."""
