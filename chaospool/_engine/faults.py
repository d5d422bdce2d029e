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
from chaospool._faults.targets import session_slots
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
# the 10 s an interrupt may take (docs/getting-started.md, exit codes). The cut is evidence,
# not an error.
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
    inject_ended: bool = False  # False: inject was cancelled (the run ended) mid-way
    # told "injected", "reverted" and "settled" as they happen (live phases, the history)
    listener: Callable[[str, Injection], None] | None = None

    def notify(self, what: str) -> None:
        if self.listener is not None:
            self.listener(what, self)

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


def run_time_slots(pool: Pool, scheduled: ScheduledStep, rng: random.Random) -> tuple[int, ...]:
    """The slots of a step the schedule left open (``targets.session_slots``): the slot
    serving a session target -- or one drawn with ``rng`` (the run's seed) while nobody serves
    it -- and none for a pool-level fault."""
    target = scheduled.step.target
    if target.kind == "node" and target.node is not None:
        return tuple(h.index for h in node_targets(pool, target.node, scheduled.fault))
    handle = pool.worker_for_session(target.session) if target.session is not None else None
    serving = handle.index if handle is not None else None
    return session_slots(target, int(pool.config.size), rng, serving)


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
    pool: Pool, scheduled: ScheduledStep, rng: random.Random
) -> list[WorkerHandle]:
    """The handles serving the step's slots now (the schedule's, or :func:`run_time_slots`).

    A slot between two incarnations (an earlier fault killed it a moment ago) is awaited,
    bounded, so that the journal's targets name the pid the fault acts on. LookupError if none
    serves."""
    slots = scheduled.slots
    if slots is None:
        slots = run_time_slots(pool, scheduled, rng)
        if not slots:
            return []  # a pool-level fault
    handles = await _serving_handles(pool, slots)
    if not handles:
        raise LookupError(f"no worker in slot(s) {list(slots)} "
                          f"(none served within {SLOT_WAIT:g} s)")
    return handles


async def _serving_handles(pool: Pool, slots: tuple[int, ...]) -> list[WorkerHandle]:
    by_index = {h.index: h for h in pool.workers}
    handles: list[WorkerHandle] = []
    for index in slots:
        handle = by_index.get(index)
        if handle is None or not _serving(handle):
            with contextlib.suppress(TimeoutError, ChaospoolError):
                handle = await pool.wait_serving(index, timeout=SLOT_WAIT)
        if handle is not None and _serving(handle):
            handles.append(handle)
    return handles


async def sleep_until(clock: Callable[[], float], deadline: float) -> None:
    """Sleep until ``clock()`` reaches ``deadline`` (the run's clock, not the loop's).

    Why a loop: the event loop's timers are not the run's clock, and libuv's (uvloop) resolve
    to 1 ms, so one ``sleep`` can end up to a millisecond early -- a fault reverted at 0.9996 s
    of a 1 s run, a step injected before its ``at``.
    """
    while (left := deadline - clock()) > 0:  # noqa: ASYNC110  reason: a deadline, not an event
        await anyio.sleep(left)


async def run_injection(
    inj: Injection,
    pool: Pool,
    clock: Callable[[], float],
    hooks: Any,
) -> None:
    """Wait for the step's time, inject, hold for its duration, and always revert."""
    await sleep_until(clock, inj.scheduled.at)
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
    inj.notify("injected")
    try:
        await inj.fault.inject(inj.ctx)
    except Exception as exc:  # reason: any fault (plugin ones too) may raise; it is journaled
        inj.error = _error_text(exc)
    inj.inject_ended = True  # not reached when a cancellation (the run ended) passes through
    if inj.error is not None:
        return
    if duration is not None and math.isfinite(duration):
        await sleep_until(clock, inj.injected_at + duration)


async def _revert(inj: Injection, clock: Callable[[], float], hooks: Any) -> None:
    if inj.ctx is None or inj.injected_at is None:
        inj.done.set()
        inj.notify("settled")
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
    if scope.cancelled_caught or not inj.inject_ended:
        # cut short: its evidence is incomplete, so its proof is not checked (docs/faults.md)
        inj.ctx.effect.pop("took_effect", None)
        inj.ctx.effect.pop("took_effect_reason", None)
    _check_effect(inj)
    inj.reverted_at = clock()
    inj.notify("reverted")
    inj.notify("settled")
    inj.done.set()
    hooks.after_fault(inj.scheduled, inj.ctx, inj.to_dict())


def _check_effect(inj: Injection) -> None:
    """A fault that saw its effect fail to happen fails its step, with its reason
    (docs/faults.md, "Every fault proves it took effect"); absent means not checked."""
    effect = inj.ctx.effect if inj.ctx is not None else {}
    if effect.get("took_effect") is not False:
        return
    text = f"did not take effect: {effect.get('took_effect_reason') or 'no reason given'}"
    inj.error = f"{inj.error}; {text}" if inj.error else text


def wind_down(injections: list[Injection], grace: float = WIND_DOWN_GRACE) -> None:
    """The run is ending: give every revert, running or yet to start, ``grace`` more seconds."""
    deadline = anyio.current_time() + grace
    for inj in injections:
        inj.revert_deadline = min(inj.revert_deadline, deadline)
        if inj.revert_scope is not None:
            inj.revert_scope.deadline = inj.revert_deadline
