"""node_freeze: a cluster node's raylet and workers stopped for a while (Ray backend)."""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from typing import Any, ClassVar

import anyio
import psutil

from chaospool.fault import Duration, Fault, FaultContext

from ._common import EventLog, check_positive, close_log, now, seconds, step_duration
from .nodes import (
    SERVE_WAIT,
    ask_ray,
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

AGENT_REPLY = 3.0  # the agent answers before its helper stops it (0.1 s later)
EXIT_WAIT = 5.0
STOP_WAIT = 10.0  # the helper (a fresh interpreter) stops the node ~0.1 s after it starts;
# a loaded machine may take seconds to start that interpreter


def _status(pid: int | None) -> str | None:
    try:
        return None if pid is None else str(psutil.Process(pid).status())
    except psutil.Error:
        return None


class NodeFreeze(Fault):
    """Stop a node's raylet and workers (SIGSTOP) for `duration`, then continue them.

    Mechanism: the node's agent actor starts a helper process outside Ray (its own session)
    that SIGSTOPs the raylet and every process under it -- the agent last --, sleeps
    ``duration`` and SIGCONTs them; on a local cluster revert also sends SIGCONT itself, in
    case the helper was late. Ray health-checks raylets: a node silent longer than the health
    check allows is declared dead (~2.75 s with the local settings), its actors with it, and a
    raylet continued after that exits instead of rejoining. Evidence: the frozen pids, the
    raylet's status while frozen, when Ray declared the node dead (or not), whether the
    raylet was still alive after SIGCONT, whether the helper was reaped (no zombie left), and per
    worker whether it resumed or was replaced (and when); a dead node is replaced on a local
    cluster.
    """

    name: ClassVar[str] = "node_freeze"
    pool_level: ClassVar[bool] = True
    backends: ClassVar[tuple[str, ...] | None] = ("ray",)  # it acts on cluster nodes

    @dataclass
    class Params:
        duration: Duration = 5.0

        def __post_init__(self) -> None:
            check_positive("duration", self.duration)

    async def inject(self, ctx: FaultContext) -> None:
        backend = ray_backend(ctx, self.name)
        session = backend.session
        assert session is not None
        duration = step_duration(ctx.duration, ctx.params.duration)
        info = await pick_node(ctx, backend, self.name)
        workers = workers_on(ctx.pool, info.index)
        ctx.state.update(log=EventLog(ctx.pool, ("crash", "start", "restart", "health_fail")),
                         info=info, workers=workers, at=now(), duration=duration)
        reply: Any = None
        with anyio.move_on_after(AGENT_REPLY):
            reply = await _agent_call(backend, session.agent(info.node_id).freeze, duration)
        pids = list(reply["pids"]) if isinstance(reply, dict) else []
        ctx.state["pids"] = pids
        raylet = reply.get("raylet") if isinstance(reply, dict) else session.raylet_pid(info)
        ctx.state["raylet"] = raylet
        ctx.state["helper"] = reply.get("helper") if isinstance(reply, dict) else None
        status = await _stopped(raylet) if session.local else None
        if not pids and session.local:  # the agent froze itself before its reply went out
            pids = ctx.state["pids"] = _stopped_tree(raylet)
        ctx.record(node=info.index, node_id=info.node_id, duration=duration,
                   frozen_pids=len(pids), raylet_pid=raylet, agent_replied=reply is not None,
                   helper_pid=ctx.state["helper"],
                   raylet_status=status,
                   workers=[{"index": w.index, "pid": w.pid} for w in workers])

    async def revert(self, ctx: FaultContext) -> None:
        node = injected(ctx, self.name)
        if node is None:
            return
        backend, session, info, log, at = node.backend, node.session, node.info, node.log, node.at
        effect: dict[str, Any] = {}
        try:
            if session.local:
                _continue(ctx.state.get("pids", []))
            effect["continued_after"] = seconds(now() - at)
            dead = await _dead_or_alive(backend, session, info.node_id, at)
            effect["declared_dead"] = dead
            if session.local:
                effect["raylet_exited_after_continue"] = await _exited(ctx.state.get("raylet"))
                effect["helper_reaped"] = await _reaped(ctx.state.get("helper"))
            records = await wait_workers(ctx.pool, ctx.state["workers"], log, at,
                                         now() + SERVE_WAIT, lost=dead)
            effect.update(workers_after=records, every_worker_serving_after=serving_again(records),
                          health_failures=len(log.of("health_fail")))
            # when Ray declared it: the pool hears of it as the node's actors dying -- read
            # once the workers were waited for, since their deaths may reach the pool after
            # Ray's own declaration (the events keep their times)
            effect["declared_dead_after"] = _first_loss(log, ctx.state["workers"], at) \
                if dead else None
            if dead:
                effect.update(await _replace_dead(backend, session, info))
        finally:
            close_log(ctx.state)
            ctx.record(**effect)


async def _agent_call(backend: Any, method: Any, *args: Any) -> Any:
    from chaospool._ray.backend import await_ref

    return await await_ref(backend.post, method.remote(*args))


def _continue(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGCONT)


async def _dead_or_alive(backend: Any, session: Any, node_id: str, at: float) -> bool:
    """Whether Ray declared the node dead (waiting a moment after SIGCONT, bounded)."""
    if await ask_ray(session.is_alive_in_ray, node_id) is False:
        return True
    with anyio.move_on_after(1.0):
        return await wait_declared_dead(backend, session, node_id, at) is not None
    return False


def _first_loss(log: EventLog, workers: list[Any], at: float) -> float | None:
    pids = {w.pid for w in workers}
    # a worker the health check already condemned dies without a crash event; every death
    # of a core worker is followed by its restart event (data: the pid it replaces)
    times = [e.time for e in log.of("crash") if e.pid in pids]
    times += [e.time for e in log.of("restart") if e.data.get("replaces") in pids]
    return seconds(min(times) - at) if times else None


def _stopped_tree(raylet: int | None) -> list[int]:
    """The node's frozen processes seen from outside: the raylet and its descendants that psutil
    shows stopped (evidence when the agent's own reply was frozen with it)."""
    if raylet is None:
        return []
    try:
        root = psutil.Process(raylet)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
    return [proc.pid for proc in tree if _status(proc.pid) == psutil.STATUS_STOPPED]


async def _stopped(pid: int | None) -> str | None:
    """The raylet's status once the helper stopped it (a local cluster's; bounded poll)."""
    deadline = now() + STOP_WAIT
    status = _status(pid)
    while status not in (None, psutil.STATUS_STOPPED) and now() < deadline:
        await anyio.sleep(0.01)
        status = _status(pid)
    return status


async def _exited(pid: int | None) -> bool | None:
    """Whether the continued raylet exited (Ray does that to a node it declared dead)."""
    if pid is None:
        return None
    deadline = now() + EXIT_WAIT
    while _status(pid) not in (None, psutil.STATUS_ZOMBIE):
        if now() > deadline:
            return False
        await anyio.sleep(0.05)
    return True


async def _reaped(pid: int | None) -> bool | None:
    """Whether the freeze helper is gone for good (exited *and* reaped by the agent that
    started it, or by whoever adopted it): a zombie left behind counts as not reaped."""
    if pid is None:
        return None
    deadline = now() + EXIT_WAIT
    while psutil.pid_exists(pid):
        if now() > deadline:
            return False
        await anyio.sleep(0.05)
    return True


async def _replace_dead(backend: Any, session: Any, info: Any) -> dict[str, Any]:
    """A node Ray declared dead never rejoins: clean up what is left, then replace it."""
    session.mark_dead(info)
    if session.local and info.node is not None:
        await on_ray(backend, session.remove_node, info)
    return await replace_node(backend, session)
