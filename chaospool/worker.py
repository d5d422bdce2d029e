"""The worker side's public API: register command handlers, extend the control surface.

::

    from chaospool.worker import command

    @command
    def create_program(args, ctx):
        pid = f"prog-{len(ctx.session.get('programs', {}))}"
        ctx.session.setdefault("programs", {})[pid] = args["signature"]
        return {"program_id": pid}

``ctx.session`` is the session's state: a dict owned by the pool (it survives a worker crash).
What a handler changes in it is shipped back per top-level key; a handler that raises changes
nothing; calls of one session run one at a time (docs/design.md, Pool, "Sessions"). Keep no
reference to a session value beyond the call.
A plugin control op is ``def fn(args: dict, runtime: ControlRuntime) -> Any``, called by
``WorkerHandle.control("module:fn", args)`` on the worker's control thread.
"""

from __future__ import annotations

from chaospool._worker.registry import command
from chaospool._worker.runtime import Context, ControlRuntime

__all__ = ("Context", "ControlRuntime", "command")
