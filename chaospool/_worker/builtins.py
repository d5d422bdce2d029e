"""Commands every worker serves without the user writing them (docs/reports.md, "Consistency").

``chaospool.incr`` and ``chaospool.read`` keep a counter in the *session state*, so that the
probe's consistency checker tests the pool's promise that a session's state survives its
worker. Both reply ``{"value": counter, "pid": this worker's pid}``; the pid lets a finding name
the worker that served the operation.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ("COMMANDS", "COUNTER_KEY")

COUNTER_KEY = "chaospool.counter"


def incr(args: Any, ctx: Any) -> dict[str, int]:
    state = ctx.session
    value = int(state.get(COUNTER_KEY, 0)) + 1
    state[COUNTER_KEY] = value
    return {"value": value, "pid": os.getpid()}


def read(args: Any, ctx: Any) -> dict[str, int]:
    return {"value": int(ctx.session.get(COUNTER_KEY, 0)), "pid": os.getpid()}


# served by every worker's dispatch (``WorkerCore``) after the user's own commands; not listed
# among the worker's commands (``Pool.commands`` shows what the user wrote)
COMMANDS: dict[str, Any] = {"chaospool.incr": incr, "chaospool.read": read}
