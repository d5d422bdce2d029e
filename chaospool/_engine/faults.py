"""Running one scheduled fault: inject at its time, revert when its duration ends.

The revert runs in a ``finally`` under a shielded cancel scope, so it happens on success, on
an error in ``inject``, at the experiment's end and on SIGINT alike. An injection's journal
entry is built from what happened, never from what was planned.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from chaospool._engine.schedule import ScheduledStep, derive_rng
from chaospool.errors import ChaospoolError
from chaospool.fault import Fault, FaultContext
from chaospool.pool import Pool, WorkerHandle

__all__ = ("Injection", "run_injection", "wind_down")

# A revert that takes longer than this is abandoned with an error rather than hanging the run
# (and its SIGINT exit) forever; port_crash's revert waits for replacements, which take ms.
REVERT_TIMEOUT = 30.0
# Once the run ends (its duration, or an interrupt) a revert still running -- or starting now --
# gets this much longer, then is cut short: a revert that waits (port_crash waiting through an
# open circuit for its slot to serve again) must neither stretch the run past its duration nor
# the 10 s an interrupt may take (CONTRACT §2). The cut is evidence, not an error.
WIND_DOWN_GRACE = 2.0
# How long a step waits for a target slot between two incarnations (killed a moment ago).
SLOT_WAIT = 10.0


@dataclass
class Injection:
    """One fault injection and what happened to it."""

    scheduled: ScheduledStep
    fault: Fault
    seed: int
    ctx: FaultContext | None = None
    targets: list[dict[str, Any]] = field(default_factory=list)
    injected_at: float | None = None
    reverted_at: float | None = None
    error: str | None = None
    done: anyio.Event = field(default_factory=anyio.Event)
    revert_deadline: float = math.inf  # see wind_down
    revert_scope: anyio.CancelScope | None = None

    @property
    def active(self) -> bool:
        return self.injected_at is not None and self.reverted_at is None

    def step_duration(self) -> float | None:
        step = self.scheduled.step
        if step.duration is not None:
            return step.duration
        value = getattr(step.params, "duration", None)
        return float(value) if isinstance(value, int | float) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "fault": self.scheduled.fault,
            "name": self.scheduled.name,
            "at": self.scheduled.at,
            "targets": self.targets,
            "injected_at": self.injected_at,
            "reverted_at": self.reverted_at,
            "effect": dict(self.ctx.effect) if self.ctx else {},
            "error": self.error,
        }


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def resolve_targets(
    pool: Pool, scheduled: ScheduledStep, rng: random.Random | None = None
) -> list[WorkerHandle]:
    """The handles of a step the schedule gave no slots: none for a pool-level fault, the
    worker serving the session for a session target.

    A session nobody serves yet gets one core slot drawn with ``rng`` (the run's seed), as
    ``_faults/targets.resolve`` does: the fault still acts, and the journal names the slot.
    """
    target = scheduled.step.target
    if target.kind == "node" and target.node is not None:
        return node_targets(pool, target.node, scheduled.fault)
    if target.kind != "session" or target.session is None:
        return []  # a pool-level fault
    handle = pool.worker_for_session(target.session)
    if handle is None:
        core = [h for h in pool.workers if h.index < pool.config.size and _serving(h)]
        if not core:
            raise LookupError(f"no worker to serve session {target.session!r}")
        handle = (rng or random.Random(0)).choice(core)
    return [handle]


def node_targets(pool: Pool, node: int, fault: str) -> list[WorkerHandle]:
    """Every serving worker on cluster node ``node``; none for a node fault (it acts on the
    node itself, see chaospool/_faults/node_crash.py). LookupError if no worker runs there."""
    from chaospool._faults.nodes import NODE_FAULTS

    if fault in NODE_FAULTS:
        return []
    handles = [h for h in pool.workers if h.node == node and _serving(h)]
    if not handles:
        raise LookupError(f"no worker serves on node {node}")
    return handles


def _serving(handle: WorkerHandle) -> bool:
    # pool.workers shows a slot's last incarnation while it restarts: not a target
    return handle.pid is not None and handle.state not in ("dead", "stopping")


async def live_targets(
    pool: Pool, scheduled: ScheduledStep, rng: random.Random | None = None
) -> list[WorkerHandle]:
    """The handles serving the step's slots now (or :func:`resolve_targets` without slots).

    A slot between two incarnations (an earlier fault killed it a moment ago) is awaited,
    bounded, so that the journal's targets name the pid the fault acts on. LookupError if none
    serves."""
    if scheduled.slots is None:
        return resolve_targets(pool, scheduled, rng)
    by_index = {h.index: h for h in pool.workers}
    handles: list[WorkerHandle] = []
    for index in scheduled.slots:
        handle = by_index.get(index)
        if handle is None or not _serving(handle):
            with contextlib.suppress(TimeoutError, ChaospoolError):
                handle = await pool.wait_serving(index, timeout=SLOT_WAIT)
        if handle is not None and _serving(handle):
            handles.append(handle)
    if not handles:
        raise LookupError(f"no worker in slot(s) {list(scheduled.slots)} "
                          f"(none served within {SLOT_WAIT:g} s)")
    return handles


async def run_injection(
    inj: Injection,
    pool: Pool,
    clock: Callable[[], float],
    hooks: Any,
) -> None:
    """Wait for the step's time, inject, hold for its duration, and always revert."""
    await anyio.sleep(max(0.0, inj.scheduled.at - clock()))
    try:
        await _inject_and_hold(inj, pool, clock, hooks)
    finally:
        with anyio.CancelScope(shield=True):
            await _revert(inj, clock, hooks)


async def _inject_and_hold(
    inj: Injection, pool: Pool, clock: Callable[[], float], hooks: Any
) -> None:
    duration = inj.step_duration()
    try:
        targets = await live_targets(
            pool, inj.scheduled, derive_rng(inj.seed, f"session:{inj.scheduled.seq}"))
    except LookupError as exc:
        inj.error = _error_text(exc)
        return
    except anyio.get_cancelled_exc_class():
        # the run ended while the step waited for its slot: journaled, never silently dropped
        slots = list(inj.scheduled.slots or ())
        inj.error = f"LookupError: no worker in slot(s) {slots} before the run ended"
        raise
    inj.ctx = FaultContext(
        params=inj.scheduled.step.params,
        targets=targets,
        pool=pool,
        rng=derive_rng(inj.seed, f"fault:{inj.scheduled.seq}"),
        duration=duration,
        target=inj.scheduled.step.target,
    )
    inj.targets = [{"index": h.index, "pid": h.pid} for h in targets]
    hooks.before_fault(inj.scheduled, inj.ctx)
    inj.injected_at = clock()
    try:
        await inj.fault.inject(inj.ctx)
    except Exception as exc:  # reason: any fault (plugin ones too) may raise; it is journaled
        inj.error = _error_text(exc)
        return
    if duration is not None and math.isfinite(duration):
        await anyio.sleep(max(0.0, inj.injected_at + duration - clock()))


async def _revert(inj: Injection, clock: Callable[[], float], hooks: Any) -> None:
    if inj.ctx is None or inj.injected_at is None:
        inj.done.set()
        return  # never injected: nothing to revert
    inj.revert_scope = scope = anyio.CancelScope(deadline=inj.revert_deadline)
    try:
        with scope, anyio.fail_after(REVERT_TIMEOUT):
            await inj.fault.revert(inj.ctx)
    except Exception as exc:  # reason: journaled; the other faults are still reverted
        message = _error_text(exc)
        inj.error = f"{inj.error}; revert: {message}" if inj.error else message
    if scope.cancelled_caught:
        inj.ctx.record(revert_cut_short=True)
    inj.reverted_at = clock()
    inj.done.set()
    hooks.after_fault(inj.scheduled, inj.ctx, inj.to_dict())


def wind_down(injections: list[Injection], grace: float = WIND_DOWN_GRACE) -> None:
    """The run is ending: give every revert, running or yet to start, ``grace`` more seconds."""
    deadline = anyio.current_time() + grace
    for inj in injections:
        inj.revert_deadline = min(inj.revert_deadline, deadline)
        if inj.revert_scope is not None:
            inj.revert_scope.deadline = inj.revert_deadline
