"""What the CLI prints and writes: the dry-run schedule, live progress, summary, report files."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from chaospool._dsl.units import print_duration
from chaospool._engine.run import Progress
from chaospool._engine.session import Loaded, resolve_seed

__all__ = ("feed", "live_progress", "print_schedule", "print_summary", "write_reports")


def _fmt_param(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def print_schedule(loaded: Loaded, seed: int | None) -> None:
    """The resolved schedule: time, fault, name, target slots, parameters (one line a step)."""
    exp = loaded.experiment
    run_seed = resolve_seed(exp, seed)
    click.echo(f"{exp.path or '<mapping>'}: {exp.title or 'untitled'}")
    click.echo(f"  seed {run_seed}  duration {print_duration(exp.duration)}  "
               f"pool {exp.pool.worker} size={exp.pool.size} max_overflow={exp.pool.max_overflow}")
    steps = loaded.schedule(run_seed)
    if not steps:
        click.echo("  (no faults: a baseline run)")
    for s in steps:
        if s.slots is not None:
            slots = "slots " + ",".join(str(i) for i in s.slots)
        elif s.step.target.kind == "session":
            slots = f"session {s.step.target.session}"
        elif s.step.target.kind == "node":
            slots = f"node {s.step.target.node}"
        else:
            slots = "pool"
        params = " ".join(f"{k}={_fmt_param(v)}" for k, v in s.params_dict().items())
        dur = s.step.duration
        held = f" for {print_duration(dur)}" if dur is not None else ""
        click.echo(f"  at {print_duration(s.at):>8}  {s.fault:<20} {s.name:<24} {slots:<14}"
                   f"{held}  {params}".rstrip())


def live_progress(loaded: Loaded, *, enabled: bool) -> Any:
    """Live progress on a TTY (elapsed/total, ops, success rate, active faults); silent on a
    pipe, so piped output holds nothing but the summary."""
    from chaospool._report.terminal import LiveProgress

    exp = loaded.experiment
    return LiveProgress(total=exp.duration, title=exp.title or "", enabled=enabled)


def feed(live: Any) -> Callable[[Progress], None]:
    def update(p: Progress) -> None:
        live.update(elapsed=p.elapsed, ops=p.ops, success_rate=p.success_rate,
                    active_faults=p.active_faults)

    return update


def print_summary(journal: dict[str, Any], *, quiet: bool, verbose: bool,
                  journal_path: str | None = None) -> None:
    from chaospool._report.terminal import render_summary

    if journal_path == "-":
        # stdout carries the journal itself: the verdict goes to stderr
        from rich.console import Console

        render_summary(journal, Console(stderr=True), quiet=quiet, verbose=verbose)
        return
    render_summary(journal, quiet=quiet, verbose=verbose, journal_path=journal_path)


def write_reports(journal: dict[str, Any], *, html: str | None, junit: str | None) -> None:
    if html:
        from chaospool._report.html import write_html

        write_html(journal, html)
    if junit:
        from chaospool._report.junit import write_junit

        write_junit(journal, junit)
