"""The pool's closed vocabularies: worker states and the reasons a worker stops or restarts.

``StrEnum`` members are ``str``: they compare equal to, format and serialise (json, msgspec)
as the same strings as before (``WorkerHandle.state == "ready"``, events' ``reason``), so the
public surface and the journal do not change; inside the pool a typo is a type error.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = (
    "ALIVE",
    "BUSY",
    "DEAD",
    "FAILURES",
    "READY",
    "STARTING",
    "STOPPING",
    "RecycleReason",
    "StopReason",
    "WorkerState",
)


class WorkerState(StrEnum):
    """One incarnation's life: starting -> ready <-> busy -> stopping -> dead."""

    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    STOPPING = "stopping"
    DEAD = "dead"


# module constants: the request path reads them per call, and a global is one lookup
# where ``WorkerState.BUSY`` is two
STARTING = WorkerState.STARTING
READY = WorkerState.READY
BUSY = WorkerState.BUSY
STOPPING = WorkerState.STOPPING
DEAD = WorkerState.DEAD
ALIVE = (READY, BUSY)


class StopReason(StrEnum):
    """Why an incarnation ended (``crash`` data, ``restart`` events' ``reason``)."""

    START = "start"  # it never finished its handshake
    CRASH = "crash"  # it died on its own (or its channel reached EOF)
    PROTOCOL = "protocol"  # it sent a malformed frame and was killed
    HEALTH = "health"  # it missed a heartbeat and was killed
    TIMEOUT = "timeout"  # a request passed its deadline and it was killed
    RECYCLE = "recycle"  # max_memory / max_requests
    CLOSE = "close"  # the pool closes
    RETIRE = "retire"  # an idle overflow worker
    HALF_OPEN = "half_open"  # a restart by the half-open circuit (restart events only)


# the reasons that count towards restart intensity (docs/design.md, "Supervision")
FAILURES = frozenset({StopReason.CRASH, StopReason.PROTOCOL, StopReason.HEALTH,
                      StopReason.TIMEOUT, StopReason.START})


class RecycleReason(StrEnum):
    """``recycle`` events' ``reason``."""

    MAX_MEMORY = "max_memory"
    MAX_REQUESTS = "max_requests"
