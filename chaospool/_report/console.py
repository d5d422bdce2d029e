"""What the CLI prints: the dry-run schedule, live progress, the summary, the report files.

The engine runs and returns a journal; everything a person reads on the terminal is drawn
here, from plain data (the experiment model, the scheduled steps, the journal), so that the
engine prints nothing and ``chaospool report`` draws a journal file the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import click

from chaospool._journal import Journal
from chaospool._report.files import write_text_atomic
from chaospool._units import print_duration
from chaospool.hookspecs import Reporter

__all__ = (
    "ReporterFailed",
    "feed",
    "live_progress",
    "print_schedule",
    "print_summary",
    "write_reports",
    "write_summary",
)


class ProgressLike(Protocol):
    """The engine's progress snapshot (``chaospool._engine.run.Progress``)."""

    @property
    def elapsed(self) -> float: ...
    @property
    def ops(self) -> int: ...
    @property
    def success_rate(self) -> float | None: ...
    @property
    def active_faults(self) -> tuple[str, ...]: ...
    @property
    def faults_done(self) -> int: ...
    @property
    def faults_total(self) -> int: ...
    @property
    def restarts(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def recent_faults(self) -> tuple[str, ...]: ...


def _fmt_param(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _plain_params(fault: str, values: dict[str, Any]) -> dict[str, str]:
    return {k: _fmt_param(v) for k, v in values.items()}


ParamDisplay = Callable[[str, dict[str, Any]], Mapping[str, str]]


def print_schedule(experiment: Any, seed: int, steps: Sequence[Any],
                   display: ParamDisplay = _plain_params) -> None:
    """The resolved schedule under column headers: time, fault, name, targets, how long it is
    held, parameters as written in YAML by ``display`` (one line a step)."""
    exp = experiment
    click.echo(f"{exp.path or '<mapping>'}: {exp.title or 'untitled'}")
    click.echo(f"  seed {seed}  duration {print_duration(exp.duration)}  "
               f"pool {exp.pool.worker} size={exp.pool.size} max_overflow={exp.pool.max_overflow}")
    if not steps:
        click.echo("  (no faults: a baseline run)")
        return
    click.echo(f"  {'at':>8}  {'fault':<20} {'name':<24} {'targets':<14}{'held':<8}parameters")
    for s in steps:
        click.echo(_schedule_line(s, display))


def _schedule_line(s: Any, display: ParamDisplay) -> str:
    if s.slots is not None:
        slots = "slots " + ",".join(str(i) for i in s.slots)
    elif s.step.target.kind == "session":
        slots = f"session {s.step.target.session}"
    elif s.step.target.kind == "node":
        slots = f"node {s.step.target.node}"
    else:
        slots = "pool"
    params = " ".join(f"{k}={v}" for k, v in display(s.fault, s.params_dict()).items())
    dur = s.step.duration
    held = print_duration(dur) if dur is not None else "instant"
    return (f"  {print_duration(s.at):>8}  {s.fault:<20} {s.name:<24} {slots:<14}"
            f"{held:<8}{params}").rstrip()


def live_progress(experiment: Any, *, enabled: bool) -> Any:
    """Live progress on a TTY (elapsed/total, ops, success rate, active faults); silent on a
    pipe, so piped output holds nothing but the summary."""
    from chaospool._report.terminal import LiveProgress

    return LiveProgress(total=experiment.duration, title=experiment.title or "", enabled=enabled)


def feed(live: Any) -> Callable[[ProgressLike], None]:
    def update(p: ProgressLike) -> None:
        live.update(elapsed=p.elapsed, ops=p.ops, success_rate=p.success_rate,
                    active_faults=p.active_faults, faults_done=p.faults_done,
                    faults_total=p.faults_total, restarts=p.restarts, errors=p.errors,
                    recent_faults=p.recent_faults)

    return update


def print_summary(journal: Journal | Mapping[str, Any], *, quiet: bool, verbose: bool,
                  journal_path: str | None = None) -> None:
    from chaospool._report.terminal import render_summary

    if journal_path == "-":
        # stdout carries the journal itself: the verdict goes to stderr
        from chaospool._report.terminal import PipeSafeConsole

        render_summary(journal, PipeSafeConsole(stderr=True), quiet=quiet, verbose=verbose)
        return
    render_summary(journal, quiet=quiet, verbose=verbose, journal_path=journal_path)


def write_summary(journal: Journal | Mapping[str, Any], path: str) -> None:
    """The ``terminal`` reporter: the summary as plain text in a file (``-`` = stdout)."""
    from chaospool._report.terminal import summary_text

    text = summary_text(journal, verbose=True)
    if path == "-":
        click.echo(text, nl=False)
        return
    write_text_atomic(path, text)


class ReporterFailed(Exception):
    """A reporter raised; ``str()`` names it, the path and the error (``Type: message``)."""

    def __init__(self, name: str, path: str, exc: BaseException) -> None:
        super().__init__(f"reporter {name!r} failed to write {path}: {type(exc).__name__}: {exc}")
        self.name, self.path = name, path


def write_reports(journal: dict[str, Any], outputs: Sequence[tuple[Reporter, str]]) -> list[str]:
    """Call each ``(reporter, path)``; return one line per reporter that raised.

    Each one runs on its own: a plugin's broken reporter neither hides the built-in ones nor
    turns into a traceback.
    """
    failures: list[str] = []
    for reporter, path in outputs:
        try:
            reporter.write(journal, path)
        except Exception as exc:  # reason: a reporter is plugin code; reported with its name
            failures.append(str(ReporterFailed(reporter.name, path, exc)))
    return failures
