"""The ``chaospool`` command line (click).

Exit codes (CONTRACT §2): 0 every tolerance held · 1 the steady state deviated · 2 invalid input
or usage, nothing started · 3 the run failed (pool could not start, a fault raised) · 130
interrupted by SIGINT/SIGTERM after every fault was reverted and the journal written.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

import chaospool

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


def _load_all(paths: Sequence[str], sets: Sequence[str], plugins: Sequence[str]) -> list[Any]:
    """Validate every experiment before anything starts; report every error of every file."""
    from chaospool._engine.session import load_with_plugins
    from chaospool._plugins import PluginLoadError

    loaded: list[Any] = []
    errors: list[str] = []
    for path in paths:
        try:
            loaded.append(load_with_plugins(path, overrides=list(sets), plugins=plugins))
        except chaospool.ExperimentError as exc:
            errors.extend(str(e) for e in exc.errors)
        except PluginLoadError as exc:
            errors.append(f"{path}: {exc}")
    if errors:
        _fail_invalid(errors)
    return loaded


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(chaospool.__version__, prog_name="chaospool")
def main() -> None:
    """Chaos experiments for Python worker pools."""
    _import_from_cwd()


def _import_from_cwd() -> None:
    """Make the current directory importable, as ``python -m`` and pytest do.

    The console script's ``sys.path`` starts with its own bin directory, so a worker module
    (``pool.worker``) or a ``--plugin`` module next to the user's experiments would import
    with ``python -m chaospool`` and fail with ``chaospool``. Workers inherit this path.
    """
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)


@main.command()
@click.argument("experiments", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(experiments: tuple[str, ...]) -> None:
    """Check experiments; print every error as FILE:LINE:COL: message."""
    for path in experiments:
        if not Path(path).is_file():
            _fail_invalid([f"{path}:1:1: no such file"])
    loaded = _load_all(experiments, (), ())
    for path, item in zip(experiments, loaded, strict=True):
        click.echo(f"{path}: ok ({len(item.experiment.method)} fault steps)")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="print a JSON array")
@click.option("--plugin", "plugins", multiple=True, help="module name or .py path (repeatable)")
def faults(as_json: bool, plugins: tuple[str, ...]) -> None:
    """List every fault (built-in and plugin) with its parameters and defaults."""
    from chaospool._engine.catalog import fault_catalog
    from chaospool._plugins import PluginLoadError

    try:
        catalog = fault_catalog(plugins)
    except PluginLoadError as exc:
        _fail_invalid([str(exc)])
    if as_json:
        keys = ("name", "description", "params", "source")
        click.echo(json.dumps([{k: e[k] for k in keys} for e in catalog], indent=2))
        return
    for entry in catalog:
        params = ", ".join(f"{k}={v}" for k, v in entry["display"].items()) or "-"
        click.echo(f"{entry['name']:<22} {entry['description']}")
        click.echo(f"{'':<22} params: {params}  [{entry['source']}]")


@main.command()
@click.argument("journal", type=click.Path(exists=True, dir_okay=False))
@click.option("--html", "html_path", type=click.Path(dir_okay=False), callback=_writable,
              help="write HTML here")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), callback=_writable,
              help="write JUnit XML")
def report(journal: str, html_path: str | None, junit_path: str | None) -> None:
    """Re-render a journal (the terminal summary, and --html / --junit files)."""
    from chaospool._engine.outputs import print_summary, write_reports

    try:
        data = json.loads(Path(journal).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _fail_invalid([f"{journal}:1:1: not a journal: {exc}"])
    if not isinstance(data, dict) or "metrics" not in data:
        _fail_invalid([f"{journal}:1:1: not a chaospool journal (no 'metrics')"])
    write_reports(data, html=html_path, junit=junit_path)
    print_summary(data, quiet=False, verbose=False)


@main.command()
@click.argument("experiments", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--seed", type=int, help="override the experiment's seed")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override a field")
@click.option("--journal", "journal_path", default=DEFAULT_JOURNAL, show_default=True,
              callback=_writable, help="JSON journal path ('-' = stdout)")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), callback=_writable,
              help="HTML report path")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False), callback=_writable,
              help="JUnit XML path")
@click.option("--plugin", "plugins", multiple=True, help="module name or .py path (repeatable)")
@click.option("--dry-run", is_flag=True, help="print the resolved schedule; start nothing")
@click.option("--quiet", "-q", is_flag=True, help="only the verdict")
@click.option("--verbose", "-v", is_flag=True, help="fault evidence and more")
@click.option("--loop", "loop_name", metavar="uvloop|asyncio|trio",
              help="event loop (default: $CHAOSPOOL_LOOP, else uvloop if installed, else asyncio)")
def run(
    experiments: tuple[str, ...],
    seed: int | None,
    sets: tuple[str, ...],
    journal_path: str,
    html_path: str | None,
    junit_path: str | None,
    plugins: tuple[str, ...],
    dry_run: bool,
    quiet: bool,
    verbose: bool,
    loop_name: str | None,
) -> None:
    """Run experiments, one after another."""
    from chaospool._engine.outputs import print_schedule

    loop_name = _choose_loop(loop_name)
    if not dry_run:
        _catch_early_signals()
    for path in experiments:
        if not Path(path).is_file():
            _fail_invalid([f"{path}:1:1: no such file"])
    loaded = _load_all(experiments, sets, plugins)
    if dry_run:
        for item in loaded:
            print_schedule(item, seed)
        return
    outs = _OutputPaths(journal_path, html_path, junit_path, multiple=len(loaded) > 1)
    codes: list[int] = []
    for item in loaded:
        codes.append(_run_one(item, seed, outs, quiet, verbose, loop_name))
        if codes[-1] == EXIT_INTERRUPTED:
            break  # an interrupt stops the whole command, not just the running experiment
    if outs.stdout_journals:
        _echo_journals(outs.stdout_journals)
    sys.exit(_combine(codes))


def _echo_journals(journals: list[dict[str, Any]]) -> None:
    """Several journals on stdout: one JSON array, so that stdout stays one JSON document."""
    from chaospool._engine.session import print_stdout

    print_stdout(json.dumps(journals, indent=2, allow_nan=False))


class _OutputPaths:
    """Per-experiment output paths: with several experiments, each gets the file's stem added."""

    def __init__(self, journal: str, html: str | None, junit: str | None, *, multiple: bool):
        self.journal, self.html, self.junit, self.multiple = journal, html, junit, multiple
        self.stdout_journals: list[dict[str, Any]] = []
        self._used: set[str] = set()

    def _for(self, path: str | None, stem: str) -> str | None:
        if path is None or path == "-" or not self.multiple:
            return path
        p = Path(path)
        return str(p.with_name(f"{p.stem}.{stem}{p.suffix}"))

    def resolve(self, stem: str) -> tuple[str | None, str | None, str | None]:
        # a/x.yaml and b/x.yaml (or x.yaml twice) must not overwrite each other's files
        unique, n = stem, 1
        while unique in self._used:
            n += 1
            unique = f"{stem}-{n}"
        self._used.add(unique)
        stem = unique
        return (self._for(self.journal, stem), self._for(self.html, stem),
                self._for(self.junit, stem))


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
    import anyio

    from chaospool._engine import loop
    from chaospool._engine.outputs import feed, live_progress, print_summary, write_reports
    from chaospool._engine.session import run_loaded

    stem = Path(item.experiment.path or "experiment").stem
    journal_path, html_path, junit_path = outs.resolve(stem)
    collect = journal_path == "-" and outs.multiple  # printed together once all have run

    async def main() -> Any:
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_watch_signals, stop, quiet)
            with live_progress(item, enabled=not quiet) as live:
                report = await run_loaded(item, seed=seed,
                                          journal_path=None if collect else journal_path,
                                          stop=stop, on_progress=feed(live))
            tg.cancel_scope.cancel()
        return report

    _catch_early_signals()
    report = loop.run(main, loop_name)
    _catch_early_signals()
    journal = report.to_dict()
    if collect:
        outs.stdout_journals.append(journal)
    write_reports(journal, html=html_path, junit=junit_path)
    print_summary(journal, quiet=quiet, verbose=verbose, journal_path=journal_path)
    return _exit_code(journal)


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


if __name__ == "__main__":  # pragma: no cover
    main()
