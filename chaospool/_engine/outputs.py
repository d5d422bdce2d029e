"""What the CLI prints and writes: the dry-run schedule, live progress, summary, report files."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from chaospool._dsl.units import print_duration
from chaospool._engine.run import Progress
from chaospool._engine.session import Loaded, resolve_seed

__all__ = ("feed", "live_progress", "print_schedule", "print_summary", "write_reports")


def print_schedule(loaded: Loaded, seed: int | None) -> None:
    """The resolved schedule under column headers: time, fault, name, targets, how long it is
    held, parameters as written in YAML (one line a step)."""
    from chaospool._engine.catalog import display_params

    exp = loaded.experiment
    run_seed = resolve_seed(exp, seed)
    click.echo(f"{exp.path or '<mapping>'}: {exp.title or 'untitled'}")
    click.echo(f"  seed {run_seed}  duration {print_duration(exp.duration)}  "
               f"pool {exp.pool.worker} size={exp.pool.size} max_overflow={exp.pool.max_overflow}")
    steps = loaded.schedule(run_seed)
    if not steps:
        click.echo("  (no faults: a baseline run)")
        return
    click.echo(f"  {'at':>8}  {'fault':<20} {'name':<24} {'targets':<14}{'held':<8}parameters")
    for s in steps:
        if s.slots is not None:
            slots = "slots " + ",".join(str(i) for i in s.slots)
        elif s.step.target.kind == "session":
            slots = f"session {s.step.target.session}"
        else:
            slots = "pool"
        shown = display_params(loaded.registry[s.fault], s.params_dict())
        params = " ".join(f"{k}={v}" for k, v in shown.items())
        dur = s.step.duration
        held = print_duration(dur) if dur is not None else "instant"
        click.echo(f"  {print_duration(s.at):>8}  {s.fault:<20} {s.name:<24} {slots:<14}"
                   f"{held:<8}{params}".rstrip())


def live_progress(loaded: Loaded, *, enabled: bool) -> Any:
    """Live progress on a TTY (elapsed/total, ops, success rate, active faults); silent on a
    pipe, so piped output holds nothing but the summary."""
    from chaospool._report.terminal import LiveProgress

    exp = loaded.experiment
    return LiveProgress(total=exp.duration, title=exp.title or "", enabled=enabled)


def feed(live: Any) -> Callable[[Progress], None]:
    def update(p: Progress) -> None:
        live.update(elapsed=p.elapsed, ops=p.ops, success_rate=p.success_rate,
                    active_faults=p.active_faults, faults_done=p.faults_done,
                    faults_total=p.faults_total, restarts=p.restarts, errors=p.errors,
                    recent_faults=p.recent_faults)

    return update


def print_summary(journal: dict[str, Any], *, quiet: bool, verbose: bool,
                  journal_path: str | None = None) -> None:
    from chaospool._report.terminal import render_summary

    if journal_path == "-":
        # stdout carries the journal itself: the verdict goes to stderr
        from chaospool._report.terminal import PipeSafeConsole

        render_summary(journal, PipeSafeConsole(stderr=True), quiet=quiet, verbose=verbose)
        return
    render_summary(journal, quiet=quiet, verbose=verbose, journal_path=journal_path)


def write_reports(journal: dict[str, Any], *, html: str | None, junit: str | None) -> None:
    if html:
        from chaospool._report.html import write_html

        write_html(journal, html)
    if junit:
        from chaospool._report.junit import write_junit

        write_junit(journal, junit)
