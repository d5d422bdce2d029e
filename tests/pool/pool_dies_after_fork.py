"""A worker module whose workers die the instant they are forked (before any handshake)."""

from __future__ import annotations

import os
from typing import Any

from chaospool.worker import Context, command

os.register_at_fork(after_in_child=lambda: os._exit(7))  # only the fork server imports this


@command
def ping(args: Any, ctx: Context) -> str:
    return "pong"
