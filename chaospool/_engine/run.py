"""The run loop: start the pool, drive the probe, inject and revert faults, write the journal.

Rollback guarantee: every injected fault is reverted (shielded ``finally`` in
:mod:`chaospool._engine.faults`) and every worker reaped (the pool's ``async with``) whether the
run completes, a fault raises, an exception escapes or the run is cancelled (SIGINT/SIGTERM).
The journal is assembled in every one of those cases.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from chaospool._dsl.model import Experiment
from chaospool._engine.events import KEPT_KINDS, EventLog
from chaospool._engine.faults import Injection, run_injection, sleep_until, wind_down
from chaospool._engine.schedule import (
    ScheduledStep,
    derive_rng,
    pool_level_predicate,
    schedule,
)
from chaospool.errors import ChaospoolError
from chaospool.fault import Fault
from chaospool.pool import Pool

__all__ = ("Progress", "RunState", "draw_seed", "prepare", "run_experiment")

# How often the live progress callback is fed; a display refreshes no faster anyway.
PROGRESS_INTERVAL = 0.25
# An instant fault (a kill) is shown this long after it happened, or no one would see it.
RECENT_FAULT = 2.0


@dataclass(frozen=True)
class Progress:
    """A snapshot for live displays."""

    elapsed: float
    total: float
    ops: int
    success_rate: float | None
    active_faults: tuple[str, ...]
    faults_done: int = 0  # injections reverted (or failed) of faults_total
    faults_total: int = 0
    restarts: int = 0
    errors: int = 0
    recent_faults: tuple[str, ...] = ()  # ended within RECENT_FAULT seconds: a kill is instant


@dataclass
class RunState:
    """What a run accumulates; turned into the journal at the end, whatever the ending."""

    experiment: Experiment
    seed: int
    status: str = "completed"
    error: str | None = None
    started_at: str = ""
    ended_at: str = ""
    t0: float = 0.0
    end: float = 0.0
    injections: list[Injection] = field(default_factory=list)
    restarts_at_start: int = 0
    restarts_at_end: int = 0
    restart_times: list[float] = field(default_factory=list)
    replay: tuple[str, ...] = ()  # --set/--plugin arguments for the reproduce command
    probe: Any = None
    history: Any = None  # a HistoryWriter (--history), closed by whoever opened it
    events: EventLog = field(default_factory=EventLog)  # the pool's reactions (journal)

    def clock(self) -> float:
        return time.monotonic() - self.t0


def draw_seed() -> int:
    """A fresh seed when the experiment names none (recorded in the journal)."""
    return random.SystemRandom().randrange(2**31)


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def build_injections(
    steps: tuple[ScheduledStep, ...], registry: dict[str, type[Fault]], seed: int
) -> list[Injection]:
    return [Injection(s, registry[s.fault](), seed) for s in steps]


def prepare(
    experiment: Experiment, *, seed: int, registry: dict[str, type[Fault]]
) -> RunState:
    """Resolve the schedule (pure) and create the run's state; nothing is started."""
    state = RunState(experiment, seed)
    steps = schedule(experiment, seed, acts_on_pool=pool_level_predicate(registry))
    state.injections = build_injections(steps, registry, seed)
    return state


async def run_experiment(
    state: RunState,
    *,
    hooks: Any,
    stop: anyio.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> None:
    """Run to the experiment's end, or until ``stop`` is set (status ``aborted``).

    Never raises for a failing fault or a pool that cannot start: those set
    ``status = "failed"`` and ``error``. Every fault is reverted and every worker reaped
    before this returns, however it ends.
    """
    state.started_at = _now_iso()
    try:
        async with anyio.create_task_group() as tg:
            if stop is not None:
                tg.start_soon(_abort_on, stop, state, tg.cancel_scope)
            try:
                await _run_with_pool(state, hooks, on_progress)
            except Exception as exc:
                error = _chaospool_error(exc)
                if error is None:
                    raise
                state.status, state.error = "failed", f"{type(error).__name__}: {error}"
            tg.cancel_scope.cancel()
    finally:
        state.ended_at = _now_iso()
        if not state.end:
            state.end = state.clock() if state.t0 else 0.0
        if state.status == "completed" and any(i.error for i in state.injections):
            state.status = "failed"


def _chaospool_error(exc: BaseException) -> ChaospoolError | None:
    """The chaospool error inside ``exc`` (task groups wrap errors in exception groups)."""
    if isinstance(exc, ChaospoolError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _chaospool_error(inner)
            if found is not None:
                return found
    return None


async def _abort_on(stop: anyio.Event, state: RunState, scope: anyio.CancelScope) -> None:
    await stop.wait()
    state.status = "aborted"
    wind_down(state.injections)
    scope.cancel()


async def _run_with_pool(
    state: RunState, hooks: Any, on_progress: Callable[[Progress], None] | None
) -> None:
    from chaospool._probe import Probe  # imported here: the probe pulls in hdrhistogram

    experiment = state.experiment
    recorder = _live_recorder(state)
    async with Pool(**experiment.pool.pool_kwargs()) as pool:
        _refuse_unknown_commands(experiment, pool)
        unsubscribe = hooks.subscribe_pool(pool)
        unsubscribe_restarts = pool.subscribe(lambda ev: _note_restart(state, ev),
                                              kinds=KEPT_KINDS | {"restart"})
        try:
            state.restarts_at_start = pool.stats().restarts
            hooks.experiment_start(experiment, state.seed)
            state.probe = Probe(pool, experiment.load, derive_rng(state.seed, "probe"),
                                state.clock, recorder=recorder, history=state.history)
            state.t0 = time.monotonic()
            await _drive(state, pool, hooks, on_progress)
            state.end = state.clock()
        finally:
            state.restarts_at_end = pool.stats().restarts
            unsubscribe_restarts()
            unsubscribe()


def _live_recorder(state: RunState) -> Any:
    """The probe's aggregator, its phases fed by the injections as they happen (flat memory
    whatever the run's length: docs/design.md, "Long runs")."""
    from chaospool._probe import Aggregator, PhaseClock, bucket_width

    phases = PhaseClock(len(state.injections))
    for inj in state.injections:
        inj.listener = lambda what, inj: _on_fault(state, phases, what, inj)
    return Aggregator(bucket_width(state.experiment.duration), phases)


def _on_fault(state: RunState, phases: Any, what: str, inj: Injection) -> None:
    if what == "injected" and inj.injected_at is not None:
        phases.injected(inj.injected_at)
        if state.history is not None:
            state.history.nemesis("start", _nemesis_value(inj), inj.injected_at)
    elif what == "reverted" and inj.reverted_at is not None:
        phases.reverted(inj.reverted_at)
        if state.history is not None:
            state.history.nemesis("stop", _nemesis_value(inj), inj.reverted_at)
    elif what == "settled":
        phases.settled()


def _nemesis_value(inj: Injection) -> dict[str, Any]:
    return {"fault": inj.scheduled.fault, "name": inj.scheduled.name, "targets": inj.targets}


def _refuse_unknown_commands(experiment: Experiment, pool: Pool) -> None:
    """Stop before any load when the worker lacks a command of the mix: every call of it would
    be refused, and the run would read as the pool's failure (validation checks this too; an
    Experiment built in code, or a worker changed since, reaches here)."""
    from chaospool._worker.builtins import COMMANDS as BUILTIN_COMMANDS

    known = set(getattr(pool, "commands", None) or ())
    # every worker also serves the built-in commands (chaospool.incr, chaospool.read)
    missing = sorted({e.command for e in experiment.load.mix} - known - set(BUILTIN_COMMANDS)) \
        if known else []
    if missing:
        raise ChaospoolError(
            f"worker {experiment.pool.worker!r} has no command {', '.join(map(repr, missing))} "
            f"named in load.mix (it has: {', '.join(sorted(known))}): nothing was run")


def _note_restart(state: RunState, event: Any) -> None:
    # only replacements after the clock started count: warm-up is not part of any phase
    if event.kind == "restart" and state.t0:
        state.restart_times.append(event.time - state.t0)
    state.events.note(event, state.t0)


async def _drive(
    state: RunState, pool: Pool, hooks: Any, on_progress: Callable[[Progress], None] | None
) -> None:
    duration = state.experiment.duration
    async with anyio.create_task_group() as tg:
        faults_scope = anyio.CancelScope()
        tg.start_soon(_run_faults, state, pool, hooks, faults_scope)
        tg.start_soon(_end_faults_at, state, duration, faults_scope)
        if on_progress is not None:
            tg.start_soon(_feed_progress, state, on_progress)
        # the probe returns once every operation it started has its outcome
        await state.probe.run(duration)
        # faults still holding their duration are reverted now (revert itself is shielded)
        wind_down(state.injections)
        faults_scope.cancel()
        tg.cancel_scope.cancel()


async def _end_faults_at(state: RunState, duration: float, scope: anyio.CancelScope) -> None:
    """The run's time is up: faults still holding their duration are reverted now, while the
    probe drains its in-flight calls -- not after, or a fault outlasting the run (a stopped
    worker, say) would hold those calls, and the run, until their timeouts."""
    await sleep_until(state.clock, duration)
    wind_down(state.injections)
    scope.cancel()


async def _run_faults(
    state: RunState, pool: Pool, hooks: Any, scope: anyio.CancelScope
) -> None:
    with scope:
        async with anyio.create_task_group() as tg:
            for inj in state.injections:
                tg.start_soon(run_injection, inj, pool, state.clock, hooks)


async def _feed_progress(state: RunState, on_progress: Callable[[Progress], None]) -> None:
    while True:
        on_progress(_progress(state))
        await anyio.sleep(PROGRESS_INTERVAL)


def _progress(state: RunState) -> Progress:
    recorder = state.probe.recorder
    ops = len(recorder)  # O(1): the aggregator's running counts
    ok = recorder.succeeded
    active = tuple(i.scheduled.name for i in state.injections if i.active)
    rate = ok / ops if ops else None
    now = state.clock()
    done = [i for i in state.injections if i.reverted_at is not None or i.error is not None]
    recent = tuple(i.scheduled.name for i in done
                   if i.reverted_at is not None and now - i.reverted_at < RECENT_FAULT)
    return Progress(min(now, state.experiment.duration), state.experiment.duration,
                    ops, rate, active, faults_done=len(done),
                    faults_total=len(state.injections), restarts=len(state.restart_times),
                    errors=ops - ok, recent_faults=recent)
