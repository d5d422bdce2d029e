"""One local 3-node Ray cluster for every Ray test of the session (docs/ray.md).

A 3-node cluster costs ~1 GB and seconds to start, so it is started once, on first use, and
shut down by the fixture's finalizer. Every node is on 127.0.0.1 (``chaospool._ray.boot``).
Pools in the tests ask for ``address: local`` and share it: the process has one Ray session,
reference-counted; a pool start also re-adds nodes an earlier test crashed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from chaospool._ray import boot
from chaospool._ray import cluster as ray_cluster_mod
from chaospool._ray.settings import RaySettings

if importlib.util.find_spec("ray") is None:
    pytest.skip("the Ray backend's tests need the ray extra", allow_module_level=True)
boot.import_ray(local=True)  # before anything else imports Ray: loopback settings first

START_BOUND = 180.0  # a loaded 2-core machine starts 3 nodes in 4-20 s
ACTOR_TITLES = ("ray::WorkerActor", "ray::NodeAgent")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start a cluster of their own run before the shared one exists (never two
    clusters at once on this machine); every Ray test in one xdist worker (one cluster)."""
    here = Path(__file__).parent
    for item in items:  # under pytest-xdist every Ray test runs in one worker process
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.xdist_group("ray"))
    own = [i for i in items if i.get_closest_marker("own_cluster")]
    if own:
        first = min(items.index(i) for i in items if "tests/ray/" in str(i.path))
        rest = [i for i in items if i not in own]
        items[:] = rest[:first] + own + rest[first:]
    # a test that loses one of the shared cluster's nodes for good runs after every test that
    # names nodes by index (indexes are never reused: the node it adds back is a new one)
    spent = [i for i in items if i.get_closest_marker("spends_node")]
    if spent:
        rest = [i for i in items if i not in spent]
        last = max(rest.index(i) for i in rest if "tests/ray/" in str(i.path))
        items[:] = rest[:last + 1] + spent + rest[last + 1:]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "own_cluster: starts (and kills) a Ray cluster of its own")
    config.addinivalue_line("markers", "spends_node: loses a node of the shared cluster for good")


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    settings = RaySettings(address="local", nodes=3)
    session = ray_cluster_mod.on_ray_thread(ray_cluster_mod.acquire, settings).result(
        timeout=START_BOUND)
    try:
        yield session
    finally:
        ray_cluster_mod.on_ray_thread(ray_cluster_mod.release, session).result(timeout=60)


def _title(proc: psutil.Process) -> str:
    try:
        cmd = proc.cmdline()
        return cmd[0] if cmd else proc.name()
    except psutil.Error:
        return ""


def pool_actors() -> list[psutil.Process]:
    """Pool worker actors alive under this process (the cluster's processes are children)."""
    return [p for p in psutil.Process().children(recursive=True)
            if _title(p).startswith("ray::WorkerActor")]


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    """The suite's guard, for a cluster whose own processes outlive a test: no pool worker
    actor (nor any process that is not Ray's) may remain once the test's pools closed."""
    def foreign() -> set[int]:
        return {p.pid for p in psutil.Process().children(recursive=True)
                if "ray" not in " ".join(_cmd(p)) and _status(p) != psutil.STATUS_ZOMBIE}

    before = foreign()
    yield
    new = [psutil.Process(pid) for pid in foreign() - before if psutil.pid_exists(pid)]
    _gone, alive = psutil.wait_procs(new + pool_actors(), timeout=5.0)
    for p in alive:
        p.kill()
    assert not alive, f"test left processes alive: {[(p.pid, _title(p)) for p in alive]}"


def _cmd(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def _status(proc: psutil.Process) -> str:
    try:
        return str(proc.status())
    except psutil.Error:
        return psutil.STATUS_ZOMBIE

