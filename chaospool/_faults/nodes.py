"""Helpers of the node faults (``node_crash``, ``node_freeze``): which node, and what the pool
and Ray did about it. Node faults need the Ray backend (docs/ray.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from chaospool.errors import ChaospoolError, FaultError

from ._common import EventLog, now, seconds

if TYPE_CHECKING:
    from chaospool._ray.backend import RayBackend
    from chaospool._ray.cluster import ClusterSession, NodeInfo
    from chaospool.fault import FaultContext
    from chaospool.pool import Pool

NODE_FAULTS = frozenset({"node_crash", "node_freeze"})
DEAD_WAIT = 15.0  # bound on waiting for Ray to declare a node dead (fast settings: ~1.5 s)
SERVE_WAIT = 20.0  # bound on waiting for the node's workers to serve again elsewhere


@dataclass(frozen=True)
class Injected:
    """What a node fault's inject left for its revert: the node and where the watch began."""

    backend: RayBackend
    session: ClusterSession
    info: NodeInfo
    log: EventLog
    at: float


def injected(ctx: FaultContext, fault: str) -> Injected | None:
    """The node this step's inject acted on; None if it never picked one (nothing to revert)."""
    info = ctx.state.get("info")
    if info is None:
        return None
    backend = ray_backend(ctx, fault)
    assert backend.session is not None  # ray_backend refuses a pool without one
    return Injected(backend, backend.session, info, ctx.state["log"], ctx.state["at"])


def ray_backend(ctx: FaultContext, fault: str) -> RayBackend:
    from chaospool._ray.backend import backend_of

    backend = backend_of(ctx.pool)
    if backend is None or backend.session is None:
        raise FaultError(fault, "node faults need a pool with 'backend: ray' (docs/ray.md)")
    return backend


async def on_ray(backend: RayBackend, fn: Any, *args: Any) -> Any:
    from chaospool._ray.backend import blocking

    assert backend.post is not None
    return await blocking(backend.post, fn, *args)


async def ask_ray(fn: Any, *args: Any) -> Any:
    """A read of Ray's state (no process started): any thread will do, so it never waits
    behind a node being added on the Ray thread."""
    return await anyio.to_thread.run_sync(fn, *args)


async def pick_node(ctx: FaultContext, backend: RayBackend, fault: str) -> NodeInfo:
    """``{node: N}`` or a non-head alive node drawn with the run's seed. The head is never a
    target: it holds the cluster's control store and the driver's connection."""
    session = backend.session
    assert session is not None
    await ask_ray(session.refresh)
    target = ctx.target
    if target is not None and getattr(target, "kind", None) == "node":
        try:
            info = session.by_index(int(target.node))
        except LookupError as exc:
            raise FaultError(fault, str(exc)) from None
        if info.index == 0:
            raise FaultError(fault, "node 0 is the head (the cluster's control store and the "
                                    "driver's connection): target a worker node")
        if not info.alive:
            raise FaultError(fault, f"node {info.index} is already dead")
        return info
    candidates = [n for n in session.alive() if n.index != 0]
    if not candidates:
        raise FaultError(fault, "the cluster has no alive worker node (the head is never a target)")
    return ctx.rng.choice(candidates)


@dataclass
class NodeWorker:
    index: int
    pid: int


def workers_on(pool: Pool, node: int) -> list[NodeWorker]:
    return [NodeWorker(h.index, h.pid) for h in pool.workers
            if h.node == node and h.pid is not None and h.state in ("ready", "busy", "starting")]


async def wait_declared_dead(
    backend: RayBackend, session: ClusterSession, node_id: str, since: float
) -> float | None:
    """Seconds from ``since`` until Ray's control store says the node is dead (None: not
    within DEAD_WAIT)."""
    deadline = now() + DEAD_WAIT
    while now() < deadline:
        if await ask_ray(session.is_alive_in_ray, node_id) is False:
            return seconds(now() - since)
        await anyio.sleep(0.05)
    return None


async def wait_workers(
    pool: Pool, workers: list[NodeWorker], log: EventLog, since: float, deadline: float,
    *, lost: bool,
) -> list[dict[str, Any]]:
    """Per worker of the node: serving again (same pid: resumed; new pid: replaced), when.

    ``lost``: the node is gone, so each worker must be serving with a new actor (the pool may
    not have noticed the death yet); else a worker the pool saw crash must be replaced."""
    records = []
    for w in workers:
        record: dict[str, Any] = {"index": w.index, "pid": w.pid}
        gone = lost or bool(log.of("crash", pid=w.pid))
        try:
            handle = await pool.wait_serving(w.index, not_pid=w.pid if gone else None,
                                             timeout=max(0.0, deadline - now()))
        except (TimeoutError, ChaospoolError) as exc:
            record.update(outcome="not_serving", reason=f"{type(exc).__name__}: {exc}")
            records.append(record)
            continue
        starts = log.of("start", pid=handle.pid, index=w.index)
        record.update(
            outcome="resumed" if handle.pid == w.pid else "replaced",
            serving_pid=handle.pid, serving_node=handle.node,
            crash_seen_after=_first(log, "crash", w.pid, since),
            serving_after=seconds((starts[0].time if starts else now()) - since),
        )
        records.append(record)
    return records


def _first(log: EventLog, kind: str, pid: int, since: float) -> float | None:
    events = log.of(kind, pid=pid)
    return seconds(events[0].time - since) if events else None


async def replace_node(backend: RayBackend, session: ClusterSession) -> dict[str, Any]:
    """A local cluster gets a fresh worker node (a real cluster's operator does that)."""
    if not session.local:
        return {"replacement_node": None, "replacement_reason": not_added(session)}
    started = now()
    info = await on_ray(backend, session.add_node)
    await on_ray(backend, session.agent, info.node_id)
    return {"replacement_node": info.index, "replacement_join_time": seconds(now() - started)}


def not_added(session: ClusterSession) -> str:
    """Why no node joins after a node fault on a cluster chaospool only connected to."""
    return (f"no node added: chaospool did not start the cluster at "
            f"{session.settings.address!r} and never adds nodes to (or shuts down) a cluster "
            "it only connected to; a replacement is that cluster's own (its autoscaler's) to "
            "make")


def serving_again(records: list[dict[str, Any]]) -> float | None:
    """When the last of the node's workers served again (None if one did not)."""
    times = [r.get("serving_after") for r in records]
    if any(t is None for t in times):
        return None
    return max((t for t in times if t is not None), default=0.0)
