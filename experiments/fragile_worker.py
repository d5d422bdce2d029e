"""A deliberately fragile worker for ``explore_demo.yaml`` (docs/explore.md): a planted weakness
for ``chaospool explore`` to find and ``chaospool shrink`` to pin down.

``deposit {amount}`` adds to the session's balance. The worker in slot 1 keeps a write-behind
cache of balances and a watchdog thread; when the process was paused (the ``timeout`` fault's
SIGSTOP) for ``PAUSE`` seconds or more, the watchdog thinks the cache went stale and "repairs"
it -- wrongly: from then on every deposit on that worker corrupts the session's balance and is
refused. Nothing else breaks it: a crash, a slow reply, a partition or a blocked worker
(``how: block`` keeps the process running) leave it healthy, and the probe's retries absorb them.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from chaospool.worker import Context, command

# seconds without a watchdog tick that count as "the process was paused" (tests shorten it)
PAUSE = float(os.environ.get("FRAGILE_WORKER_PAUSE", "0.5"))
_TICK = 0.02
_state = {"paused": False, "pid": 0}
_lock = threading.Lock()


def _watch() -> None:
    last = time.monotonic()
    while True:
        time.sleep(_TICK)
        now = time.monotonic()
        if now - last >= PAUSE:
            _state["paused"] = True  # the planted bug: a pause "invalidates" the cache
        last = now


def _start_watchdog() -> None:
    with _lock:
        if _state["pid"] != os.getpid():  # threads do not survive a fork: one per process
            _state["pid"], _state["paused"] = os.getpid(), False
            threading.Thread(target=_watch, name="fragile-watchdog", daemon=True).start()


# Workers are forked from a process that imported this module: each starts its watchdog as it
# is born, so a pause is noticed even before the worker served its first call.
os.register_at_fork(after_in_child=_start_watchdog)


class CorruptedBalance(Exception):
    """The session's balance no longer matches its deposits."""


@command
def ping(args: Any, ctx: Context) -> str:
    return "pong"


@command
def deposit(args: Any, ctx: Context) -> int:
    _start_watchdog()  # a no-op once running (a worker that was not forked starts it here)
    amount = int((args or {}).get("amount", 1))
    session = ctx.session
    balance = int(session.get("balance", 0)) + amount
    if _state["paused"] and ctx.worker_index == 1:
        balance -= 2 * amount  # the stale cache "wins" over the session's state
    session["balance"], session["deposits"] = balance, int(session.get("deposits", 0)) + amount
    if session["balance"] != session["deposits"]:
        raise CorruptedBalance(f"balance {balance} != deposits {session['deposits']}")
    return balance
