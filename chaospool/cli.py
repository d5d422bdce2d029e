"""The ``chaospool`` command line (click).

Exit codes (docs/getting-started.md): 0 every tolerance held · 1 the steady state deviated
· 2 invalid input or usage, nothing started · 3 the run failed (pool could not start, a fault
raised, a reporter could not write its output) · 130 interrupted by SIGINT/SIGTERM after every
fault was reverted and the journal written.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

import chaospool
from chaospool._report.select import Output
from chaospool.errors import PluginLoadError

if TYPE_CHECKING:  # the journal model imports msgspec: only on use, the CLI starts fast
    from chaospool._journal import Journal

__all__ = ("main",)

EXIT_OK, EXIT_DEVIATED, EXIT_INVALID, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_JOURNAL = "chaospool-journal.json"
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# SIGINT/SIGTERM that arrived while no run's own signal watcher was listening (loading, the
# pool's first moments, between experiments): the next run starts already stopped, so the
# command still ends with an aborted journal and exit 130 -- not "Aborted!" (1) or death (143).
_early_signals: list[int] = []


def _note_early_signal(signum: int, _frame: object) -> None:
    _early_signals.append(signum)


def _catch_early_signals() -> None:
    # again before each run: anyio's signal receiver restores the defaults, not these
    for signum in _STOP_SIGNALS:
        signal.signal(signum, _note_early_signal)


def _fail_invalid(lines: Sequence[str]) -> NoReturn:
    for line in lines:
        click.echo(line, err=True)
    sys.exit(EXIT_INVALID)


def _require_files(paths: Sequence[str]) -> None:
    for path in paths:
        if not Path(path).is_file():
            _fail_invalid([f"{path}:1:1: no such file"])


def _load_all(paths: Sequence[str], sets: Sequence[str], plugins: Sequence[str]) -> list[Any]:
    """Validate every experiment before anything starts; report every error of every file."""
    from chaospool._engine.session import load_with_plugins

    _check_plugin_options(plugins)
    loaded: list[Any] = []
    errors: list[str] = []
    for path in paths:
        try:
            loaded.append(load_with_plugins(path, overrides=list(sets), plugins=plugins,
                                            check_worker=True))
        except chaospool.ExperimentError as exc:
            errors.extend(str(e) for e in exc.errors)
        except PluginLoadError as exc:
            errors.append(f"{path}: {exc}")
    if errors:
        _fail_invalid(errors)
    return loaded


def _check_plugin_options(plugins: Sequence[str]) -> None:
    """A ``--plugin`` that does not load is the option's fault, not an experiment file's: it is
    reported once, against the option (relative .py paths are taken from the current
    directory)."""
    from chaospool._plugins import PluginLoadError, plugin_manager

    try:
        plugin_manager(list(plugins))
    except PluginLoadError as exc:
        _fail_invalid([f"--plugin {exc.plugin}: {exc.message}"])


@contextlib.contextmanager
def _reader_may_leave() -> Iterator[None]:
    """A reader that closed the pipe early (``| head``) is not the run's failure: the exit code
    still says how the run went (3 stays 3), not 1 for a BrokenPipeError."""
    try:
        yield
    except BrokenPipeError:
        # the interpreter flushes stdout again at exit: point it at /dev/null first
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _steps(n: int) -> str:
    return f"{n} fault step{'' if n == 1 else 's'}"


def _writable(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An output path whose directory exists and is writable: checked before anything starts,
    not found out after the run (exit 2, like any other usage error)."""
    if value is None or value == "-":
        return value
    parent = Path(value).parent
    if not parent.is_dir():
        raise click.BadParameter(f"directory '{parent}' does not exist", param=param)
    if not os.access(parent, os.W_OK):
        raise click.BadParameter(f"directory '{parent}' is not writable", param=param)
    return value


def _report_specs(
    _ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> list[Output]:
    """``--report NAME=PATH`` values, each path checked like any other output's."""
    from chaospool._report.select import parse_output

    outputs = []
    for spec in values:
        try:
            out = parse_output(spec)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param=param) from exc
        outputs.append(Output(out.name, str(_writable(_ctx, param, out.path))))
    return outputs


class _Commands(click.Group):
    """The command group, with one safety net: an error chaospool did not expect (a bug) ends
    the command with exit 3 and one line naming it, never Python's exit 1 -- which would read
    as "a tolerance failed". The traceback follows, for the bug report."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # reason: the last line of defence of the exit-code contract
            click.echo(f"chaospool: internal error: {type(exc).__name__}: {exc}", err=True)
            traceback.print_exc()
            sys.exit(EXIT_FAILED)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(chaospool.__version__, prog_name="chaospool")
def main() -> None:
    """Chaos experiments for Python worker pools."""


def _user_modules_importable() -> None:
    """Let worker modules and ``--plugin`` modules in the current directory import.

    The console script's ``sys.path`` starts with its own bin directory, not the current one,
    so a module next to the user's experiments would not import. The directory goes at the END:
    an installed package always wins over a file that happens to share its name (a ``yaml.py``
    or ``pygal.py`` lying in the current directory is never imported in its place). Only the
    commands that import user modules call this; workers inherit the path. See
    docs/getting-started.md.
    """
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.append(cwd)


@main.command()
@click.argument("experiments", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--plugin", "plugins", multiple=True, help="module name or .py path (repeatable)")
def validate(experiments: tuple[str, ...], plugins: tuple[str, ...]) -> None:
    """Check experiments; print every error as FILE:LINE:COL: message.

    Also imports each worker module in a child process and checks that every command the
    experiment names exists.
    """
    _user_modules_importable()
    _require_files(experiments)
    loaded = _load_all(experiments, (), plugins)
    with _reader_may_leave():
        for path, item in zip(experiments, loaded, strict=True):
            click.echo(f"{path}: ok ({_steps(len(item.experiment.method))})")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="print a JSON array")
@click.option("--plugin", "plugins", multiple=True, help="module name or .py path (repeatable)")
def faults(as_json: bool, plugins: tuple[str, ...]) -> None:
    """List every fault (built-in and plugin) with its parameters and defaults."""
    if plugins:
        _user_modules_importable()
    from chaospool._engine.catalog import fault_catalog

    try:
        catalog = fault_catalog(plugins)
    except PluginLoadError as exc:
        _fail_invalid([str(exc)])
    with _reader_may_leave():
        _print_catalog(catalog, as_json)


def _print_catalog(catalog: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([{k: v for k, v in e.items() if k != "display"}
                               for e in catalog], indent=2))
        return
    for entry in catalog:
        click.echo(f"{entry['name']:<22} {entry['description']}")
        click.echo(f"{'':<22} acts on: {_scope(entry)}   [{entry['source']}]")
        for name, shown in entry["display"].items():
            choices = entry["choices"].get(name)
            kind = " | ".join(map(str, choices)) if choices else entry["types"][name]
            click.echo(f"{'':<22}   {name}: {shown}  ({kind})")


def _scope(entry: dict[str, Any]) -> str:
    backends = entry.get("backends")
    if not backends:
        return _targets(entry)
    needs = " or ".join(f"pool.backend: {b}" for b in backends)
    if "ray" in backends and entry["pool_level"]:  # a node fault (docs/ray.md)
        return f"one cluster node (target {{node: N}}; default: drawn with the seed); needs {needs}"
    return f"{_targets(entry)}; needs {needs}"


def _targets(entry: dict[str, Any]) -> str:
    when = entry.get("pool_level_when")
    if when:
        cond = " or ".join(f"{k}: {v}" for k, values in when.items() for v in values)
        return f"the whole pool with {cond} (target ignored); the target workers otherwise"
    if entry["pool_level"]:
        return "the whole pool (target ignored)"
    return "the target workers (default: one drawn with the seed)"


def _output_options(command: Any) -> Any:
    """``--html``, ``--junit``, ``--report NAME=PATH`` and ``--plugin``: what ``run`` and
    ``report`` write, and the plugins whose reporters they may name (docs/reports.md)."""
    options = (
        click.option("--html", "html_path", type=click.Path(dir_okay=False), callback=_writable,
                     help="HTML report path (= --report html=PATH)"),
        click.option("--junit", "junit_path", type=click.Path(dir_okay=False),
                     callback=_writable, help="JUnit XML path (= --report junit=PATH)"),
        click.option("--report", "reports", multiple=True, metavar="NAME=PATH",
                     callback=_report_specs,
                     help="write the output of any reporter, built-in or plugin (repeatable)"),
        click.option("--plugin", "plugins", multiple=True,
                     help="module name or .py path (repeatable)"),
    )
    for option in reversed(options):  # decorators apply bottom-up: keep the listed order
        command = option(command)
    return command


@main.command()
@click.argument("journal", type=click.Path(exists=True, dir_okay=False))
@_output_options
def report(journal: str, html_path: str | None, junit_path: str | None,
           reports: list[Output], plugins: tuple[str, ...]) -> None:
    """Re-render a journal or a history (docs/reports.md): the terminal summary, and any
    --report / --html / --junit file."""
    from chaospool._report.console import print_summary, write_reports
    from chaospool._report.select import bind

    outputs = [*reports, *_shorthands(None, html_path, junit_path)]
    found = _reporters_for_report(plugins, outputs)
    data = _read_input_or_exit(journal)
    # the journal is the only input here: a reporter that cannot draw it means a foreign file
    failures = write_reports(data.to_dict(), bind(outputs, found))
    if failures:
        _fail_invalid([f"{journal}:1:1: {failures[0]}"])
    try:
        with _reader_may_leave():  # `| head` is not an error of the report
            print_summary(data, quiet=False, verbose=False)
    except (LookupError, TypeError, ValueError, AttributeError) as exc:
        _fail_invalid([f"{journal}:1:1: not a chaospool journal: {type(exc).__name__}: {exc}"])


def _read_input_or_exit(path: str) -> Journal:
    """A journal, or a history rebuilt into one (same aggregator and checker as a live run)."""
    from chaospool._engine.history import HistoryError, is_history, journal_from_history

    if not is_history(path):
        return _read_journal_or_exit(path)
    try:
        return journal_from_history(path)
    except (OSError, HistoryError) as exc:
        _fail_invalid([str(exc)])


def _read_journal_or_exit(path: str) -> Journal:
    from chaospool._report.files import JournalFormatError, read_journal

    try:
        return read_journal(path)
    except JournalFormatError as exc:
        _fail_invalid([f"{path}:{exc.line}:{exc.column}: {exc}"])


def _reporters_for_report(plugins: Sequence[str], outputs: Sequence[Output]) -> Any:
    from chaospool._plugins import plugin_manager, reporters
    from chaospool._report.select import unknown_names

    if plugins:
        _user_modules_importable()
    try:
        found = reporters(plugin_manager(list(plugins)))
    except PluginLoadError as exc:
        _fail_invalid([str(exc)])
    problems = unknown_names(outputs, found)
    if problems:
        _fail_invalid(problems)
    return found


def _shorthands(journal: str | None, html: str | None, junit: str | None) -> list[Output]:
    """``--journal``, ``--html`` and ``--junit``: the same as ``--report NAME=PATH``."""
    named = (("journal", journal), ("html", html), ("junit", junit))
    return [Output(name, path) for name, path in named if path is not None]


@main.command()
@click.argument("experiments", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--seed", type=int, help="override the experiment's seed")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="override a field by its dotted path, e.g. --set pool.size=8 --set "
                   "duration=5s; list items by index: method.0.at=9s (or method[0].at=9s); "
                   "VALUE is read as YAML (repeatable)")
@click.option("--journal", "journal_path", callback=_writable,
              help=f"JSON journal path ('-' = stdout; default {DEFAULT_JOURNAL})")
@_output_options
@click.option("--history", "history_path", type=click.Path(dir_okay=False), callback=_writable,
              help="write every operation as JSON lines (docs/reports.md)")
@click.option("--dry-run", is_flag=True, help="print the resolved schedule; start nothing")
@click.option("--quiet", "-q", is_flag=True,
              help="print only the verdict, where an aborted run stopped, and the failed checks")
@click.option("--verbose", "-v", is_flag=True,
              help="also print errors by kind per phase and every fault's evidence as a table")
@click.option("--loop", "loop_name", metavar="uvloop|asyncio|trio",
              help="event loop (default: $CHAOSPOOL_LOOP, else uvloop if installed, else asyncio)")
def run(
    experiments: tuple[str, ...],
    seed: int | None,
    sets: tuple[str, ...],
    journal_path: str | None,
    html_path: str | None,
    junit_path: str | None,
    reports: list[Output],
    plugins: tuple[str, ...],
    history_path: str | None,
    dry_run: bool,
    quiet: bool,
    verbose: bool,
    loop_name: str | None,
) -> None:
    """Run experiments, one after another."""
    loop_name = _choose_loop(loop_name)
    if not dry_run:
        _catch_early_signals()
    _require_files(experiments)
    _user_modules_importable()
    loaded = _load_all(experiments, sets, plugins)
    if dry_run:
        with _reader_may_leave():
            _print_schedules(loaded, seed)
        return
    outputs = [*_shorthands(journal_path, html_path, junit_path), *reports]
    _check_reporters(loaded, outputs)
    outs = _OutputPaths(outputs, multiple=len(loaded) > 1, history=history_path)
    codes: list[int] = []
    for item in loaded:
        codes.append(_run_one(item, seed, outs, quiet, verbose, loop_name))
        if codes[-1] == EXIT_INTERRUPTED:
            break  # an interrupt stops the whole command, not just the running experiment
    if outs.stdout_journals:
        _echo_journals(outs.stdout_journals)
    sys.exit(_combine(codes))


def _print_schedules(loaded: Sequence[Any], seed: int | None) -> None:
    from chaospool._engine.session import resolve_seed
    from chaospool._report.console import print_schedule

    for item in loaded:
        run_seed = resolve_seed(item.experiment, seed)
        print_schedule(item.experiment, run_seed, item.schedule(run_seed),
                       _param_display(item.registry))


def _param_display(registry: Any) -> Any:
    """A step's parameters as a user writes them (``200ms``, not ``0.2``)."""
    from chaospool._engine.catalog import display_params

    return lambda fault, values: display_params(registry[fault], values)


def _check_reporters(loaded: Sequence[Any], outputs: Sequence[Output]) -> None:
    """Every --report name must name a reporter of every experiment (plugins: may add some)."""
    from chaospool._report.select import unknown_names

    problems: list[str] = []
    for item in loaded:
        problems += [p for p in unknown_names(outputs, item.reporters) if p not in problems]
    if problems:
        _fail_invalid(problems)


def _echo_journals(journals: list[dict[str, Any]]) -> None:
    """Several journals on stdout: one JSON array, so that stdout stays one JSON document."""
    from chaospool._report.files import print_stdout

    print_stdout(json.dumps(journals, indent=2, allow_nan=False))


class _OutputPaths:
    """Per-experiment outputs: with several experiments, each path gets the file's stem added.

    The first journal output is the one the run itself writes (so it exists even when the run
    is interrupted); without one, the journal goes to ``DEFAULT_JOURNAL``.
    """

    def __init__(self, outputs: Sequence[Output], *, multiple: bool,
                 history: str | None = None) -> None:
        journals = [o for o in outputs if o.name == "journal"]
        self.journal = journals[0].path if journals else DEFAULT_JOURNAL
        self.others = [o for o in outputs if not (journals and o is journals[0])]
        self.multiple = multiple
        self.stdout_journals: list[dict[str, Any]] = []
        self._used: set[str] = set()
        self._history = history
        self.history: str | None = history  # the --history path of the experiment resolved last

    def resolve(self, stem: str) -> tuple[str, list[Output]]:
        """The journal path and the other outputs of the experiment named ``stem``."""
        from chaospool._report.select import with_stem

        if not self.multiple:
            return self.journal, list(self.others)
        stem = self._unique(stem)
        if self._history is not None:
            self.history = with_stem(Output("history", self._history), stem).path
        journal = with_stem(Output("journal", self.journal), stem).path
        return journal, [with_stem(o, stem) for o in self.others]

    def _unique(self, stem: str) -> str:
        # a/x.yaml and b/x.yaml (or x.yaml twice) must not overwrite each other's files
        unique, n = stem, 1
        while unique in self._used:
            n += 1
            unique = f"{stem}-{n}"
        self._used.add(unique)
        return unique


def _combine(codes: list[int]) -> int:
    for code in (EXIT_INTERRUPTED, EXIT_FAILED, EXIT_DEVIATED):
        if code in codes:
            return code
    return EXIT_OK


def _exit_code(journal: dict[str, Any]) -> int:
    status = journal.get("status")
    if status == "aborted":
        return EXIT_INTERRUPTED
    if status == "failed":
        return EXIT_FAILED
    return EXIT_OK if journal.get("ok") else EXIT_DEVIATED


def _choose_loop(name: str | None) -> str:
    """The event loop, checked before anything starts (a bad choice is a usage error)."""
    from chaospool._engine import loop

    try:
        return loop.choose(name)
    except loop.LoopChoiceError as exc:
        _fail_invalid([f"chaospool: {exc}"])


def _run_one(
    item: Any, seed: int | None, outs: _OutputPaths, quiet: bool, verbose: bool, loop_name: str
) -> int:
    from functools import partial

    from chaospool._engine import loop
    from chaospool._report.console import print_summary

    stem = Path(item.experiment.path or "experiment").stem
    journal_path, others = outs.resolve(stem)
    collect = journal_path == "-" and outs.multiple  # printed together once all have run
    _catch_early_signals()
    report = loop.run(partial(_run_watched, item, seed, None if collect else journal_path,
                              quiet, outs.history), loop_name)
    _catch_early_signals()
    journal = report.to_dict()
    if collect:
        outs.stdout_journals.append(journal)
    failed = _write_outputs(item, journal, others)
    with _reader_may_leave():
        print_summary(report.journal, quiet=quiet, verbose=verbose, journal_path=journal_path)
    code = _exit_code(journal)
    # an output CI relies on (JUnit, say) is missing: never let the command pass
    return EXIT_FAILED if failed and code != EXIT_INTERRUPTED else code


async def _run_watched(item: Any, seed: int | None, journal_path: str | None, quiet: bool,
                       history_path: str | None = None) -> Any:
    """One run with the signal watcher and the live progress around it."""
    import anyio

    from chaospool._engine.session import run_loaded
    from chaospool._report.console import feed, live_progress

    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_watch_signals, stop, quiet)
        with live_progress(item.experiment, enabled=not quiet) as live:
            report = await run_loaded(item, seed=seed, journal_path=journal_path, stop=stop,
                                      on_progress=feed(live), history_path=history_path)
        tg.cancel_scope.cancel()
    return report


def _write_outputs(item: Any, journal: dict[str, Any], outputs: Sequence[Output]) -> bool:
    """Write the --report outputs; a reporter that raises is named on stderr (True if any)."""
    from chaospool._report.console import write_reports
    from chaospool._report.select import bind

    failures = write_reports(journal, bind(outputs, item.reporters))
    for line in failures:
        click.echo(f"chaospool: {line}", err=True)
    return bool(failures)


async def _watch_signals(stop: Any, quiet: bool) -> None:
    import anyio

    with anyio.open_signal_receiver(*_STOP_SIGNALS) as signals:
        if _early_signals:
            _stopping(signal.Signals(_early_signals[-1]).name, stop, quiet)
        async for signum in signals:
            _stopping(signal.Signals(signum).name, stop, quiet)


def _stopping(name: str, stop: Any, quiet: bool) -> None:
    if not stop.is_set() and not quiet:
        click.echo(f"\n{name}: reverting every fault and stopping the pool...", err=True)
    stop.set()


from chaospool._cli_explore import register as _register_explore  # noqa: E402 (needs main)

_register_explore(main)  # explore and shrink (docs/explore.md)

if __name__ == "__main__":  # pragma: no cover
    main()
