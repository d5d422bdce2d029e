"""``chaospool explore`` and ``chaospool shrink`` (docs/explore.md): the commands, their output
lines and exit codes. Registered on the main group by ``chaospool.cli``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

__all__ = ("register",)

EXIT_OK, EXIT_DEVIATED, EXIT_INVALID, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_FAILING = "chaospool-failing.yaml"
DEFAULT_MINIMAL = "chaospool-minimal.yaml"


def register(group: click.Group) -> None:
    group.add_command(explore_command)
    group.add_command(shrink_command)


def _writable(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from chaospool.cli import _writable as check

    return check(ctx, param, value)


def _duration(_ctx: click.Context, param: click.Parameter, value: str) -> float:
    from chaospool._dsl.units import parse_duration

    try:
        return float(parse_duration(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None


def _load(path: str) -> Any:
    from chaospool.cli import _load_all, _user_modules_importable

    _user_modules_importable()  # worker modules in the current directory, as for run
    if not Path(path).is_file():
        _invalid([f"{path}:1:1: no such file"])
    return _load_all([path], (), ())[0]


def _engine_loop() -> Any:
    from chaospool._engine import loop

    try:
        loop.choose(None)
    except loop.LoopChoiceError as exc:
        _invalid([f"chaospool: {exc}"])
    return loop


def _invalid(lines: list[str]) -> None:
    from chaospool.cli import _fail_invalid

    _fail_invalid(lines)


def _run_stoppable(work: Callable[[Any], Any]) -> Any:
    """Run ``work(stop)`` in an event loop with SIGINT/SIGTERM setting ``stop`` (runs abort,
    every fault is reverted and every worker reaped, as for ``run``)."""
    import anyio

    from chaospool._explore.session import Interrupted
    from chaospool.cli import _catch_early_signals, _watch_signals

    async def main() -> Any:
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_watch_signals, stop, False)
            try:
                return await work(stop)
            except Interrupted:
                return None
            finally:
                tg.cancel_scope.cancel()

    _catch_early_signals()
    result = _engine_loop().run(main)  # the loop run uses (uvloop where installed)
    _catch_early_signals()
    return result


class _Live:
    """Live progress of the schedule running now, on a TTY only; closed before a line prints."""

    def __init__(self, quiet: bool, registry: Any, count: int) -> None:
        self.quiet, self.registry, self.count = quiet, registry, count
        self.started = 0  # explore stops at the first failure: every earlier schedule passed
        self.live: Any = None

    def say(self, line: str) -> None:
        self.close()
        click.echo(line)

    def close(self) -> None:
        if self.live is not None:
            self.live.close()
            self.live = None

    def progress_for(self, drawn: Any) -> Any:
        from chaospool._report.terminal import LiveProgress

        self.close()
        self.started += 1
        # short: the live line has one narrow title column; the full steps print after the run
        faults = "+".join(step.fault for step in drawn.candidate.steps) or "no faults"
        title = f"schedule {drawn.number}/{self.count} {faults} ({self.started - 1} ok so far)"
        self.live = LiveProgress(total=drawn.candidate.duration, title=title,
                                 enabled=not self.quiet).__enter__()
        live = self.live

        def update(p: Any) -> None:
            live.update(elapsed=p.elapsed, ops=p.ops, success_rate=p.success_rate,
                        active_faults=p.active_faults)

        return update


@contextmanager
def _live(quiet: bool, registry: Any, count: int) -> Iterator[_Live]:
    live = _Live(quiet, registry, count)
    try:
        yield live
    finally:
        live.close()


def _shrink_options(prefix: str) -> Callable[[Any], Any]:
    """The options that steer a shrink: ``shrink`` takes them, and ``explore`` hands them to the
    shrink that follows a failing schedule (``prefix`` says so in its help)."""
    options = (
        click.option("--runs", type=click.IntRange(min=1), default=3, show_default=True,
                     help=f"{prefix}runs per candidate"),
        click.option("--min-fails", type=click.IntRange(min=1), default=2, show_default=True,
                     help=f"{prefix}a candidate still fails when it fails the tolerance in at "
                          "least N runs"),
        click.option("--time-limit", default="10m", show_default=True, callback=_duration,
                     help=f"{prefix}stop and keep the best so far"),
        click.option("--max-runs", type=click.IntRange(min=1), default=500, show_default=True,
                     help=f"{prefix}stop after this many runs, keeping the best so far"),
    )

    def apply(command: Any) -> Any:
        for option in reversed(options):  # decorators apply bottom-up: keep the listed order
            command = option(command)
        return command

    return apply


# -- explore ----------------------------------------------------------------------------------


@click.command("explore")
@click.argument("experiment", type=click.Path(dir_okay=False))
@click.option("--seed", type=int, help="root seed (schedule k is a function of it and k)")
@click.option("--budget", type=click.IntRange(min=1), help="schedules at most")
@click.option("--schedule", "only", type=click.IntRange(min=1), metavar="K",
              help="run only schedule K (1-based) of this seed")
@click.option("--no-shrink", is_flag=True, help="do not shrink the failing schedule")
@click.option("--out", default=DEFAULT_FAILING, show_default=True, callback=_writable,
              help="where the failing schedule goes")
@click.option("--dry-run", is_flag=True,
              help="print the schedules as YAML documents; start nothing")
@click.option("--journal", "journal_path", default="chaospool-journal.json", show_default=True,
              callback=_writable, help="the failing run's journal ('-' = stdout)")
@click.option("--quiet", "-q", is_flag=True, help="no live progress")
@_shrink_options("shrink: ")
def explore_command(
    experiment: str,
    seed: int | None,
    budget: int | None,
    only: int | None,
    no_shrink: bool,
    out: str,
    dry_run: bool,
    journal_path: str,
    quiet: bool,
    runs: int,
    min_fails: int,
    time_limit: float,
    max_runs: int,
) -> None:
    """Draw fault schedules from the experiment's explore: section and run them until one fails
    a tolerance; write it (and, unless --no-shrink, a minimal one) as runnable experiments."""
    from chaospool._engine.session import resolve_seed
    from chaospool._explore.document import base_of

    if not dry_run:
        from chaospool.cli import _catch_early_signals

        _catch_early_signals()
    loaded = _load(experiment)
    base = base_of(experiment, loaded.experiment)
    root = resolve_seed(loaded.experiment, seed)
    if only is not None:
        _check_schedule_exists(experiment, loaded, root, only)
    if dry_run:
        _dry_run(experiment, loaded, base, root, budget, only)
        return
    _check_min_fails(runs, min_fails)
    shrink_args = None if no_shrink else _ShrinkArgs(
        str(Path(out).parent / DEFAULT_MINIMAL), runs, min_fails, time_limit, max_runs)
    sys.exit(_explore(experiment, loaded, base, root, budget, only, shrink_args, out,
                      journal_path, quiet))


def _check_schedule_exists(experiment: str, loaded: Any, root: int, only: int) -> None:
    from chaospool._explore.draw import draw_schedules
    from chaospool._explore.session import worker_commands

    drawn = draw_schedules(loaded.experiment, loaded.registry, root, only,
                           worker_commands(loaded.experiment))
    if len(drawn) < only:
        _invalid([f"{experiment}: there is no schedule {only}: the explore: section allows "
                  f"only {len(drawn)} different schedules"])


def _check_min_fails(runs: int, min_fails: int) -> None:
    if min_fails > runs:
        raise click.BadParameter(f"--min-fails {min_fails} exceeds --runs {runs}",
                                 param_hint="--min-fails")


def _replay(experiment: str, seed: int, number: int) -> str:
    return f"chaospool explore {experiment} --seed {seed} --schedule {number}"


def _dry_run(experiment: str, loaded: Any, base: Any, root: int, budget: int | None,
             only: int | None) -> None:
    from chaospool._explore.draw import draw_schedules, explore_spec
    from chaospool._explore.session import worker_commands

    count = only or budget or explore_spec(loaded.experiment).budget
    drawn = [d for d in draw_schedules(loaded.experiment, loaded.registry, root, count,
                                       worker_commands(loaded.experiment))
             if only is None or d.number == only]
    docs = [base.text(d.candidate, d.seed, loaded.registry,
                      comments=[f"chaospool explore: schedule {d.number} of seed {root} "
                                f"({len(d.candidate.steps)} step(s))",
                                f"replay: {_replay(experiment, root, d.number)}"],
                      out_dir=None)  # stdout has no place: paths absolute, runnable anywhere
            for d in drawn]
    click.echo("---\n".join(docs), nl=False)


def _explore(experiment: str, loaded: Any, base: Any, root: int, budget: int | None,
             only: int | None, shrink_args: _ShrinkArgs | None, out: str, journal_path: str,
             quiet: bool) -> int:
    from chaospool._engine.session import write_journal
    from chaospool._explore.draw import explore_spec
    from chaospool._explore.session import explore

    count = only or budget or explore_spec(loaded.experiment).budget
    with _live(quiet, loaded.registry, count) as live:
        result = _run_stoppable(lambda stop: explore(
            loaded, base, seed=root, budget=budget, only=only, stop=stop, say=live.say,
            progress_for=live.progress_for))
    if result is None or (result.outcome is not None and result.outcome.status == "aborted"):
        _write_aborted(result, journal_path)
        return EXIT_INTERRUPTED
    if result.outcome is not None and result.outcome.status == "failed":
        write_journal(result.outcome.journal, journal_path)
        click.echo(f"the run failed: {result.outcome.journal.get('error') or 'a fault raised'}"
                   f" (journal: {journal_path})")
        click.echo(f"replay: {_replay(experiment, root, result.tried)}")
        return EXIT_FAILED
    if result.found is None:
        click.echo(f"explore: no schedule failed a tolerance ({result.tried} run, seed {root})")
        return EXIT_OK
    write_journal(result.outcome.journal, journal_path)
    return _found(experiment, loaded, base, root, result, shrink_args, out, quiet)


def _write_aborted(result: Any, journal_path: str) -> None:
    from chaospool._engine.session import write_journal

    if result is not None and result.outcome is not None:
        write_journal(result.outcome.journal, journal_path)
    click.echo("explore: interrupted; every fault reverted, every worker reaped", err=True)


def _found(experiment: str, loaded: Any, base: Any, root: int, result: Any,
           shrink_args: _ShrinkArgs | None, out: str, quiet: bool) -> int:
    from chaospool._explore.runner import tolerance_text

    found, outcome = result.found, result.outcome
    failed = tolerance_text(outcome.journal, outcome.failed[0])
    replay = _replay(experiment, root, found.number)
    text = base.text(found.candidate, found.seed, loaded.registry, out_dir=str(Path(out).parent),
                     comments=[f"chaospool explore: schedule {found.number} of seed {root} "
                               f"from {experiment}", f"failed: {failed}", f"replay: {replay}"])
    Path(out).write_text(text, encoding="utf-8")
    click.echo(f"explore: schedule {found.number} failed {failed}; written to {out}")
    click.echo(f"replay: {replay}")
    if shrink_args is None:
        return EXIT_DEVIATED
    code = _shrink(out, shrink_args, quiet)
    return EXIT_INTERRUPTED if code == EXIT_INTERRUPTED else EXIT_DEVIATED


# -- shrink -----------------------------------------------------------------------------------


class _ShrinkArgs:
    def __init__(self, out: str, runs: int, min_fails: int, time_limit: float, max_runs: int):
        self.out, self.runs, self.min_fails = out, runs, min_fails
        self.time_limit, self.max_runs = time_limit, max_runs


@click.command("shrink")
@click.argument("experiment", type=click.Path(dir_okay=False))
@_shrink_options("")
@click.option("--out", default=DEFAULT_MINIMAL, show_default=True, callback=_writable,
              help="where the minimal experiment goes")
@click.option("--quiet", "-q", is_flag=True, help="only the result")
def shrink_command(experiment: str, runs: int, min_fails: int, time_limit: float, max_runs: int,
                   out: str, quiet: bool) -> None:
    """Reduce a failing experiment to a minimal one that fails the same tolerance."""
    _check_min_fails(runs, min_fails)
    from chaospool.cli import _catch_early_signals

    _catch_early_signals()
    sys.exit(_shrink(experiment, _ShrinkArgs(out, runs, min_fails, time_limit, max_runs),
                     quiet))


def _shrink(experiment: str, args: _ShrinkArgs, quiet: bool) -> int:
    from chaospool._explore.document import base_of
    from chaospool._explore.session import ShrinkOptions, shrink

    loaded = _load(experiment)
    base = base_of(experiment, loaded.experiment)
    options = ShrinkOptions(args.runs, args.min_fails, args.time_limit, args.max_runs)
    say = (lambda line: None) if quiet else click.echo
    result = _run_stoppable(lambda stop: shrink(loaded, base, options=options, stop=stop, say=say))
    if result is None:
        click.echo("shrink: interrupted; every fault reverted, every worker reaped", err=True)
        return EXIT_INTERRUPTED
    if result.target is None:
        click.echo(f"shrink: {experiment} did not fail one tolerance in {args.min_fails} of "
                   f"{args.runs} runs; nothing written")
        return EXIT_FAILED if result.status == "failed" else EXIT_DEVIATED
    _write_minimal(experiment, loaded, base, result, args.out)
    return EXIT_OK


def _write_minimal(experiment: str, loaded: Any, base: Any, result: Any, out: str) -> None:
    from chaospool._explore.session import minimal_comments, reproduction

    comments = minimal_comments(result, experiment, loaded.registry)
    text = base.text(result.best, result.seed, loaded.registry, comments=comments,
                     out_dir=str(Path(out).parent))
    Path(out).write_text(text, encoding="utf-8")
    click.echo(f"shrink: {reproduction(result)}; written to {out}")
    click.echo(f"shrink stats: {result.runs_used} runs, {len(result.initial.steps)} step(s) -> "
               f"{len(result.best.steps)}, {result.elapsed:.1f}s")
    click.echo(f"run it: chaospool run {out}")
    click.echo(f"minimal: {out}")
