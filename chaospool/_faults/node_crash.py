"""node_crash: every process of a cluster node gone at once (Ray backend)."""

from __future__ import annotations

from typing import Any, ClassVar

import anyio

from chaospool.fault import Fault, FaultContext

from ._common import EventLog, close_log, now
from .nodes import (
    SERVE_WAIT,
    injected,
    on_ray,
    pick_node,
    ray_backend,
    replace_node,
    serving_again,
    wait_declared_dead,
    wait_workers,
    workers_on,
)


class NodeCrash(Fault):
    """Kill every process of one cluster node at once; the pool must serve from the others.

    Mechanism: on a local cluster chaospool started, ``Cluster.remove_node(allow_graceful=
    False)`` (raylet, its workers and the node's other processes SIGKILLed); on a cluster it
    only connected to, the node's agent actor SIGKILLs the raylet and every process under it.
    The target is ``{node: N}`` or a worker node drawn with the seed (never the head).
    Revert waits, bounded, for Ray to declare the node dead and for each of the node's workers
    to serve again on another node, then (local cluster) lets a replacement node join.
    Evidence: the node, its workers, detection time, each worker's crash and replacement
    times, the replacement node and how long it took to join.
    """

    name: ClassVar[str] = "node_crash"
    pool_level: ClassVar[bool] = True  # it acts on a node; the step's target names the node
    backends: ClassVar[tuple[str, ...] | None] = ("ray",)  # it acts on cluster nodes

    async def inject(self, ctx: FaultContext) -> None:
        backend = ray_backend(ctx, self.name)
        session = backend.session
        assert session is not None
        info = await pick_node(ctx, backend, self.name)
        workers = workers_on(ctx.pool, info.index)
        ctx.state.update(log=EventLog(ctx.pool, ("crash", "start", "restart")), info=info,
                         workers=workers, at=now())
        raylet = session.raylet_pid(info)
        if session.local:
            await on_ray(backend, session.remove_node, info)
            how = "Cluster.remove_node(allow_graceful=False)"
        else:
            session.agent(info.node_id).crash.remote()
            session.mark_dead(info)
            how = "node agent: SIGKILL to the raylet and every process under it"
        ctx.record(node=info.index, node_id=info.node_id, raylet_pid=raylet, how=how,
                   workers=[{"index": w.index, "pid": w.pid} for w in workers])

    async def revert(self, ctx: FaultContext) -> None:
        node = injected(ctx, self.name)
        if node is None:
            return
        backend, session, info, log, at = node.backend, node.session, node.info, node.log, node.at
        effect: dict[str, Any] = {}
        async def recover() -> None:
            effect["declared_dead_after"] = await wait_declared_dead(
                backend, session, info.node_id, at)
            records = await wait_workers(ctx.pool, ctx.state["workers"], log, at,
                                         now() + SERVE_WAIT, lost=True)
            effect.update(replaced=records, every_worker_serving_after=serving_again(records))

        async def rejoin() -> None:
            effect.update(await replace_node(backend, session))

        try:
            # the replacement node joins while Ray and the pool recover: a real operator's
            # autoscaler does not wait for them either
            async with anyio.create_task_group() as tg:
                tg.start_soon(recover)
                tg.start_soon(rejoin)
        finally:
            close_log(ctx.state)
            ctx.record(**effect)
