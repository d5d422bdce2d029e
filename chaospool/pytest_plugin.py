"""chaospool's pytest plugin (entry point ``pytest11``): run experiments and pools in tests.

Import-light on purpose -- pytest loads it in *every* session of every project that has chaospool
installed, so importing it pulls in nothing but pytest and the standard library: the engine, the
YAML loader, anyio and psutil are imported when a fixture is first used.

* ``chaospool_run(path_or_mapping, seed=None, overrides=None) -> Report`` runs an experiment
  (``await chaospool_run.async_(...)`` inside async tests), writes its journal under the test's
  ``tmp_path`` and, when the test fails or an experiment is not ok, adds a "chaospool" section to
  the failure report: the check table, the seed, the journal path and how to reproduce.
* ``chaospool_pool(worker=..., size=...)`` opens a :class:`chaospool.Pool`; after the test, the test
  *fails* if a process one of its pools started is still alive (the pids are named), and the
  fixture then closes what was left.
* marker ``chaos`` (``@pytest.mark.chaos(seed=N)`` sets a default seed), option ``--chaos-seed N``.

Seed precedence for ``chaospool_run``: the call's ``seed=`` > ``--chaos-seed`` > the marker's
``seed=`` > the experiment's own ``seed`` (else drawn at random and recorded in the journal).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import psutil

    from chaospool.experiment import Report
    from chaospool.pool import Pool, PoolEvent

__all__ = ("PoolFactory", "Runner")

_RUNNERS = pytest.StashKey["Runner"]()
_POOLS = pytest.StashKey["PoolFactory"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaospool", "chaospool: chaos experiments on worker pools")
    group.addoption(
        "--chaos-seed",
        action="store",
        type=int,
        default=None,
        dest="chaos_seed",
        metavar="N",
        help="seed for experiments run through the chaospool_run fixture "
        "(reproduces a failing run; an explicit seed= in the test still wins)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "chaos(seed=None): a chaos-engineering test (faults injected under load); "
        "seed= is the default seed of chaospool_run in this test",
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    seed = config.getoption("chaos_seed", None)
    return None if seed is None else f"chaospool: --chaos-seed={seed}"


# ---------------------------------------------------------------------------- chaospool_run


@dataclass
class _Run:
    journal: dict[str, Any]
    journal_path: Path


@dataclass
class Runner:
    """The ``chaospool_run`` fixture: runs experiments and keeps their journals for the report."""

    journal_dir: Path
    default_seed: int | None
    nodeid: str
    runs: list[_Run] = field(default_factory=list)

    def __call__(
        self,
        experiment: Any,
        seed: int | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Report:
        """Run ``experiment`` (a path, a mapping or an Experiment) to completion; its Report."""
        from chaospool.testing import _in_async_context

        if _in_async_context():
            raise RuntimeError(
                "chaospool_run(...) starts its own event loop, so it cannot run inside an "
                "async test: use `await chaospool_run.async_(...)` there"
            )
        from chaospool.experiment import run

        report = run(experiment, **self._options(seed, overrides))
        return self._keep(report)

    async def async_(
        self,
        experiment: Any,
        seed: int | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Report:
        """Like calling the fixture, for async tests: ``await chaospool_run.async_(...)``."""
        from chaospool.experiment import run_async

        report = await run_async(experiment, **self._options(seed, overrides))
        return self._keep(report)

    @property
    def journals(self) -> list[dict[str, Any]]:
        """The journals of this test's runs, in order (as written to ``journal_dir``)."""
        return [run.journal for run in self.runs]

    def _options(self, seed: int | None, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
        options: dict[str, Any] = {}
        chosen = seed if seed is not None else self.default_seed
        if chosen is not None:
            options["seed"] = chosen
        if overrides:
            options["overrides"] = dict(overrides)
        return options

    def _keep(self, report: Report) -> Report:
        journal = report.to_dict()
        path = self.journal_dir / f"journal-{len(self.runs)}.json"
        path.write_text(json.dumps(journal, indent=2, default=str))
        self.runs.append(_Run(journal, path))
        return report

    def summary(self, *, failed: bool) -> str | None:
        """The failure-report section: every run when the test failed, else the runs not ok."""
        shown = [run for run in self.runs if failed or not run.journal.get("ok", False)]
        if not shown:
            return None
        return "\n\n".join(_describe_run(run, self.nodeid) for run in shown)


def _default_seed(request: pytest.FixtureRequest) -> int | None:
    seed: int | None = request.config.getoption("chaos_seed", None)
    if seed is not None:
        return seed
    marker = request.node.get_closest_marker("chaos")
    value = marker.kwargs.get("seed") if marker is not None else None
    return int(value) if value is not None else None


@pytest.fixture
def chaospool_run(request: pytest.FixtureRequest, tmp_path: Path) -> Runner:
    """Run an experiment: ``chaospool_run(path_or_mapping, seed=None, overrides=None)``."""
    journal_dir = tmp_path / "chaospool"
    journal_dir.mkdir(exist_ok=True)
    runner = Runner(journal_dir, _default_seed(request), request.node.nodeid)
    request.node.stash[_RUNNERS] = runner
    return runner


def _describe_run(run: _Run, nodeid: str) -> str:
    journal = run.journal
    experiment = journal.get("experiment") or {}
    seed = journal.get("seed")
    lines = [
        f"experiment: {experiment.get('title') or '(untitled)'}"
        + (f" ({experiment['path']})" if experiment.get("path") else ""),
        f"status: {journal.get('status')}   ok: {journal.get('ok')}   seed: {seed}",
        f"journal: {run.journal_path}",
        f"reproduce: pytest {nodeid} --chaos-seed {seed}",
    ]
    lines += _check_table(journal.get("checks") or [])
    lines += [
        f"fault {f.get('name') or f.get('fault')}: error {f['error']}"
        for f in journal.get("faults") or []
        if f.get("error")
    ]
    lines += [f"plugin error: {e}" for e in journal.get("plugin_errors") or []]
    return "\n".join(lines)


def _check_table(checks: list[dict[str, Any]]) -> list[str]:
    if not checks:
        return ["checks: none (no steady_state)"]
    rows = [("metric", "phase", "expected", "observed", "ok")]
    rows += [
        (
            str(c.get("metric")),
            str(c.get("phase")),
            str(c.get("expected")),
            _show(c.get("observed")),
            "ok" if c.get("ok") else "FAILED",
        )
        for c in checks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return ["checks:"] + [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    runner = item.stash.get(_RUNNERS, None)
    if report.when == "call" and runner is not None:
        text = runner.summary(failed=report.failed)
        if text:
            report.sections.append(("chaospool", text))
    return report


# ---------------------------------------------------------------------------- chaospool_pool


@dataclass
class _Tracked:
    """One pool the fixture opened and every worker process it was seen to start."""

    pool: Pool
    processes: dict[int, psutil.Process] = field(default_factory=dict)

    def note(self, pid: int | None) -> None:
        if pid is None or pid in self.processes:
            return
        import psutil

        with contextlib.suppress(psutil.Error):  # already gone: nothing to watch
            proc = psutil.Process(pid)
            self.processes[pid] = proc
            # A worker may be forked by a helper of the pool (a zygote): the processes between
            # it and us were started by the pool too.
            chain = [p.pid for p in proc.parents()]
            if os.getpid() in chain:
                for parent in proc.parents()[: chain.index(os.getpid())]:
                    self.processes.setdefault(parent.pid, parent)

    def on_event(self, event: PoolEvent) -> None:
        self.note(event.pid)

    def note_workers(self) -> None:
        for handle in self.pool.workers:
            self.note(handle.pid)

    def alive(self) -> list[psutil.Process]:
        import psutil

        alive = []
        for proc in self.processes.values():
            with contextlib.suppress(psutil.Error):
                # is_running() also guards against a recycled pid (it compares create times)
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
        return alive


class _Entered(contextlib.AbstractAsyncContextManager["Pool"]):
    """Knows whether the pool it wraps was entered and not yet exited (a pool left open)."""

    def __init__(self, inner: contextlib.AbstractAsyncContextManager[Pool]) -> None:
        self._inner = inner
        self.open = False

    async def __aenter__(self) -> Pool:
        pool = await self._inner.__aenter__()
        self.open = True
        return pool

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        self.open = False
        return await self._inner.__aexit__(*exc_info)


class PoolFactory:
    """The ``chaospool_pool`` fixture: ``async with chaospool_pool(worker=...) as pool``."""

    def __init__(self) -> None:
        self._tracked: list[_Tracked] = []
        self._entered: list[_Entered] = []

    def __call__(self, worker: str, **options: Any) -> contextlib.AbstractAsyncContextManager[Pool]:
        """Open a ``chaospool.Pool(worker, **options)`` watched by this test."""
        cm = _Entered(self._open(worker, options))
        self._entered.append(cm)
        return cm

    @contextlib.asynccontextmanager
    async def _open(self, worker: str, options: dict[str, Any]) -> AsyncIterator[Pool]:
        from chaospool.pool import Pool

        tracked = _Tracked(Pool(worker, **options))
        self._tracked.append(tracked)
        unsubscribe = tracked.pool.subscribe(tracked.on_event)
        try:
            async with tracked.pool as pool:
                tracked.note_workers()
                try:
                    yield pool
                finally:
                    tracked.note_workers()
        finally:
            unsubscribe()

    def leftover_pids(self) -> list[int]:
        """Pids of processes this test's pools started that are still alive."""
        return sorted(p.pid for t in self._tracked for p in t.alive())

    async def close_leftovers(self) -> None:
        """Close the pools the test left open, then kill whatever still runs (and reap it)."""
        for cm in reversed(self._entered):
            if not cm.open:
                continue
            # anyio's pytest plugin runs a test and its async fixtures in one runner task, so a
            # pool the test left open is still that task's innermost cancel scope: exiting it
            # here runs the pool's own shutdown. No timeout scope around it -- a new scope would
            # nest *inside* the pool's and make exiting the pool's illegal; the pool's close is
            # bounded by itself, and the processes are killed below whatever happens.
            with contextlib.suppress(Exception):
                await cm.__aexit__(None, None, None)
        self.kill_leftovers()

    def kill_leftovers(self) -> None:
        import psutil

        alive = [p for t in self._tracked for p in t.alive()]
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=5.0)  # reaps our children, so no zombie remains


@pytest.fixture
async def chaospool_pool(
    request: pytest.FixtureRequest, anyio_backend: Any
) -> AsyncIterator[PoolFactory]:
    """An async pool factory; the test fails if a process its pools started outlives it."""
    factory = PoolFactory()
    request.node.stash[_POOLS] = factory
    yield factory
    await factory.close_leftovers()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    result = yield  # the test's own failure propagates from here untouched
    factory = item.stash.get(_POOLS, None)
    leftovers = factory.leftover_pids() if factory is not None else []
    if leftovers:
        pytest.fail(
            f"chaospool_pool: worker processes still alive after the test: pids {leftovers} "
            "(a pool left open?); the fixture closes them at teardown",
            pytrace=False,
        )
    return result
