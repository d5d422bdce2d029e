"""The two seams between the request path and the supervisor, as small protocols.

The halves do call each other -- a reply can recycle its worker, a death fails the calls on
that worker -- so each is handed the other as one of these, never as its class: neither
module imports the other, and a test can stand in for either.

::

    RequestPath --Supervision--> Supervisor      kill, recycle, grow, circuit_message
    Supervisor  --Dispatch-----> RequestPath     make_available, replies, deliver,
                                                 fail_waiters, time_out, memory_ok, send,
                                                 queued, set_circuit
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from chaospool._pool.kinds import RecycleReason, StopReason
    from chaospool._pool.worker import Call, Worker
    from chaospool._wire import protocol as p


class Supervision(Protocol):
    """What the request path asks of supervision."""

    def kill(self, w: Worker, reason: StopReason) -> None:
        """SIGKILL ``w`` now (a request timed out on it); it is never checked in again."""

    def recycle(self, w: Worker, reason: RecycleReason, rss: int | None) -> None:
        """Stop ``w`` gracefully and replace it (``max_memory`` / ``max_requests``)."""

    def grow(self) -> None:
        """Start workers in empty slots for callers no starting worker will serve."""

    def circuit_message(self) -> str:
        """Why ``CircuitOpen`` is raised now, and when the circuit half-opens."""


class Dispatch(Protocol):
    """What supervision asks of the request path."""

    def make_available(self, w: Worker) -> None:
        """``w`` is ready: give it the first queued call, else put it in the idle set."""

    def replies(self, w: Worker, msgs: list[p.Message]) -> None:
        """What ``w``'s link read, in order: through its partition if any, else delivered."""

    def deliver(self, w: Worker, msg: p.Message) -> bool:
        """Complete the call ``msg`` answers; False if nobody waits for it any more."""

    def fail_waiters(self, error: BaseException) -> None:
        """Fail every queued call with ``error`` (circuit open, pool closing)."""

    def time_out(self, call: Call) -> None:
        """``call`` passed its deadline on its worker: fail it, kill the worker."""

    def memory_ok(self, w: Worker) -> bool:
        """False (and ``w`` is recycled) when its RSS is above ``max_memory``."""

    async def send(self, w: Worker, msg: p.Message) -> None:
        """Send ``msg`` to ``w`` through its partition, if any."""

    def queued(self) -> int:
        """Calls waiting in the checkout queue."""

    def set_circuit(self, is_open: bool) -> None:
        """The circuit opened or half-opened (the supervisor owns it)."""
