"""The terminal side of a run: the closing summary and the live progress line (rich).

``render_summary`` prints the checks, the phases, the faults, the seed and the command that
reproduces the run. It reads the journal only (typed records; a dict is converted first). On
a console that is not a terminal rich writes plain text (no colour codes), so the same call
serves a TTY and a pipe.

``LiveProgress`` is the live line the CLI updates while a run goes on. It draws only on a
terminal; on a pipe, or when disabled, every method is a no-op. It never starts a refresh
thread: it redraws when it is updated, at most ``max_fps`` times a second.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from chaospool._journal import Check, Consistency, FaultRecord, Journal, Metrics, as_journal
from chaospool._report._format import (
    PHASES,
    experiment_title,
    fault_label,
    fmt_metric,
    fmt_seconds,
    problems,
    reproduce_command,
    status_line,
)
from chaospool._report.happened import (
    evidence_line,
    fmt_observed,
    happened_lines,
    stopped_note,
)
from chaospool._report.outcomes import outcomes_line

__all__ = (
    "LiveDisplay", "LiveProgress", "PipeSafeConsole", "render_summary", "summary_renderable",
    "summary_text",
)

_PHASE_COLUMNS = ("total", "errors", "success_rate", "p99_latency", "throughput")


def _checks_table(journal: Journal, checks: Sequence[Check]) -> Table:
    stopped = stopped_note(journal)
    title = "Checks" if stopped is None else "Checks (evaluated on an incomplete run)"
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, title_justify="left")
    for name, justify in (("ok", "center"), ("metric", "left"), ("phase", "left"),
                          ("expected", "right"), ("observed", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for check in checks:
        ok = check.ok
        table.add_row(
            Text("✓", style="bold green") if ok else Text("✗", style="bold red"),
            check.metric,
            check.phase or "overall",
            check.expected,
            Text(fmt_observed(check.metric, check.expected, check.observed, ok),
                 style="" if ok else "bold red"),
        )
    return table


def _phase_map(journal: Journal) -> dict[str, Metrics]:
    p = journal.phases
    return {"before": p.before, "during": p.during, "after": p.after, "overall": journal.metrics}


def _phases_table(journal: Journal) -> Table:
    table = Table(title="Phases", box=box.SIMPLE_HEAD, show_edge=False, title_justify="left")
    table.add_column("phase")
    for metric in _PHASE_COLUMNS:
        table.add_column(metric.replace("_latency", ""), justify="right")
    for phase, values in _phase_map(journal).items():
        table.add_row(phase, *(fmt_metric(m, values.get(m)) for m in _PHASE_COLUMNS),
                      style="bold" if phase == "overall" else "")
    return table


def _targets(fault: FaultRecord) -> str:
    return ", ".join(f"{t.index}:{t.pid}" for t in fault.targets) or "pool"


def _faults_table(journal: Journal) -> Table:
    table = Table(title="Faults", box=box.SIMPLE_HEAD, show_edge=False, title_justify="left")
    for name in ("fault", "slot:pid", "injected", "reverted", "error"):
        table.add_column(name)
    for i, fault in enumerate(journal.faults):
        error = fault.error
        table.add_row(fault_label(i, fault), _targets(fault), fmt_seconds(fault.injected_at),
                      fmt_seconds(fault.reverted_at),
                      Text(str(error), style="bold red") if error else Text("—"))
    return table


def _headline(journal: Journal) -> Text:
    style = "bold green" if journal.ok else "bold red"
    text = Text(f"chaospool · {experiment_title(journal)}\n", style="bold")
    text.append(status_line(journal), style=style)
    stopped = stopped_note(journal)
    if stopped:
        text.append(f"\n{stopped}", style="bold yellow")
    for problem in problems(journal):
        text.append(f"\n{problem}", style="red")
    return text


def _footer(journal: Journal, journal_path: str | None) -> Text:
    reproduce = reproduce_command(journal)
    if reproduce is None:  # a history: no seed, nothing to re-run
        text = Text(f"rebuilt from the history {journal.experiment.path}", style="dim")
    else:
        text = Text("seed ", style="dim")
        text.append(str(journal.seed), style="bold")
        text.append("   reproduce: ", style="dim")
        text.append(reproduce, style="cyan")
    if journal_path:
        text.append("\njournal: ", style="dim")
        text.append(journal_path)
    return text


def _errors_table(journal: Journal) -> Table | None:
    phases = _phase_map(journal)
    kinds = sorted({k for m in phases.values() for k, n in m.errors_by_kind.items() if n})
    if not kinds:
        return None
    table = Table(title="Errors by kind", box=box.SIMPLE_HEAD, show_edge=False,
                  title_justify="left")
    table.add_column("kind")
    for phase in PHASES:
        table.add_column(phase, justify="right")
    for kind in kinds:
        table.add_row(kind, *(str(m.errors_by_kind.get(kind, 0)) for m in phases.values()))
    return table


def _evidence(journal: Journal) -> Table:
    """Each fault's evidence as rows of key and value: never raw JSON folded across lines."""
    table = Table(title="Fault evidence", box=box.SIMPLE_HEAD, show_edge=False,
                  title_justify="left")
    for name in ("fault", "evidence", "value"):
        table.add_column(name, overflow="fold")
    for i, fault in enumerate(journal.faults):
        for n, (key, value) in enumerate(fault.effect.items()):
            table.add_row(fault_label(i, fault) if n == 0 else "", str(key), _value(value))
    return table


def _value(value: Any) -> str:
    if isinstance(value, list | tuple):
        shown = "; ".join(evidence_line(v) if isinstance(v, Mapping) else str(v)
                          for v in value[:3])
        more = f"; … {len(value) - 3} more" if len(value) > 3 else ""
        return f"{len(value)}: {shown}{more}" if value else "0"
    if isinstance(value, Mapping):
        return evidence_line(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _happened(journal: Journal) -> Text:
    text = Text("What happened", style="bold")
    for line in happened_lines(journal):
        text.append(f"\n{line}")
    return text


def _inconsistent(journal: Journal) -> bool:
    found = journal.consistency
    return isinstance(found, Consistency) and bool(found.lost_updates or found.stale_reads)


def summary_renderable(journal: Journal | Mapping[str, Any], *, quiet: bool = False,
                       verbose: bool = False, journal_path: str | None = None,
                       footer: bool = True) -> RenderableType:
    """The summary as one rich renderable (see :func:`render_summary`)."""
    journal = as_journal(journal)
    parts: list[RenderableType] = [_headline(journal)]
    if quiet:
        failed = [c for c in journal.checks if not c.ok]
        if not journal.ok and failed:
            parts.append(_checks_table(journal, failed))
        return Group(*parts)
    parts += _body(journal, verbose)
    if footer:
        parts.append(_footer(journal, journal_path))
    # A blank line between blocks: the tables have no outer edges.
    spaced: list[RenderableType] = []
    for part in parts:
        spaced += [part, Text("")]
    return Group(*spaced[:-1])


def _body(journal: Journal, verbose: bool) -> list[RenderableType]:
    parts: list[RenderableType] = [_happened(journal)]
    if journal.checks:
        parts.append(_checks_table(journal, journal.checks))
    parts.append(_phases_table(journal))
    outcomes = outcomes_line(journal)
    if outcomes is not None:
        parts.append(Text(outcomes, style="red" if _inconsistent(journal) else ""))
    errors = _errors_table(journal) if verbose else None
    if errors is not None:
        parts.append(errors)
    if journal.faults:
        parts.append(_faults_table(journal))
        if verbose:
            parts.append(_evidence(journal))
    return parts


def render_summary(journal: Journal | Mapping[str, Any], console: Console | None = None, *,
                   quiet: bool = False, verbose: bool = False,
                   journal_path: str | None = None) -> None:
    """Print the run's summary on ``console`` (a new stdout console when None).

    ``quiet``: the verdict and any failed check only. ``verbose``: adds errors by kind and each
    fault's evidence. ``journal_path``: named in the footer.
    """
    journal = as_journal(journal)
    console = console or PipeSafeConsole()
    console.print(summary_renderable(journal, quiet=quiet, verbose=verbose,
                                     journal_path=journal_path, footer=False))
    if not quiet:
        # soft wrap: never folded or cropped, so the reproduce command copies intact from a log
        console.print()
        console.print(_footer(journal, journal_path), soft_wrap=True)


class PipeSafeConsole(Console):
    """A console whose reader may leave (``| head``): rich's default exits with status 1 on a
    broken pipe, which would hide the run's own exit code (3 must stay 3)."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError  # the CLI redirects stdout and keeps the run's exit code


def summary_text(journal: Journal | Mapping[str, Any], width: int = 100, **options: Any) -> str:
    """The summary as plain text (no colour codes): for logs and pytest failure reports."""
    buffer = io.StringIO()
    render_summary(journal, Console(file=buffer, force_terminal=False, width=width,
                                    color_system=None), **options)
    return buffer.getvalue()


class LiveProgress:
    """A live status line for a running experiment; a no-op unless the console is a TTY.

    Use as a context manager and call :meth:`update` from the run loop::

        with LiveProgress(console, total=30.0, title="cascade") as progress:
            progress.update(elapsed=1.5, ops=620, success_rate=1.0, active_faults=["F1 ..."])
    """

    def __init__(self, console: Console | None = None, *, total: float = 0.0, title: str = "",
                 enabled: bool | None = None, max_fps: float = 8.0) -> None:
        self.console = console or Console(stderr=True)
        self.total = max(total, 0.0)
        self.title = title
        # Never on a pipe, whatever the caller asks: progress output would corrupt it.
        self.enabled = self.console.is_terminal and (enabled is None or enabled)
        self._min_interval = 1.0 / max_fps
        self._last_draw = float("-inf")
        self._live: Live | None = None
        self._state: dict[str, Any] = {"elapsed": 0.0, "ops": 0, "success_rate": None,
                                       "active_faults": ()}

    def __enter__(self) -> LiveProgress:
        if self.enabled:
            # auto_refresh=False: no refresh thread; update() redraws.
            self._live = Live(self._renderable(), console=self.console, auto_refresh=False,
                              transient=True)  # prints during the run land above it
            self._live.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def update(self, *, elapsed: float, ops: int, success_rate: float | None,
               active_faults: Sequence[str] = (), total: float | None = None,
               **counts: Any) -> None:
        """Record the run's state; redraw unless the last redraw was too recent.

        ``success_rate`` is a fraction (0..1) or None before the first operation ended;
        ``total`` (seconds) may be given here when it is not known at construction.
        ``counts``: ``faults_done``, ``faults_total``, ``restarts``, ``errors`` and
        ``recent_faults`` (ended a moment ago: a kill is instant, it is shown a while).
        """
        if total is not None:
            self.total = max(total, 0.0)
        self._state = {"elapsed": elapsed, "ops": ops, "success_rate": success_rate,
                       "active_faults": tuple(active_faults), **counts}
        if self._live is None:
            return
        now = time.monotonic()
        if now - self._last_draw >= self._min_interval:
            self._last_draw = now
            self._live.update(self._renderable(), refresh=True)

    def close(self) -> None:
        """Stop drawing (and erase the line). Safe to call more than once."""
        live, self._live = self._live, None
        if live is not None:
            live.stop()

    def _renderable(self) -> RenderableType:
        s = self._state
        grid = Table.grid(padding=(0, 1))
        grid.add_row(
            Text(self.title or "chaospool", style="bold"),
            ProgressBar(total=self.total or None, completed=s["elapsed"], width=20),
            Text(f"{s['elapsed']:5.1f}/{self.total:.1f} s"),
            Text(f"ops {s['ops']:,}"),
            Text(f"success {fmt_metric('success_rate', s['success_rate'])}",
                 style=_rate_style(s["success_rate"])),
            Text(f"errors {s.get('errors', 0):,}", style="red" if s.get("errors") else "dim"),
            Text(f"restarts {s.get('restarts', 0)}", style="dim"),
            _faults_text(s),
        )
        return grid


def _faults_text(s: Mapping[str, Any]) -> Text:
    """``faults 1/3: kill-a (now), slow-b (done)``: what is on, and what just happened."""
    head = f"faults {s.get('faults_done', 0)}/{s.get('faults_total', 0)}"
    active, recent = tuple(s["active_faults"]), tuple(s.get("recent_faults", ()))
    names = [f"{n} (now)" for n in active] + [f"{n} (done)" for n in recent if n not in active]
    if not names:
        return Text(head, style="dim")
    return Text(f"{head}: " + ", ".join(names), style="bold red" if active else "yellow")


def _rate_style(rate: float | None) -> str:
    if rate is None:
        return "dim"
    return "green" if rate >= 0.99 else "yellow" if rate >= 0.9 else "bold red"


# The name the engine's CLI output module imports.
LiveDisplay = LiveProgress
