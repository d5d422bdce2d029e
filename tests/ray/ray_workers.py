"""A worker module for the Ray tests: the demo's commands, plus one that prints."""

from __future__ import annotations

from typing import Any

from chaospool.worker import Context, command
from chaospool.workers.demo import *  # noqa: F403 - the demo's commands, served here too


@command
def speak(args: Any, ctx: Context) -> str:
    print(args["text"])
    return "said"
