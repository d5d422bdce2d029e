"""Helpers shared by the built-in faults: event logs, liveness, guarded reverts, units.

Everything here reaches the pool only through its public handles (``pool.subscribe``,
``pool.owns``, ``pool.wait_serving``, ``WorkerHandle`` operations), as a plugin fault would.
"""

from __future__ import annotations

import inspect
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import psutil

from chaospool.errors import ChaospoolError, FaultError

if TYPE_CHECKING:
    from chaospool.fault import FaultContext
    from chaospool.pool import Pool, PoolEvent, WorkerHandle

# How long a fault waits for a target slot to be serving before it acts on it (a slot may be
# between incarnations when an earlier fault killed it).
TARGET_WAIT = 10.0
# How long port_crash's revert waits for a killed slot to serve again (a worker start is ~50 ms,
# but restart intensity or a slow worker module can stretch it; bounded so revert always ends).
REPLACE_WAIT = 15.0
# Bound on polling a psutil condition (a signal takes effect within milliseconds).
STATUS_WAIT = 2.0
ALIVE_STATES = frozenset({"ready", "busy"})


def now() -> float:
    return time.monotonic()


def seconds(value: float) -> float:
    """A duration for the journal: seconds, rounded to microseconds."""
    return round(value, 6)


def target_record(handle: WorkerHandle) -> dict[str, Any]:
    return {"index": handle.index, "pid": handle.pid}


def parse_signal(value: str | int) -> signal.Signals:
    """``SIGKILL``, ``KILL``, ``9`` or ``"9"`` -> ``signal.SIGKILL``; ValueError otherwise."""
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            return signal.Signals(int(value))
        except ValueError:
            raise ValueError(f"unknown signal number {value!r}") from None
    name = str(value).strip().upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    try:
        return signal.Signals[name]
    except KeyError:
        raise ValueError(f"unknown signal {value!r} (e.g. SIGKILL, SIGTERM or 9)") from None


def check_choice(field: str, value: str, choices: Iterable[str]) -> None:
    allowed = tuple(choices)
    if value not in allowed:
        raise ValueError(f"{field} must be one of {', '.join(allowed)}; got {value!r}")


def check_positive(field: str, value: float, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{field} must be {'>= 0' if allow_zero else '> 0'}; got {value!r}")


def is_gone(handle: WorkerHandle) -> bool:
    """True when the handle's process no longer runs (dead, reaped or a zombie)."""
    if handle.state == "dead":
        return True
    status = handle.status()
    return status is None or status == psutil.STATUS_ZOMBIE


def ensure_owned(pool: Pool, handle: WorkerHandle, fault: str) -> int:
    """The handle's pid if the pool owns it; a fault never signals a process it did not start."""
    pid = handle.pid
    if pid is None or not pool.owns(pid):
        raise FaultError(
            fault, f"slot {handle.index}: pid {pid} is not a worker of this pool; refusing to act"
        )
    return pid


async def serving(pool: Pool, handle: WorkerHandle) -> WorkerHandle | None:
    """The live incarnation of ``handle``'s slot: the handle itself if it serves, else the next
    one to serve (an earlier fault may have killed it). None if the slot does not come back."""
    if handle.state in ALIVE_STATES:
        return handle
    not_pid = handle.pid if handle.state in ("dead", "stopping") else None
    try:
        return await pool.wait_serving(handle.index, not_pid=not_pid, timeout=TARGET_WAIT)
    except (TimeoutError, ChaospoolError):
        return None


async def wait_status(
    handle: WorkerHandle, wanted: Callable[[str], bool], within: float = STATUS_WAIT
) -> str | None:
    """Poll psutil until the status satisfies ``wanted`` (bounded); return the last one seen."""
    status = handle.status()
    with anyio.move_on_after(within):
        while status is not None and not wanted(status):
            await anyio.sleep(0.005)
            status = handle.status()
    return status


async def wait_gone(handle: WorkerHandle, within: float = STATUS_WAIT) -> bool:
    """Poll until the handle's process is gone (bounded); whether it was seen gone."""
    await wait_status(handle, lambda s: s == psutil.STATUS_ZOMBIE, within)  # None: reaped
    return is_gone(handle)


class EventLog:
    """Pool events of the given kinds, from now until ``close()`` (idempotent), kept as counts
    per (kind, pid) plus the first event of each: what the faults read (a pid's crash, a
    slot's start, how many timeouts), in memory that does not grow with the step's length.

    The pool calls subscribers synchronously on its request path, so the callback only counts.
    """

    def __init__(self, pool: Pool, kinds: Iterable[str]) -> None:
        self.origin = now()
        self._kinds = frozenset(kinds)
        self._first: dict[tuple[str, int | None], PoolEvent] = {}
        self._counts: Counter[tuple[str, int | None]] = Counter()
        self._unsubscribe: Callable[[], None] | None = pool.subscribe(self._on_event,
                                                                        self._kinds)

    def _on_event(self, event: PoolEvent) -> None:
        if event.kind in self._kinds:
            key = (event.kind, event.pid)
            self._counts[key] += 1
            self._first.setdefault(key, event)

    def close(self) -> None:
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()

    def of(self, kind: str, pid: int | None = None, index: int | None = None) -> list[PoolEvent]:
        """The first event of ``kind`` of each matching pid, in arrival order."""
        return [
            e
            for (k, p), e in self._first.items()
            if k == kind and (pid is None or p == pid) and (index is None or e.index == index)
        ]

    def count(self, kind: str, pids: Iterable[int] | None = None) -> int:
        wanted = None if pids is None else set(pids)
        return sum(n for (k, p), n in self._counts.items()
                   if k == kind and (wanted is None or p in wanted))


def close_log(state: Mapping[str, Any], key: str = "log") -> EventLog | None:
    log = state.get(key)
    if isinstance(log, EventLog):
        log.close()
        return log
    return None


class RevertErrors:
    """Collects failures while reverting every target, so one failure never skips the rest;
    ``raise_if_any`` then reports them all as one FaultError."""

    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.messages: list[str] = []

    def add(self, handle: WorkerHandle, exc: BaseException) -> None:
        self.messages.append(f"slot {handle.index} (pid {handle.pid}): {type(exc).__name__}: {exc}")

    def raise_if_any(self) -> None:
        if self.messages:
            raise FaultError(self.fault, "revert failed: " + "; ".join(self.messages))


def step_duration(ctx_duration: float | None, params_duration: float) -> float:
    """The step's ``duration`` if it set one, else the fault's own default."""
    return params_duration if ctx_duration is None else ctx_duration


def pool_capacity(pool: Pool) -> int:
    """Every slot the pool may run at once: its core size plus its overflow."""
    config = pool.config
    return int(config.size) + int(config.max_overflow)


async def undo(
    handle: WorkerHandle, action: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """Run one target's undo step. A target that died (or is dying) is not a revert failure:
    whatever the fault did to it went with the process, so it is recorded, not raised."""
    if is_gone(handle):
        return {"worker_gone": True}
    try:
        return await action()
    except Exception:
        if is_gone(handle):
            return {"worker_gone": True}
        raise


async def live_targets(ctx: FaultContext, fault: str) -> list[WorkerHandle]:
    """The live, pool-owned incarnation of each target slot, in order. A slot that does not
    serve again in time is skipped (``ctx.state["skipped"]``, recorded as evidence)."""
    live: list[WorkerHandle] = []
    skipped: list[int] = ctx.state.setdefault("skipped", [])
    for target in ctx.targets:
        handle = await serving(ctx.pool, target)
        if handle is None:
            skipped.append(target.index)
            continue
        ensure_owned(ctx.pool, handle, fault)
        live.append(handle)
    return live


async def act_on(
    ctx: FaultContext, handle: WorkerHandle, action: Callable[..., Any], *args: Any
) -> tuple[bool, Any]:
    """``(True, action(*args))`` (awaited if async) on one target, or ``(False, None)`` if the
    target died before or while it acted -- a race with the pool or an earlier fault: the slot
    is recorded as skipped, not an error."""
    try:
        if is_gone(handle):
            # Killed a moment ago (psutil sees the zombie) while the pool still shows it
            # serving: a signal would still "succeed", and one kill would count twice.
            raise ProcessLookupError(f"worker {handle.pid} has exited")
        result = action(*args)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        # ESRCH from a signal proves the process is gone even before the pool (or psutil's
        # cache) has noticed: two faults killing one slot at the same instant race like this.
        if not (isinstance(exc, ProcessLookupError) or is_gone(handle)):
            raise
        ctx.state.setdefault("skipped", []).append(handle.index)
        return False, None
    return True, result
