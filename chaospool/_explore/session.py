"""Explore and shrink, end to end: draw and run schedules; cut the failing one down.

Both report through a ``say(line)`` callback (the CLI prints, the pytest helper collects) and
return a result the caller turns into files, lines and an exit code (docs/explore.md).
"""

from __future__ import annotations

import functools
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from chaospool._dsl.model import Experiment
from chaospool._engine.run import Progress
from chaospool._engine.session import Loaded, resolve_seed
from chaospool._explore.document import Base
from chaospool._explore.draw import Drawn, draw_schedules, explore_spec
from chaospool._explore.runner import Outcome, Runner, Tol, tolerance_text
from chaospool._explore.shrink import Shrinker, Verdict, k_of_n
from chaospool._explore.steps import Candidate, from_experiment, schedule_text, step_text
from chaospool.errors import ExperimentError
from chaospool.fault import Fault

__all__ = (
    "ExploreResult",
    "Finding",
    "Interrupted",
    "ShrinkOptions",
    "ShrinkResult",
    "explore",
    "explore_source",
    "minimal_comments",
    "reproduction",
    "shrink",
)

Say = Callable[[str], None]
ProgressFor = Callable[[Drawn], Callable[[Progress], None] | None]


class Interrupted(Exception):
    """A run ended aborted (SIGINT/SIGTERM): stop exploring or shrinking at once."""


@dataclass
class ExploreResult:
    """``found``: the first schedule that deviated (``outcome`` its run); ``outcome`` with status
    failed/aborted: the run that stopped the search; ``tried``: schedules run."""

    seed: int
    planned: int
    tried: int = 0
    found: Drawn | None = None
    outcome: Outcome | None = None


def worker_commands(experiment: Experiment) -> frozenset[str] | None:
    """The worker module's commands (imported in a child process, as validation does, from the
    experiment's search directories), built-in ones included; None when it cannot be imported
    (the run will say why)."""
    from chaospool._dsl.search_path import experiment_dirs

    return _commands(experiment.pool.worker, experiment_dirs(experiment))


@functools.lru_cache(maxsize=8)
def _commands(worker: str, dirs: tuple[str, ...]) -> frozenset[str] | None:
    from chaospool._dsl.worker_check import probe_worker
    from chaospool._worker.builtins import COMMANDS

    found = probe_worker(worker, path=[*dirs, *sys.path]).commands
    return None if found is None else found | frozenset(COMMANDS)


async def explore(
    loaded: Loaded,
    base: Base,
    *,
    seed: int | None,
    budget: int | None = None,
    only: int | None = None,
    stop: anyio.Event | None = None,
    say: Say = lambda line: None,
    progress_for: ProgressFor = lambda drawn: None,
) -> ExploreResult:
    """Run schedules 1..budget (or only ``only``) until one deviates, fails or is interrupted."""
    root = resolve_seed(loaded.experiment, seed)
    count = only or budget or explore_spec(loaded.experiment).budget
    drawn = draw_schedules(loaded.experiment, loaded.registry, root, count,
                           worker_commands(loaded.experiment))
    schedules = [d for d in drawn if only is None or d.number == only]
    result = ExploreResult(root, len(schedules))
    runner = Runner(base, loaded, stop)
    for item in schedules:
        outcome = await runner.run(item.candidate, item.seed, on_progress=progress_for(item))
        result.tried, result.outcome = result.tried + 1, outcome
        say(_verdict_line(item, outcome, count, result.tried - 1, loaded))
        if outcome.status != "completed" or outcome.deviated:
            result.found = item if outcome.deviated else None
            return result
    return result


def _verdict_line(item: Drawn, outcome: Outcome, count: int, passed: int, loaded: Loaded) -> str:
    faults = schedule_text(item.candidate.steps, loaded.registry)
    if outcome.status != "completed":
        verdict = f"run {outcome.status}"
    elif outcome.failed:
        verdict = "FAILED " + tolerance_text(outcome.journal, outcome.failed[0])
    else:
        verdict = "ok"
    return (f"schedule {item.number}/{count}: {faults} -> {verdict} "
            f"({passed} passed before it)")


# -- shrink -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShrinkOptions:
    runs: int = 3
    min_fails: int = 2
    time_limit: float = 600.0
    max_runs: int = 500


@dataclass
class ShrinkResult:
    """``target`` None: the input did not fail in min_fails of runs (``status`` says how the
    runs went: ``failed`` when one could not run). Else ``best`` fails ``target`` and
    ``confirmed`` of ``options.runs`` confirmation runs reproduced it."""

    seed: int
    initial: Candidate
    options: ShrinkOptions
    target: Tol | None = None
    target_text: str = ""
    best: Candidate | None = None
    confirmed: int = 0
    runs_used: int = 0
    elapsed: float = 0.0
    status: str = "completed"
    helped: dict[str, int] = field(default_factory=dict)


async def shrink(
    loaded: Loaded,
    base: Base,
    *,
    options: ShrinkOptions,
    stop: anyio.Event | None = None,
    say: Say = lambda line: None,
) -> ShrinkResult:
    """Reduce ``loaded``'s experiment to a minimal one that fails the same tolerance."""
    started = time.monotonic()
    seed = resolve_seed(loaded.experiment, None)
    initial = from_experiment(loaded.experiment, loaded.schedule(seed), loaded.registry)
    result = ShrinkResult(seed, initial, options)
    runner = Runner(base, loaded, stop)
    await _find_target(runner, result)
    if result.target is not None:
        say(f"shrink: target {result.target_text}; {len(initial.steps)} step(s) to cut down")
        await _shrink_to_best(runner, result, loaded, started, say)
        result.confirmed = await _confirm(runner, result)
    result.runs_used, result.elapsed = runner.runs, time.monotonic() - started
    return result


async def _find_target(runner: Runner, result: ShrinkResult) -> None:
    """Run the input up to ``runs`` times; the tolerance it fails most often, if that is at
    least ``min_fails`` times, is the target every candidate must fail too."""
    options, seen = result.options, Counter[Tol]()
    for used in range(1, options.runs + 1):
        outcome = await _checked(runner.run(result.initial, result.seed))
        if outcome.status == "failed":
            result.status = "failed"
        seen.update(outcome.failed if outcome.status == "completed" else ())
        top = seen.most_common(1)
        if top and top[0][1] >= options.min_fails:
            result.target, result.target_text = top[0][0], tolerance_text(outcome.journal,
                                                                          top[0][0])
            return
        if (top[0][1] if top else 0) + options.runs - used < options.min_fails:
            return


async def _checked(run: Any) -> Outcome:
    outcome: Outcome = await run
    if outcome.status == "aborted":
        raise Interrupted
    return outcome


async def _shrink_to_best(
    runner: Runner, result: ShrinkResult, loaded: Loaded, started: float, say: Say
) -> None:
    options, target = result.options, result.target
    assert target is not None

    def exhausted() -> bool:
        return (time.monotonic() - started >= options.time_limit
                or runner.runs >= options.max_runs)

    async def test(candidate: Candidate) -> bool:
        try:
            runner.experiment(candidate, result.seed)
        except ExperimentError:
            return False  # not a valid experiment (a parameter out of range): never run

        async def once() -> tuple[bool, bool]:
            outcome = await _checked(runner.run(candidate, result.seed))
            return target in outcome.failed, outcome.status != "completed" or bool(outcome.failed)

        verdict, _used = await k_of_n(once, options.runs, options.min_fails)
        return verdict is Verdict.FAILS

    def better(candidate: Candidate) -> None:
        say(f"shrink: {len(candidate.steps)} step(s), run {candidate.duration:g}s "
            f"[{runner.runs} runs]: " + schedule_text(candidate.steps, loaded.registry))

    shrinker = Shrinker(result.initial, test, size=loaded.experiment.pool.size,
                        registry=loaded.registry, exhausted=exhausted, on_better=better)
    result.best = await shrinker.shrink()
    result.helped = dict(shrinker.helped)


async def _confirm(runner: Runner, result: ShrinkResult) -> int:
    """Run the best ``runs`` times in full: the reproduction rate written in the file."""
    assert result.best is not None
    assert result.target is not None
    fails = 0
    for _ in range(result.options.runs):
        outcome = await _checked(runner.run(result.best, result.seed))
        fails += result.target in outcome.failed
    return fails


def reproduction(result: ShrinkResult) -> str:
    """``failed success_rate (overall) in 3 of 3 confirmation runs``."""
    assert result.target is not None
    return (f"failed {result.target[0]} ({result.target[1]}) in {result.confirmed} of "
            f"{result.options.runs} confirmation runs")


def minimal_comments(result: ShrinkResult, source: str, registry: Mapping[str, type[Fault]]
                     ) -> list[str]:
    """The minimal file's header: what it fails, how often, and what shrinking removed."""
    before, after = result.initial, result.best
    assert after is not None

    def lines(steps: tuple[Any, ...]) -> list[str]:
        return [f"  - {step_text(s, registry.get(s.fault))}" for s in steps] or ["  (none)"]

    return [
        f"chaospool shrink: minimal experiment from {source}",
        f"fails: {result.target_text}",
        f"reproduction: {reproduction(result)} (seed {result.seed})",
        f"removed: {len(before.steps) - len(after.steps)} of {len(before.steps)} step(s); "
        f"run {before.duration:g}s -> {after.duration:g}s",
        "before:", *lines(before.steps),
        "after:", *lines(after.steps),
        f"shrink: {result.runs_used} runs in {result.elapsed:.1f}s",
        "run it: chaospool run FILE",
    ]


@dataclass
class Finding:
    """What :func:`explore_source` found: the explore result, the failing schedule as YAML and,
    when shrunk, the shrink result and the minimal experiment as YAML."""

    explored: ExploreResult
    failing_text: str | None = None
    shrunk: ShrinkResult | None = None
    minimal_text: str | None = None


async def explore_source(
    source: Any,
    *,
    seed: int | None = None,
    budget: int | None = None,
    shrink_options: ShrinkOptions | None = None,
    stop: anyio.Event | None = None,
    say: Say = lambda line: None,
) -> Finding:
    """Explore a path or mapping; shrink what fails unless ``shrink_options`` is None."""
    from chaospool._engine.session import load_with_plugins
    from chaospool._explore.document import base_of

    loaded = load_with_plugins(source)
    base = base_of(source, loaded.experiment)
    name = loaded.experiment.path or "<mapping>"
    explored = await explore(loaded, base, seed=seed, budget=budget, stop=stop, say=say)
    finding = Finding(explored)
    if explored.found is None:
        return finding
    found = explored.found
    finding.failing_text = base.text(found.candidate, found.seed, loaded.registry, comments=[
        f"chaospool explore: schedule {found.number} of seed {explored.seed} from {name}"])
    if shrink_options is None:
        return finding
    failing = Runner(base, loaded).experiment(found.candidate, found.seed)
    shrunk = await shrink(load_with_plugins(failing), base, options=shrink_options, stop=stop,
                          say=say)
    finding.shrunk = shrunk
    if shrunk.best is not None:
        finding.minimal_text = base.text(shrunk.best, shrunk.seed, loaded.registry,
                                         comments=minimal_comments(shrunk, name, loaded.registry))
    return finding
