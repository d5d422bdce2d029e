"""Acceptance tests for the Python API, plugins and pytest as a user meets them
(docs/plugins.md, docs/pytest.md).

Each test is written the way the contract shows the call. The regressions found by the
acceptance review are marked ``regression:`` in their docstrings.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

import chaospool
from chaospool.testing import synchronize, wait_for

REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("chaospool"))
DEMO = "chaospool.workers.demo"

USER_WORKER = '''
import os
import sys

from chaospool.worker import command


@command
def create_program(args, ctx):
    pid = f"prog-{len(ctx.session.get('programs', {}))}"
    ctx.session.setdefault("programs", {})[pid] = args["signature"]
    return {"program_id": pid}


@command
def chatty(args, ctx):
    print("a worker print() " * 50)
    print("and stderr", file=sys.stderr)
    sys.stdout.write("\\x00\\x00\\x00\\x05junk that looks like a frame header\\n")
    sys.stdout.flush()
    return {"env": os.environ.get("CHAOSPOOL_ACCEPTANCE_MARK")}


@command
def shout_and_die(args, ctx):
    print("x" * 20000, flush=True)
    os._exit(3)


@command
def fail(args, ctx):
    raise ValueError("the handler refused")
'''

FREEZE_PLUGIN = '''
import dataclasses
import os
import signal

import chaospool


class Freeze(chaospool.Fault):
    name = "acceptance_freeze"  # the contract's "freeze", renamed: an installed one may exist
    description = "SIGSTOP the targets; SIGCONT them on revert"

    @dataclasses.dataclass
    class Params:
        duration: float = 1.0

    async def inject(self, ctx):
        assert ctx.pool is not None
        for t in ctx.targets:
            os.kill(t.pid, signal.SIGSTOP)
        ctx.record(frozen=[{"index": t.index, "pid": t.pid} for t in ctx.targets],
                   draw=ctx.rng.random(), duration=ctx.params.duration)

    async def revert(self, ctx):
        for t in ctx.targets:
            os.kill(t.pid, signal.SIGCONT)
        ctx.record(thawed=len(ctx.targets))


class Mark(chaospool.Fault):
    """No duration in Params: reverted right after inject."""
    name = "acceptance_mark"

    @dataclasses.dataclass
    class Params:
        note: str = "hi"

    async def inject(self, ctx):
        ctx.record(note=ctx.params.note)

    async def revert(self, ctx):
        ctx.record(reverted=True)


class Explode(chaospool.Fault):
    """Raises in inject or in revert."""
    name = "acceptance_explode"

    @dataclasses.dataclass
    class Params:
        where: str = "inject"

    async def inject(self, ctx):
        if ctx.params.where == "inject":
            raise RuntimeError("inject went wrong")

    async def revert(self, ctx):
        if ctx.params.where == "revert":
            raise ValueError("revert went wrong")


@chaospool.hookimpl
def chaospool_register_faults():
    return [Freeze, Mark, Explode]
'''


@pytest.fixture
def user_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A user's worker module in a temp dir, importable through the parent's sys.path only."""
    (tmp_path / "acceptance_user_worker.py").write_text(USER_WORKER)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CHAOSPOOL_ACCEPTANCE_MARK", "from-the-parent")
    yield "acceptance_user_worker"
    sys.modules.pop("acceptance_user_worker", None)


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _experiment(**extra: Any) -> dict[str, Any]:
    return {"version": 1, "duration": "1s", "seed": 3,
            "pool": {"worker": DEMO, "size": 2}, **extra}


# ---------------------------------------------------------------------------------- §4 Pool


@pytest.mark.unit
def test_pool_size_strings_mean_what_the_dsl_means() -> None:
    """regression: ``Pool(max_memory="300MB")`` was 300 MiB while the DSL's 300MB is 300*10^6."""
    pool = chaospool.Pool(worker=DEMO, max_memory="300MB")
    loaded = chaospool.load_experiment(
        {"version": 1, "pool": {"worker": DEMO, "max_memory": "300MB"}}
    )
    assert pool.config.max_memory == loaded.pool.max_memory == 300 * 10**6
    assert chaospool.Pool(worker=DEMO, max_memory="1GiB").config.max_memory == 2**30
    assert chaospool.Pool(worker=DEMO, max_memory=4096).config.max_memory == 4096
    with pytest.raises(ValueError, match="max_memory"):
        chaospool.Pool(worker=DEMO, max_memory="lots")


@pytest.mark.integration
@pytest.mark.timeout(30)
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_pool_as_the_contract_shows_it(anyio_backend: str) -> None:
    async with chaospool.Pool(worker=DEMO, size=4, max_overflow=1) as pool:
        assert [w.index for w in pool.workers] == [0, 1, 2, 3]
        assert all(w.state == "ready" and w.pid for w in pool.workers)  # handshakes done
        reply = await pool.execute("echo", {"x": 1}, session="s1", timeout=1.0, retries=2)
        assert reply == {"x": 1}
        stats = pool.stats()
        assert (stats.ready_workers, stats.busy_workers, stats.overflow_workers) == (4, 0, 0)
        assert (stats.queue_depth, stats.restarts, stats.errors) == (0, 0, 0)
        assert stats.checkouts == 1
        assert pool.request_timeout == 30.0  # execute's default timeout

        # the fifth concurrent call gets the overflow worker, listed after the slots
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(pool.execute, "sleep", {"duration": 1.5})  # outlasts a start
            await wait_for(lambda: pool.stats().busy_workers == 5, timeout=10)
            assert [w.index for w in pool.workers] == [0, 1, 2, 3, 4]
            assert pool.stats().overflow_workers == 1
        pids = [w.pid for w in pool.workers]
    assert _alive([pid for pid in pids if pid]) == []
    with pytest.raises(chaospool.PoolClosed):
        await pool.execute("ping")


@pytest.mark.integration
@pytest.mark.timeout(30)
@pytest.mark.anyio
async def test_demo_worker_commands() -> None:
    async with chaospool.Pool(worker=DEMO, size=1) as pool:
        assert await pool.execute("ping") == "pong"
        assert await pool.execute("echo", [1, "two"]) == [1, "two"]
        assert await pool.execute("sleep", {"duration": 0.01}) == pytest.approx(0.01)
        assert isinstance(await pool.execute("compute", {"n": 100}), int)
        await pool.execute("alloc", {"mb": 1})
        signature = {"inputs": ["q"], "outputs": ["a"]}
        created = await pool.execute("create_program", {"signature": signature}, session="s")
        assert set(created) == {"program_id"}
        listed = await pool.execute("list_programs", session="s")
        assert listed == {"programs": [created["program_id"]]}
        assert await pool.execute("list_programs", session="other") == {"programs": []}
        ran = await pool.execute(
            "execute", {"program_id": created["program_id"], "inputs": {"q": 1}}, session="s"
        )
        assert set(ran) == {"outputs"}
        with pytest.raises(chaospool.CommandError) as missing:
            await pool.execute("execute", {"program_id": "nope", "inputs": {}}, session="s")
        assert str(missing.value).startswith(f"{missing.value.remote_type}: ")
        with pytest.raises(chaospool.CommandError, match=r"^UnknownCommand: "):
            await pool.execute("no_such_command")


@pytest.mark.integration
@pytest.mark.timeout(30)
@pytest.mark.anyio
async def test_demo_alloc_megabytes_are_the_dsl_megabytes() -> None:
    """regression: ``alloc {mb}`` kept MiB while ``max_memory: 300MB`` counts 10^6 bytes."""
    async with chaospool.Pool(worker=DEMO, size=1) as pool:
        worker = pool.workers[0]
        await pool.execute("alloc", {"mb": 1})  # the first call also warms the allocator up
        before = worker.rss()
        assert await pool.execute("alloc", {"mb": 20}) == {"kept_mb": 21}
        after = worker.rss()
    assert before is not None
    assert after is not None
    assert 19.5e6 < after - before < 20.5e6  # 20 MiB would be 20.97e6


@pytest.mark.integration
@pytest.mark.timeout(30)
@pytest.mark.anyio
async def test_timed_out_worker_is_replaced_and_sessions_survive_crashes() -> None:
    async with chaospool.Pool(worker=DEMO, size=1, request_timeout=0.3) as pool:
        created = await pool.execute("create_program", {"signature": {}}, session="s")
        first = pool.workers[0].pid
        assert first is not None
        with pytest.raises(chaospool.RequestTimeout):
            await pool.execute("sleep", {"duration": 10})  # the pool's request_timeout applies
        assert await pool.execute("ping") == "pong"
        assert pool.workers[0].pid != first
        assert _alive([first]) == []
        crashed = pool.workers[0].pid
        assert crashed is not None
        os.kill(crashed, signal.SIGKILL)
        listed = await pool.execute("list_programs", session="s", retries=2)
        assert listed == {"programs": [created["program_id"]]}
        assert pool.stats().restarts == 2


@pytest.mark.integration
@pytest.mark.timeout(30)
@pytest.mark.anyio
async def test_user_worker_with_parent_path_env_and_prints(user_worker: str) -> None:
    async with chaospool.Pool(worker=user_worker, size=1) as pool:
        made = await pool.execute("create_program", {"signature": {"a": 1}}, session="u")
        assert made == {"program_id": "prog-0"}
        for _ in range(2):  # prints on stdout/stderr never corrupt the channel
            assert await pool.execute("chatty") == {"env": "from-the-parent"}
        with pytest.raises(chaospool.CommandError) as failed:
            await pool.execute("fail")
        assert str(failed.value) == "ValueError: the handler refused"
        assert failed.value.remote_type == "ValueError"
        assert failed.value.remote_message == "the handler refused"
        assert "Traceback" in failed.value.remote_traceback
        with pytest.raises(chaospool.WorkerCrashed) as died:
            await pool.execute("shout_and_die")
    assert died.value.exitcode == 3
    # regression: the last log lines were quoted whole (a 20000-character print)
    assert len(str(died.value)) < 1000


@pytest.mark.integration
@pytest.mark.timeout(30)
@pytest.mark.anyio
async def test_worker_module_holding_imported_handlers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """regression: a worker module that imports its ``@command`` handlers from another module
    (``from myapp.handlers import *``) was refused as registering no handlers."""
    package = tmp_path / "acceptance_app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "handlers.py").write_text(
        "from chaospool.worker import command\n\n@command\ndef hello(args, ctx):\n"
        "    return 'hello'\n"
    )
    (package / "worker.py").write_text("from acceptance_app.handlers import hello  # noqa\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    async with chaospool.Pool(worker="acceptance_app.worker", size=1) as pool:
        assert await pool.execute("hello") == "hello"


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_parent_sigkill_leaves_no_worker(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import json, os, signal, sys
        import anyio, chaospool
        from chaospool.testing import wait_for

        async def main():
            async with chaospool.Pool(worker={DEMO!r}, size=2) as pool:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(pool.execute, "sleep", {{"duration": 60}})
                    await wait_for(lambda: pool.stats().busy_workers == 1)
                    idle = [w.pid for w in pool.workers if w.state == "ready"]
                    os.kill(idle[0], signal.SIGSTOP)
                    print(json.dumps([w.pid for w in pool.workers]), flush=True)
                    await anyio.sleep_forever()

        anyio.run(main, backend=sys.argv[1])
    """))
    for backend in ("asyncio", "trio"):
        proc = subprocess.Popen([sys.executable, str(script), backend],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        pids = json.loads(proc.stdout.readline())
        descendants = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        proc.kill()
        proc.wait()
        proc.stdout.close()
        assert set(pids) <= set(descendants)
        wait_for(lambda ds=descendants: not _alive(ds), timeout=10.0)


# ------------------------------------------------------------------- §4 run / report / load


@pytest.mark.system
@pytest.mark.timeout(40)
def test_contract_run_example_on_the_shipped_experiment(monkeypatch: pytest.MonkeyPatch) -> None:
    """regression: the contract's own example raised -- with ``duration: 5s`` every step of
    experiments/cascade.yaml (at 5s, 6s, 7s) fell after the end of the run."""
    monkeypatch.chdir(REPO)
    report = chaospool.run("experiments/cascade.yaml", seed=7, overrides={"duration": "5s"})
    journal = report.to_dict()
    assert journal["seed"] == 7
    assert journal["status"] == "completed"
    assert [f.fault for f in report.faults] == ["port_crash"] * 3
    assert all(f.error is None and f.reverted_at is not None for f in report.faults)
    assert {f.targets[0].index for f in report.faults} == {0, 2, 4}
    assert report.metrics.total == journal["metrics"]["total"] > 0
    assert report.metrics.recovered >= 0
    assert 0.0 <= report.metrics.success_rate <= 1.0
    assert {(c.metric, c.phase) for c in report.checks} >= {
        ("success_rate", "overall"), ("success_rate", "after"),
    }
    json.dumps(journal)


@pytest.mark.system
@pytest.mark.timeout(30)
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_run_async_report_and_assert_ok(anyio_backend: str) -> None:
    report = await chaospool.run_async(_experiment(
        duration="600ms",
        steady_state={"success_rate": ">= 0", "p99_latency": "< 1us"},
        method=[{"fault": "port_crash", "name": "kill-0", "at": "200ms",
                 "target": {"worker": 0}}],
    ))
    assert report.ok is False
    assert report.metrics.p99_latency > 0
    checks = {c.metric: c for c in report.checks}
    assert checks["success_rate"].ok
    assert not checks["p99_latency"].ok
    assert checks["p99_latency"].phase == "overall"
    assert checks["p99_latency"].expected == "< 1us"
    (fault,) = report.faults
    assert (fault.fault, fault.name, fault.targets[0].index) == ("port_crash", "kill-0", 0)
    assert fault.targets[0].pid
    assert fault.injected_at is not None
    assert fault.error is None
    assert fault.effect["killed"]
    with pytest.raises(AssertionError, match="p99_latency") as failed:
        report.assert_ok()
    assert "success_rate" not in str(failed.value)  # only what failed is tabled


@pytest.mark.unit
@pytest.mark.anyio
async def test_sync_run_inside_an_event_loop_says_what_to_use() -> None:
    """regression: anyio's bare "Already running asyncio in this thread" told users nothing."""
    with pytest.raises(RuntimeError, match=r"await chaospool\.run_async"):
        chaospool.run(_experiment())


@pytest.mark.unit
def test_load_experiment_errors_are_located(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\npool:\n  worker: chaospool.workers.demo\n  sise: 4\n")
    with pytest.raises(chaospool.ExperimentError) as raised:
        chaospool.load_experiment(str(path))
    (error,) = raised.value.errors
    assert (error.path, error.line, error.column) == ("pool.sise", 4, 3)
    assert "did you mean 'size'" in error.message
    assert isinstance(raised.value, chaospool.ChaospoolError)
    with pytest.raises(chaospool.ExperimentError):
        chaospool.load_experiment({"version": 1})


# -------------------------------------------------------------------------------- §5 plugins


@pytest.fixture
def freeze_plugin(tmp_path: Path) -> Path:
    path = tmp_path / "freeze_plugin.py"
    path.write_text(FREEZE_PLUGIN)
    return path


@pytest.mark.unit
def test_a_fault_may_set_its_description_as_a_string(freeze_plugin: Path) -> None:
    """regression: ``description = "..."`` on a plugin fault broke ``chaospool faults``."""

    class Quiet(chaospool.Fault):
        name = "quiet"
        description = "said in a string"  # type: ignore[assignment]

        @dataclasses.dataclass
        class Params:
            pass

    assert Quiet.description() == "said in a string"
    out = subprocess.run([CLI, "faults", "--json", "--plugin", str(freeze_plugin)],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    listed = {f["name"]: f for f in json.loads(out)}
    freeze, mark = listed["acceptance_freeze"], listed["acceptance_mark"]
    assert freeze["description"] == "SIGSTOP the targets; SIGCONT them on revert"
    assert freeze["params"] == {"duration": 1.0}
    assert mark["description"] == "No duration in Params: reverted right after inject."


@pytest.mark.system
@pytest.mark.timeout(30)
def test_plugin_faults_revert_timing_and_failures(freeze_plugin: Path) -> None:
    report = chaospool.run(_experiment(
        duration="1500ms", plugins=[str(freeze_plugin)],
        pool={"worker": DEMO, "size": 2, "request_timeout": 5},
        method=[
            {"fault": "acceptance_freeze", "name": "default", "at": "100ms",
             "target": {"worker": 1}},
            {"fault": "acceptance_freeze", "name": "short", "at": "100ms", "duration": "300ms",
             "target": {"worker": 0}},
            {"fault": "acceptance_mark", "name": "mark", "at": "200ms", "note": "n"},
            {"fault": "acceptance_mark", "name": "mark-300", "at": "200ms", "duration": "300ms"},
            {"fault": "acceptance_explode", "name": "explode", "at": "200ms"},
            {"fault": "acceptance_explode", "name": "late", "at": "200ms", "where": "revert"},
        ],
    ))
    faults = {f.name: f for f in report.faults}
    default, short, mark = faults["default"], faults["short"], faults["mark"]
    # held for the duration, give or take scheduling on a busy machine (lower bound strict)
    assert 0.95 <= default.reverted_at - default.injected_at < 1.5
    assert 0.28 <= short.reverted_at - short.injected_at < 0.8
    assert default.effect["frozen"] == [{"index": 1, "pid": default.targets[0].pid}]
    assert default.effect["thawed"] == 1
    assert short.effect["duration"] == pytest.approx(0.3)
    assert mark.effect == {"note": "n", "reverted": True}
    assert mark.reverted_at - mark.injected_at < 0.2
    held = faults["mark-300"]  # a step's duration holds a fault whose Params have none
    assert 0.28 <= held.reverted_at - held.injected_at < 0.8
    assert faults["explode"].error == "RuntimeError: inject went wrong"
    assert faults["late"].error == "ValueError: revert went wrong"
    assert report.to_dict()["status"] == "failed"
    assert not report.ok


@pytest.mark.unit
def test_plugin_params_validated_with_did_you_mean(freeze_plugin: Path) -> None:
    with pytest.raises(chaospool.ExperimentError, match=r"did you mean 'note'"):
        chaospool.load_experiment(_experiment(
            plugins=[str(freeze_plugin)],
            method=[{"fault": "acceptance_mark", "at": "1ms", "nte": "x"}],
        ))


@pytest.mark.system
@pytest.mark.timeout(40)
def test_plugin_from_an_entry_point_and_exit_3(tmp_path: Path, freeze_plugin: Path) -> None:
    dist = tmp_path / "freeze_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: freeze-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[chaospool]\nacceptance = freeze_plugin\n")
    (tmp_path / "exp.yaml").write_text(textwrap.dedent(f"""
        version: 1
        duration: 800ms
        pool: {{worker: {DEMO}, size: 2}}
        method:
          - {{fault: acceptance_freeze, at: 100ms, duration: 200ms, target: {{worker: 0}}}}
          - {{fault: acceptance_explode, at: 100ms, target: {{worker: 1}}}}
    """))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([CLI, "run", "exp.yaml", "--quiet", "--journal", "j.json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 3, done.stdout + done.stderr
    journal = json.loads((tmp_path / "j.json").read_text())
    assert journal["status"] == "failed"
    freeze, explode = journal["faults"]
    assert freeze["error"] is None
    assert freeze["effect"]["thawed"] == 1
    assert explode["error"] == "RuntimeError: inject went wrong"


# --------------------------------------------------------------------------------- §6 pytest


@pytest.mark.system
@pytest.mark.timeout(60)
def test_pytest_plugin_as_a_user_meets_it(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        import pytest

        @pytest.fixture(params=["asyncio", "trio"])
        def anyio_backend(request):
            return request.param
    """)
    pytester.makepyfile(test_user=f'''
        import pytest

        EXP = {{"version": 1, "duration": "400ms", "pool": {{"worker": "{DEMO}", "size": 1}}}}

        @pytest.mark.chaos
        def test_sync(chaospool_run):
            assert chaospool_run(EXP).to_dict()["seed"] == 1234  # --chaos-seed

        @pytest.mark.anyio
        async def test_async(chaospool_run):
            report = await chaospool_run.async_(EXP, seed=5, overrides={{"duration": "300ms"}})
            assert report.to_dict()["seed"] == 5

        @pytest.mark.anyio
        async def test_pool(chaospool_pool):
            async with chaospool_pool(worker="{DEMO}", size=2) as pool:
                assert await pool.execute("ping") == "pong"

        @pytest.mark.anyio
        async def test_left_open(chaospool_pool):
            pool = await chaospool_pool(worker="{DEMO}", size=1).__aenter__()
            assert await pool.execute("ping") == "pong"

        def test_not_ok(chaospool_run):
            chaospool_run({{**EXP, "steady_state": {{"total": "< 1"}}}}).assert_ok()
    ''')
    result = pytester.runpytest_subprocess("--chaos-seed", "1234", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, failed=3)  # async tests run on both backends
    result.stdout.fnmatch_lines([
        "*chaospool_pool: worker processes still alive after the test: pids [[]*",
        "*journal: *journal-0.json*",
        "*reproduce: pytest test_user.py::test_not_ok --chaos-seed 1234*",
    ])
    markers = pytester.runpytest_subprocess("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.chaos*"])
    helped = pytester.runpytest_subprocess("--help")
    helped.stdout.fnmatch_lines(["*--chaos-seed*"])


@pytest.mark.unit
def test_testing_helpers_sync() -> None:
    import inspect

    params = inspect.signature(wait_for).parameters
    assert (params["timeout"].default, params["interval"].default) == (5.0, 0.05)
    assert wait_for(lambda: 7) == 7
    with pytest.raises(TimeoutError):
        wait_for(lambda: False, timeout=0.1, interval=0.02)
    assert synchronize(lambda: 1, lambda: 2) == [1, 2]


@pytest.mark.unit
@pytest.mark.anyio
async def test_testing_helpers_async() -> None:
    async def one() -> int:
        return 1

    assert await synchronize(one, one) == [1, 1]
    assert await wait_for(one) == 1
