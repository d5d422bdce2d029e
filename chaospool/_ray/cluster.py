"""The process's Ray connection and, for ``address: local``, the cluster chaospool started.

Ray allows one connection per process, so this is a process-wide, reference-counted session:
every pool (and the test suite's fixture) acquires it and releases it; the last release shuts a
local cluster down. Nodes get stable indexes (0 = head; a replacement node gets the next one).
Every call here blocks. Those that start or stop Ray processes run on one long-lived thread
(``on_ray_thread``): Ray starts its processes with the kernel's parent-death signal, which fires
when the *thread* that forked them ends -- a pooled thread retiring would kill the cluster.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from chaospool._ray import messages
from chaospool._ray.boot import import_ray, keep_signal_handlers
from chaospool._ray.settings import RaySettings

__all__ = ("ClusterSession", "NodeInfo", "acquire", "current", "on_ray_thread", "release")

_HEAD_RESOURCE = "node:__internal_head__"
_LOCK = threading.RLock()
_SESSION: ClusterSession | None = None
_EXECUTOR = ThreadPoolExecutor(1, thread_name_prefix="chaospool-ray")  # never retires
NODE_CPUS = 2  # local worker nodes; pool actors ask for 0 CPU, so this only bounds user tasks


def on_ray_thread(fn: Callable[..., Any], *args: Any) -> Future[Any]:
    """Run ``fn(*args)`` on the one thread that starts and stops Ray processes."""
    return _EXECUTOR.submit(fn, *args)


@dataclass
class NodeInfo:
    index: int
    node_id: str
    alive: bool = True
    node: Any = None  # ray._private.node.Node of a local cluster
    died_at: float | None = None


@dataclass
class ClusterSession:
    ray: ModuleType
    settings: RaySettings
    cluster: Any = None  # ray.cluster_utils.Cluster when local
    temp_dir: str | None = None
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    agents: dict[str, Any] = field(default_factory=dict)
    refs: int = 0
    reaper: Any = None  # the watchdog of a local cluster (see REAPER)
    router: messages.Router | None = None  # Ray's messages, off the terminal (local only)

    @property
    def local(self) -> bool:
        return self.cluster is not None

    # -- nodes --------------------------------------------------------------------------
    def _register(self, node_id: str, node: Any = None) -> NodeInfo:
        info = self.nodes.get(node_id)
        if info is None:
            info = self.nodes[node_id] = NodeInfo(len(self.nodes), node_id, node=node)
        return info

    def refresh(self) -> list[NodeInfo]:
        """Ray's view of the nodes (alive or not), merged into the index table."""
        with _LOCK:
            entries = self.ray.nodes()
            entries.sort(key=lambda e: _HEAD_RESOURCE not in e.get("Resources", {}))
            for entry in entries:
                info = self._register(entry["NodeID"])
                if not entry["Alive"] and info.alive:
                    info.alive, info.died_at = False, time.monotonic()
            return self.alive()

    def alive(self) -> list[NodeInfo]:
        return sorted((n for n in self.nodes.values() if n.alive), key=lambda n: n.index)

    def by_index(self, index: int) -> NodeInfo:
        for info in self.nodes.values():
            if info.index == index:
                return info
        known = sorted(n.index for n in self.nodes.values())
        raise LookupError(f"no node {index} in this cluster (nodes: {known})")

    def candidates(self) -> list[NodeInfo]:
        """Where pool workers go: the alive non-head nodes, or the head if it is alone."""
        alive = self.alive()
        return [n for n in alive if n.index != 0] or alive

    def mark_dead(self, info: NodeInfo) -> None:
        with _LOCK:
            if info.alive:
                info.alive, info.died_at = False, time.monotonic()
            self.agents.pop(info.node_id, None)

    # -- agents -------------------------------------------------------------------------
    def agent(self, node_id: str) -> Any:
        """The node-local agent actor of ``node_id`` (created on first use, kept)."""
        agent = self.agents.get(node_id)  # the hot path (a signal) takes no lock
        if agent is not None:
            return agent
        with _LOCK:
            info = self.nodes.get(node_id)
            if info is not None and not info.alive:
                raise ProcessLookupError(f"node {info.index} is dead: nothing runs there")
            agent = self.agents.get(node_id)
            if agent is None:
                from chaospool._ray.actors import NodeAgent

                agent = self.ray.remote(NodeAgent).options(
                    num_cpus=0, max_restarts=0, max_task_retries=0, max_concurrency=4,
                    scheduling_strategy=_affinity(self.ray, node_id),
                ).remote()
                self.agents[node_id] = agent
            return agent

    # -- a local cluster ----------------------------------------------------------------
    def add_node(self) -> NodeInfo:
        """A new worker node on 127.0.0.1 (local clusters only); returns once it registered."""
        if self.cluster is None:
            raise RuntimeError("only a local cluster started by chaospool can add nodes")
        with keep_signal_handlers(self.ray):
            node = self.cluster.add_node(**_node_args(NODE_CPUS))
        with _LOCK:
            return self._register(node.node_id, node)

    def remove_node(self, info: NodeInfo) -> None:
        """Every process of the node killed at once (no graceful shutdown)."""
        if self.cluster is None or info.node is None:
            raise RuntimeError("only a worker node of a local cluster started by chaospool "
                               "can be removed")
        self.mark_dead(info)
        self.cluster.remove_node(info.node, allow_graceful=False)

    def is_alive_in_ray(self, node_id: str) -> bool | None:
        """Ray's own view (GCS) of one node: True, False (declared dead), None (unknown)."""
        for entry in self.ray.nodes():
            if entry["NodeID"] == node_id:
                return bool(entry["Alive"])
        return None

    def raylet_pid(self, info: NodeInfo) -> int | None:
        node = info.node
        if node is None:
            return None
        procs = node.all_processes.get("raylet") or []
        return procs[0].process.pid if procs else None

    def ensure_nodes(self, count: int) -> None:
        while self.local and len(self.alive()) < count:
            self.add_node()

    def shutdown(self) -> None:
        try:
            self.ray.shutdown()
        finally:
            if self.router is not None:
                messages.install(self.ray, None)
            if self.cluster is not None:
                self.cluster.shutdown()
            if self.reaper is not None:
                self.reaper.stdin.close()  # it sweeps up anything left, then exits
                self.reaper.wait(30)
            if self.temp_dir is not None:
                shutil.rmtree(self.temp_dir, ignore_errors=True)


def _loopback(address: str) -> bool:
    """A cluster on this machine's loopback: Ray must not learn the host's IP to reach it."""
    host = address.removeprefix("ray://").rpartition(":")[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def _affinity(ray: ModuleType, node_id: str) -> Any:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id, soft=False)


def _node_args(cpus: int) -> dict[str, Any]:
    return {"num_cpus": cpus, "node_ip_address": "127.0.0.1", "include_dashboard": False}


# A watchdog outside Ray's process tree: when its stdin reaches EOF (the pool's process exited
# or was SIGKILLed) it kills every process that carries this cluster's private temp dir in its
# environment or has a file open under it -- Ray's node agents are started by the raylets
# without the kernel's parent-death link and outlive a killed parent otherwise -- then removes
# the dir.
# Ray's process titles overwrite the environment block of some processes, so a process that
# holds a file under the temp dir open (its logs) counts as the cluster's too.
REAPER = """
import os, shutil, signal, sys
tmp, spared = sys.argv[1], {os.getpid(), int(sys.argv[2])}  # never the pool's own process
mark = ("RAY_TMPDIR=" + tmp + "\\0").encode()
sys.stdin.buffer.read()
def ours(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        if mark in f.read():
            return True
    fds = f"/proc/{pid}/fd"
    return any(os.readlink(f"{fds}/{fd}").startswith(tmp) for fd in os.listdir(fds))
for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
    try:
        if pid not in spared and ours(pid):
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
shutil.rmtree(tmp, ignore_errors=True)
"""


def _start_reaper(temp_dir: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", REAPER, temp_dir, str(os.getpid())], stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def _start_local(ray: ModuleType, settings: RaySettings) -> ClusterSession:
    from ray.cluster_utils import Cluster

    # short and private: Unix socket paths under it must stay below ~107 bytes
    temp_dir = tempfile.mkdtemp(prefix="cpray-", dir="/tmp")
    os.environ["RAY_TMPDIR"] = temp_dir  # Ray's "current cluster" file goes there too
    ray_dir = os.path.join(temp_dir, "ray")
    os.makedirs(ray_dir)
    head = {**_node_args(0), "temp_dir": ray_dir,
            "_system_config": settings.health.system_config()}
    reaper = _start_reaper(temp_dir)
    cluster = Cluster(initialize_head=True, head_node_args=head)
    session = ClusterSession(ray, settings, cluster, temp_dir, reaper=reaper)
    try:
        head_node: Any = cluster.head_node
        session._register(head_node.node_id, head_node)
        for _ in range(settings.nodes - 1):
            session.add_node()
        cluster.wait_for_nodes()
        session.router = messages.Router(head_node.get_logs_dir_path())
        messages.install(ray, session.router)
        # Ray's own Python logger at ERROR: its INFO/WARNING lines stay off the terminal
        ray.init(address=cluster.address, _node_ip_address="127.0.0.1", log_to_driver=False,
                 include_dashboard=False, logging_level=logging.ERROR)
    except BaseException:
        session.shutdown()
        raise
    return session


def _connect(ray: ModuleType, settings: RaySettings) -> ClusterSession:
    ray.init(address=settings.address, log_to_driver=False)
    session = ClusterSession(ray, settings)
    session.refresh()
    return session


def acquire(settings: RaySettings) -> ClusterSession:
    """The process's session for ``settings`` (started or connected on first use)."""
    global _SESSION
    with _LOCK:
        session = _SESSION
        if session is None:
            ray = import_ray(local=settings.local or _loopback(settings.address))
            if ray.is_initialized():
                raise RuntimeError("Ray is already connected in this process (ray.init was "
                                   "called outside chaospool); chaospool needs its own session")
            start = _start_local if settings.local else _connect
            with keep_signal_handlers(ray):
                session = _SESSION = start(ray, settings)
        elif session.settings.address != settings.address:
            raise RuntimeError(
                f"this process is already connected to Ray at {session.settings.address!r}; "
                f"Ray allows one connection per process, so address {settings.address!r} "
                "cannot be used at the same time"
            )
        session.refs += 1
    try:
        session.ensure_nodes(settings.nodes)
        for info in session.alive():
            session.agent(info.node_id)
    except BaseException:
        release(session)
        raise
    return session


def release(session: ClusterSession) -> None:
    """Drop one reference; the last one disconnects (and shuts a local cluster down)."""
    global _SESSION
    with _LOCK:
        session.refs -= 1
        if session.refs > 0 or _SESSION is not session:
            return
        _SESSION = None
    session.shutdown()


def current() -> ClusterSession | None:
    return _SESSION
