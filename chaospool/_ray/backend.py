"""``RayBackend``: each pool worker is a Ray actor running the subprocess worker's core.

The seam is the same as for processes (``chaospool/_pool/backend.py``): a ``RayLink`` sends a
framed message as one actor call and feeds the frames the call returns into a frame buffer, as
a socket would. Ray's own supervision is off (``max_restarts=0``, ``max_task_retries=0``): a
call on an actor that dies fails -- it is never re-run on a fresh actor with reset state -- and
the pool decides the replacement and counts it toward restart intensity. Death is learnt from a
``watch`` call that never returns while the actor lives. Completions arrive on Ray's threads
and are posted to the pool's event loop; nothing on the loop ever blocks on Ray.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal as _signal
import sys
from collections import deque
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import anyio
import sniffio

from chaospool._pool.backend import ExitStatus, LinkClosed, MalformedFrame, decode_frames, new_log
from chaospool._pool.psinfo import ProcessInfo
from chaospool._ray import cluster as _cluster
from chaospool._ray.settings import RaySettings
from chaospool._wire import protocol as p
from chaospool._worker.registry import load_commands
from chaospool.errors import WorkerStartError

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

__all__ = ("Mailbox", "RayBackend", "RayLink", "backend_of", "direct_call")

Post = Callable[..., Any]
_ENDING = {_signal.SIGKILL, _signal.SIGTERM, _signal.SIGINT, _signal.SIGQUIT}
ACTOR_CONCURRENCY = 16  # command + pings + control ops + the watch call, with room to spare
RECENT_LINKS = 64
CLUSTER_START = 300.0  # bound on starting (or reaching) the cluster: 4-20 s here, loaded


def _poster() -> Post:
    """Schedule ``fn(*args)`` on the current event loop from any thread, without blocking."""
    if sniffio.current_async_library() == "asyncio":
        return asyncio.get_running_loop().call_soon_threadsafe
    import trio

    return trio.lowlevel.current_trio_token().run_sync_soon


async def blocking(
    post: Post, fn: Callable[..., Any], *args: Any,
    timeout: float | None = None,  # noqa: ASYNC109  reason: the wait is shielded; this bounds it
) -> Any:
    """``fn(*args)`` on the Ray thread (see ``cluster.on_ray_thread``), awaited without
    blocking the loop. Not cancellable once started (a half-started node must be finished or
    cleaned up by Ray); ``timeout`` bounds the wait: TimeoutError, the call runs on."""
    done = anyio.Event()
    future = _cluster.on_ray_thread(fn, *args)
    future.add_done_callback(lambda _f: post(done.set))
    with anyio.CancelScope(shield=True) as scope:
        if timeout is not None:
            scope.deadline = anyio.current_time() + timeout
        await done.wait()
    if not future.done():
        raise TimeoutError(f"{getattr(fn, '__name__', fn)} did not finish within {timeout} s")
    return future.result()


async def await_ref(post: Post, ref: Any) -> Any:
    """The value of a Ray object ref, awaited on any event loop (callers bound the wait)."""
    done = anyio.Event()
    future = ref.future()
    future.add_done_callback(lambda _f: post(done.set))
    await done.wait()
    return future.result()


class Mailbox:
    """Completions from Ray's threads, handed to the event loop in batches: one wake-up
    (``post``, a write to the loop's self-pipe) per batch instead of one per call. Lock-free
    under the GIL: ``deque.append``/``popleft`` are atomic; a completion that lands while a
    drain runs is drained by it or posts the next one (``scheduled`` is reset first)."""

    __slots__ = ("_items", "_post", "_scheduled")

    def __init__(self, post: Post) -> None:
        self._post = post
        self._items: deque[tuple[Callable[[Any], None], Any]] = deque()
        self._scheduled = False

    def put(self, fn: Callable[[Any], None], value: Any) -> None:
        """From any thread: ``fn(value)`` will run on the loop."""
        self._items.append((fn, value))
        if not self._scheduled:
            self._scheduled = True
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
                self._post(self._drain)

    def _drain(self) -> None:
        self._scheduled = False
        items = self._items
        try:
            while items:
                fn, value = items.popleft()
                fn(value)
        finally:
            if items and not self._scheduled:  # a callback raised (the loop reports it):
                self._scheduled = True  # the completions behind it still run, next tick
                with contextlib.suppress(RuntimeError):
                    self._post(self._drain)


def direct_call(ray: ModuleType, actor: Any, method: str) -> Callable[[bytes], Any]:
    """``actor.<method>.remote(data)`` for one bytes argument, returning its ObjectRef,
    without the Python layers of ``ActorMethod.remote`` (options merging, signature binding,
    tracing and tensor-transport hooks, all per call; docs/ray.md "Where the time goes").
    Task events are off (they feed the dashboard and ``ray.util.state``, which a chaospool
    cluster does not run) and Ray never retries the call. Private API, called as
    ``ActorMethod`` itself calls it (Ray is pinned; ``tests/ray/test_ray_pool.py`` fails if
    the fast path stops applying); without it, the public call with the same options."""
    try:
        from ray._common.signature import DUMMY_TYPE

        submit = ray._private.worker.global_worker.core_worker.submit_actor_task
        descriptor = actor._ray_function_descriptor[method]
        language, actor_id = actor._ray_actor_language, actor._ray_actor_id
        cpus = actor._ray_actor_method_cpus
    except (AttributeError, ImportError, KeyError):
        return getattr(actor, method).options(enable_task_events=False).remote  # type: ignore[no-any-return]

    def call(data: bytes) -> Any:
        # the arguments of ActorHandle._actor_method_call's own submit_actor_task call:
        # no name, 1 return, 0 retries, no retried exceptions, default concurrency group
        return submit(language, actor_id, descriptor, [DUMMY_TYPE, data], "", 1, 0, False,
                      None, cpus, b"", -1, 1, False, None, None)[0]

    call.direct = True  # type: ignore[attr-defined]
    return call


class _Done:
    """A completed call's value with the part of ``Future``'s interface used here."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def exception(self) -> BaseException | None:
        return self._value if isinstance(self._value, BaseException) else None

    def result(self) -> Any:
        if isinstance(self._value, BaseException):
            raise self._value
        return self._value


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


class RayLink:
    """One worker actor incarnation."""

    def __init__(
        self, actor: Any, index: int, node: int, session: Any, post: Post,
        mailbox: Mailbox | None = None,
    ) -> None:
        self.actor = actor
        self._call = direct_call(session.ray, actor, "call")
        self._mailbox = mailbox or Mailbox(post)
        self.index = index
        self.node = node
        self.node_id = ""
        self.pid = 0
        self.log: deque[str] = new_log()
        self._session = session
        self.post = post
        self._buf = p.FrameBuffer()
        self._ready: list[p.Message] = []
        self._deliver: Callable[[list[p.Message]], None] | None = None
        self._wake = anyio.Event()
        self._eof = False
        self._error: MalformedFrame | None = None
        self._closed = False
        self._signalled: int | None = None
        self._exit: ExitStatus | None = None
        self._exited = anyio.Event()
        self.death: str | None = None  # Ray's account of the death
        # rss/status (backend.Measured): psutil sees the actor's process on a local cluster
        # (set by the backend); a remote one is known by the stop signals sent to it
        self.local = False
        self.stopped = False
        self._info: ProcessInfo | None = None

    # -- completions (posted to the loop) -------------------------------------------------
    def _submit(self, method: Any, *args: Any, on_done: Callable[[Any], None]) -> None:
        self._complete(method.remote(*args), on_done)

    def _complete(self, ref: Any, on_done: Callable[[Any], None]) -> None:
        # Ray calls back on its own thread once the value is there (``ObjectRef.future`` is
        # built on the same hook, with a Future and its locks on top)
        put = self._mailbox.put
        ref._on_completed(lambda value: put(on_done, _Done(value)))

    def _on_reply(self, fut: Any) -> None:
        exc = fut.exception()
        if exc is not None:
            return self._on_failed_call(exc)
        data = fut.result()
        if isinstance(data, tuple):  # the frames and the worker's new log lines
            data, lines = data
            self.log.extend(lines)
        if self._eof or not data:
            return None
        try:
            msgs = decode_frames(self._buf, data)
        except MalformedFrame as err:
            self._error = err
            self._set_eof()
            return None
        self._push(msgs)
        return None

    def _on_failed_call(self, exc: BaseException) -> None:
        import ray.exceptions as rex

        if isinstance(exc, rex.RayActorError | rex.ActorUnavailableError):
            return  # the watch call reports the death once
        self.log.append(f"ray: call failed: {_error_text(exc)}")
        self.kill()

    def _push(self, msgs: list[p.Message]) -> None:
        if self._deliver is not None:
            self._deliver(msgs)
        else:
            self._ready.extend(msgs)
            self._wake.set()

    def _on_watch(self, fut: Any) -> None:
        exc = fut.exception()
        self.death = _error_text(exc) if exc is not None else "the actor left"
        self.log.append(f"ray: {self.death}")
        self._set_eof()
        sig = self._signalled if self._signalled in _ENDING else None
        self._exit = ExitStatus(None, sig)
        self._exited.set()

    def _set_eof(self) -> None:
        self._eof = True
        self._wake.set()

    # -- start --------------------------------------------------------------------------
    async def start(self) -> None:
        """Wait for the actor's hello; WorkerStartError if its constructor failed."""
        done = anyio.Event()
        outcome: list[Any] = []

        def on_hello(fut: Any) -> None:
            outcome.append(fut)
            done.set()

        self._submit(self.actor.hello, on_done=on_hello)
        await done.wait()
        exc = outcome[0].exception()
        if exc is not None:
            raise WorkerStartError(
                f"worker {self.index} (Ray actor on node {self.node}) failed to start: "
                f"{type(exc).__name__}: {exc}")
        frame, self.node_id = outcome[0].result()
        hello = p.decode(frame[4:])
        assert isinstance(hello, p.Hello)
        self.pid = hello.pid
        self._ready.append(hello)
        self._submit(self.actor.watch, on_done=self._on_watch)

    # -- the Link -----------------------------------------------------------------------
    def send_nowait(self, msg: p.Message) -> bool:
        return self._send_frame(p.encode_frame(msg))

    def frame_writer(self) -> Callable[[bytes], bool]:
        return self._send_frame

    def _send_frame(self, frame: bytes) -> bool:
        if self._closed or self._eof:
            raise LinkClosed("the worker actor is gone")
        self._complete(self._call(frame), self._on_reply)
        return True

    async def send(self, msg: p.Message) -> None:
        self.send_nowait(msg)

    async def receive(self) -> list[p.Message]:
        while not self._ready:
            if self._eof:
                raise self._error or LinkClosed("EOF")
            self._wake = anyio.Event()
            await self._wake.wait()
        msgs, self._ready = self._ready, []
        return msgs

    async def serve(self, deliver: Callable[[list[p.Message]], None]) -> None:
        if self._ready:
            deliver(self._ready)
            self._ready = []
        self._deliver = deliver
        while not self._eof:
            self._wake = anyio.Event()
            await self._wake.wait()
        if self._error is not None:
            raise self._error

    def signal(self, sig: int) -> None:
        """Delivered by the agent on the actor's node (asynchronously, in order)."""
        if self._exit is not None or self.pid <= 0:
            raise ProcessLookupError(f"worker actor {self.pid} has exited")
        if sig in _ENDING:
            self._signalled = sig
        self._session.agent(self.node_id).signal.remote(self.pid, sig)
        if sig in (_signal.SIGSTOP, _signal.SIGCONT):
            self.stopped = sig == _signal.SIGSTOP

    def close(self) -> None:
        """Close the pool's end: the actor is killed (Ray's way of an EOF)."""
        if not self._closed:
            self._closed = True
            self.kill()

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self._session.ray.kill(self.actor, no_restart=True)

    async def wait(self) -> ExitStatus:
        await self._exited.wait()
        assert self._exit is not None
        return self._exit

    def exit_status(self) -> ExitStatus | None:
        return self._exit

    def _local_info(self) -> ProcessInfo | None:
        if self.local and self._info is None and self.pid > 0:
            self._info = ProcessInfo(self.pid)
        return self._info

    def rss(self) -> int | None:
        info = self._local_info()
        return None if info is None or self._exit is not None else info.rss()

    def status(self) -> str | None:
        if self._exit is not None:
            return None
        info = self._local_info()
        if info is not None:
            return info.status()
        return "stopped" if self.stopped else "running"


class RayBackend:
    """Workers as Ray actors placed by chaospool on the cluster's nodes (docs/ray.md)."""

    def __init__(self, worker: str, settings: RaySettings, *, start_timeout: float = 15.0) -> None:
        self.worker = worker
        self.settings = settings
        self.start_timeout = start_timeout
        self.real_processes = settings.local  # psutil sees a local cluster's actors
        self.session: _cluster.ClusterSession | None = None
        self.links: dict[int, RayLink] = {}  # live links by slot
        self._placed: dict[int, int] = {}  # slot -> node index, from placement on
        self.post: Post | None = None
        self.mailbox: Mailbox | None = None
        self._remote: Any = None
        # the latest incarnations (bounded): Ray's news of a death lands after the slot moved on
        self._recent: deque[RayLink] = deque(maxlen=RECENT_LINKS)

    async def start(self, tg: TaskGroup) -> list[str]:
        self.post = _poster()
        self.mailbox = Mailbox(self.post)
        try:
            commands = await anyio.to_thread.run_sync(load_commands, self.worker)
        except Exception as exc:
            import traceback

            raise WorkerStartError(
                f"worker module {self.worker!r} failed to import: {type(exc).__name__}: {exc}"
                f"\n--- traceback ---\n{traceback.format_exc()}") from exc
        try:
            self.session = await blocking(self.post, _cluster.acquire, self.settings,
                                          timeout=CLUSTER_START)
        except TimeoutError as exc:
            raise WorkerStartError(f"the Ray cluster ({self.settings.address}) was not ready "
                                   f"within {CLUSTER_START:g} s") from exc
        from chaospool._ray.actors import WorkerActor

        self._remote = self.session.ray.remote(WorkerActor)
        if self.session.router is not None:
            self.session.router.listeners.append(self._on_message)
        return sorted(commands)

    def _on_message(self, pid: int, lines: list[str]) -> None:
        """Ray's message naming a worker's pid joins that worker's log (Ray's listener
        thread; a deque append is atomic): the pool's error for it carries Ray's account."""
        for link in list(self._recent):
            if link.pid == pid:
                link.log.extend(f"ray: {line}" for line in lines)
                return

    def _place(self) -> _cluster.NodeInfo:
        assert self.session is not None
        candidates = self.session.candidates()
        if not candidates:
            raise WorkerStartError("no alive Ray node to place a worker on")
        if self.settings.placement == "pack":
            return candidates[0]
        load = {n.index: 0 for n in candidates}
        for node in self._placed.values():
            if node in load:
                load[node] += 1
        return min(candidates, key=lambda n: (load[n.index], n.index))

    def _env(self) -> tuple[list[str], dict[str, str]]:
        if not self.settings.local:
            return [], {}  # another host: its own paths and environment (docs/ray.md)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        return list(sys.path), env

    async def spawn(self, index: int) -> RayLink:
        assert self.session is not None
        assert self.post is not None
        session = self.session
        self._placed.pop(index, None)  # the slot's previous incarnation is gone
        await anyio.to_thread.run_sync(session.refresh)  # a read: any thread
        node = self._place()
        self._placed[index] = node.index
        sys_path, env = self._env()
        actor = self._remote.options(
            num_cpus=0, max_restarts=0, max_task_retries=0, max_concurrency=ACTOR_CONCURRENCY,
            scheduling_strategy=_cluster._affinity(session.ray, node.node_id),
        ).remote(self.worker, index, sys_path, env)
        link = RayLink(actor, index, node.index, session, self.post, self.mailbox)
        link.local = self.settings.local
        try:
            await link.start()
        except BaseException:
            link.kill()  # a start that timed out must not leave an actor behind
            self._placed.pop(index, None)
            raise
        self.links[index] = link
        self._recent.append(link)
        return link

    async def aclose(self) -> None:
        session, self.session = self.session, None
        if session is not None and session.router is not None:
            with contextlib.suppress(ValueError):
                session.router.listeners.remove(self._on_message)
        for link in self.links.values():
            link.kill()
        self.links.clear()
        if session is not None and self.post is not None:
            await blocking(self.post, _cluster.release, session, timeout=CLUSTER_START)


def backend_of(pool: Any) -> RayBackend | None:
    """The Ray backend of ``pool`` (None for another backend): node faults reach the cluster."""
    backend = getattr(pool, "_backend", None)
    return backend if isinstance(backend, RayBackend) else None
