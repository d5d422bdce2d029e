"""The typed experiment model: what an experiment file becomes once the loader accepted it.

Frozen dataclasses with every unit already parsed (durations in float seconds, sizes in int
bytes, rates per second). Nothing downstream of the loader sees the raw YAML.

``KEYS`` is the one place where every DSL key is described -- its type, its default (as a user
would write it in YAML) and what it does. The loader takes allowed keys and defaults from it and
the docs generator renders it (``describe_model()``), so the three never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from chaospool._dsl.units import OPERATORS

__all__ = (
    "KEYS",
    "METRICS",
    "PHASES",
    "Experiment",
    "FaultStep",
    "KeyDoc",
    "LoadSpec",
    "MixEntry",
    "PoolSpec",
    "Target",
    "Tolerance",
    "describe_model",
)

Phase = Literal["overall", "before", "during", "after"]
PHASES: tuple[str, ...] = ("before", "during", "after")

# metric -> the kinds of value a tolerance on it may be written with (see units.ValueKind)
METRICS: dict[str, tuple[str, ...]] = {
    "success_rate": ("number", "percent"),
    "error_rate": ("number", "percent"),
    "recovered": ("number",),
    "total": ("number",),
    "errors": ("number",),
    "throughput": ("number", "rate"),
    "mean_latency": ("number", "duration"),
    "p50_latency": ("number", "duration"),
    "p90_latency": ("number", "duration"),
    "p95_latency": ("number", "duration"),
    "p99_latency": ("number", "duration"),
    "p999_latency": ("number", "duration"),
    "max_latency": ("number", "duration"),
    "recovery_time": ("number", "duration"),
    "worker_restarts": ("number",),
}


@dataclass(frozen=True)
class KeyDoc:
    """One DSL key: ``path`` (``pool.size``, ``method[].at``), ``type``, ``default``, meaning.

    ``default`` is the value as written in YAML (``"5s"``, ``4``); ``None`` means the key is
    absent by default (its description says what that means); ``required`` keys have none.
    """

    path: str
    type: str
    default: Any
    description: str
    required: bool = False


_UNSET = None

KEYS: tuple[KeyDoc, ...] = (
    KeyDoc("version", "int", _UNSET, "Format version; must be 1.", required=True),
    KeyDoc(
        "title",
        "string",
        _UNSET,
        "Short name of the experiment (journal, reports). Absent: the file name without its "
        "extension (`experiment` for a mapping).",
    ),
    KeyDoc("description", "string", "", "Free text: what the experiment shows."),
    KeyDoc(
        "seed",
        "int | null",
        _UNSET,
        "Seed of the run's random generator (targets drawn, "
        "load mix). Absent or null: drawn at random and recorded in the journal; --seed "
        "overrides it.",
    ),
    KeyDoc("duration", "duration > 0", "30s", "Total run time, load included."),
    KeyDoc(
        "plugins",
        "list of strings",
        [],
        "Plugins to load: module names, or paths to .py files relative to the experiment file.",
    ),
    KeyDoc(
        "pool",
        "mapping",
        _UNSET,
        "The pool under test (keyword arguments of chaospool.Pool).",
        required=True,
    ),
    KeyDoc(
        "pool.worker",
        "string",
        _UNSET,
        "Importable module (or module:object) holding the @command handlers.",
        required=True,
    ),
    KeyDoc("pool.size", "int >= 1", 4, "Number of permanent workers."),
    KeyDoc("pool.max_overflow", "int >= 0", 0, "Extra workers started under load beyond size."),
    KeyDoc("pool.strategy", "lifo | fifo", "lifo", "Which idle worker is handed out next."),
    KeyDoc(
        "pool.checkout_timeout", "duration > 0", "5s", "How long a request may wait for a worker."
    ),
    KeyDoc("pool.request_timeout", "duration > 0", "30s", "How long a worker may take to answer."),
    KeyDoc(
        "pool.max_queue",
        "int >= 0",
        1000,
        "Waiting requests beyond this fail at once with a queue-full error.",
    ),
    KeyDoc(
        "pool.restart",
        "mapping",
        {"max_restarts": 20, "within": "10s"},
        "Restart intensity, "
        "as in OTP supervisors: beyond max_restarts within the window the circuit opens.",
    ),
    KeyDoc("pool.restart.max_restarts", "int >= 0", 20, "Restarts allowed within the window."),
    KeyDoc("pool.restart.within", "duration > 0", "10s", "The restart-intensity window."),
    KeyDoc(
        "pool.max_memory",
        "size | null",
        _UNSET,
        "A worker whose RSS exceeds this is recycled "
        "(300MB = 300*10^6 bytes, 300MiB = 300*2^20). Absent: unlimited.",
    ),
    KeyDoc(
        "pool.max_requests",
        "int >= 1 | null",
        _UNSET,
        "A worker is recycled after this many requests. Absent: unlimited.",
    ),
    KeyDoc(
        "pool.overflow_idle",
        "duration >= 0",
        "5s",
        "How long an idle overflow worker lingers before it retires.",
    ),
    KeyDoc("pool.lazy", "bool", False, "true: start workers on first demand."),
    KeyDoc(
        "pool.health_check",
        "mapping",
        {"interval": "1s", "timeout": "1s"},
        "Heartbeats on each worker's channel.",
    ),
    KeyDoc("pool.health_check.interval", "duration > 0", "1s", "Time between heartbeats."),
    KeyDoc(
        "pool.health_check.timeout",
        "duration > 0",
        "1s",
        "A heartbeat unanswered this long fails the health check.",
    ),
    KeyDoc(
        "pool.backend",
        "process | ray",
        "process",
        "Where workers run: subprocesses of this machine, or Ray actors across a cluster "
        "(docs/ray.md; needs `pip install 'chaospool[ray]'`).",
    ),
    KeyDoc(
        "pool.ray",
        "mapping",
        _UNSET,
        "Settings of the Ray backend (only with backend: ray). Absent: the defaults below.",
    ),
    KeyDoc(
        "pool.ray.address",
        "string",
        "local",
        "local: start a local multi-node cluster on 127.0.0.1; auto or HOST:PORT: connect "
        "to an existing cluster.",
    ),
    KeyDoc("pool.ray.nodes", "int >= 1", 3, "Local only: nodes of the cluster, head included."),
    KeyDoc(
        "pool.ray.placement",
        "spread | pack",
        "spread",
        "spread: each worker on the least-loaded alive node; pack: all on the first.",
    ),
    KeyDoc(
        "pool.ray.health_check",
        "mapping",
        {"period": "500ms", "timeout": "1s", "failure_threshold": 3, "initial_delay": "1s"},
        "Local only: Ray's node health checks (how fast a dead node is detected).",
    ),
    KeyDoc("pool.ray.health_check.period", "duration > 0", "500ms", "Time between checks."),
    KeyDoc("pool.ray.health_check.timeout", "duration > 0", "1s", "A check's timeout."),
    KeyDoc(
        "pool.ray.health_check.failure_threshold",
        "int >= 1",
        3,
        "Failed checks in a row after which Ray declares the node dead.",
    ),
    KeyDoc(
        "pool.ray.health_check.initial_delay",
        "duration > 0",
        "1s",
        "Delay before a new node's first check.",
    ),
    KeyDoc("load", "mapping", {}, "The steady-state probe's traffic."),
    KeyDoc(
        "load.clients",
        "int >= 1",
        4,
        "Concurrent clients (closed loop: each waits for its "
        "reply, then thinks, then calls again).",
    ),
    KeyDoc(
        "load.rate",
        "rate > 0 | null",
        _UNSET,
        "Open loop: start this many operations per "
        "second (500/s) whatever the replies do. Absent: closed loop.",
    ),
    KeyDoc("load.think", "duration >= 0", "0ms", "Pause of a closed-loop client between calls."),
    KeyDoc(
        "load.sessions",
        "int >= 1 | null",
        _UNSET,
        "Clients spread their calls over this many sessions. Absent: calls carry no session.",
    ),
    KeyDoc(
        "load.retries",
        "int >= 0",
        0,
        "Attempts after the first, on worker crash, timeout or partition.",
    ),
    KeyDoc(
        "load.mix",
        "list of mappings",
        [{"command": "ping", "weight": 1}],
        "Commands the clients call, drawn by weight with the seed.",
    ),
    KeyDoc("load.mix[].command", "string", _UNSET, "Command name.", required=True),
    KeyDoc("load.mix[].weight", "number > 0", 1, "Relative weight in the mix."),
    KeyDoc("load.mix[].args", "any", {}, "Arguments passed to the command."),
    KeyDoc(
        "steady_state",
        "mapping",
        {},
        "Tolerances: metric -> 'OP VALUE' (ops: < <= > >= == "
        "!=; values: numbers, durations, percentages, rates). Top-level metrics apply to the "
        "whole run. Absent: no checks.",
    ),
    KeyDoc(
        "steady_state.<metric>",
        "tolerance",
        _UNSET,
        "A tolerance on the whole run, e.g. "
        "success_rate: '>= 0.95'. Metrics: " + ", ".join(METRICS) + ".",
    ),
    KeyDoc(
        "steady_state.before",
        "mapping",
        _UNSET,
        "Tolerances on operations started before the first fault's injection.",
    ),
    KeyDoc(
        "steady_state.during",
        "mapping",
        _UNSET,
        "Tolerances on operations started between the first injection and the last revert.",
    ),
    KeyDoc(
        "steady_state.after",
        "mapping",
        _UNSET,
        "Tolerances on operations started after the last fault's revert.",
    ),
    KeyDoc("method", "list of fault steps", [], "The faults to inject. Empty: a baseline run."),
    KeyDoc(
        "method[].fault",
        "string",
        _UNSET,
        "The fault's name (chaospool faults lists them).",
        required=True,
    ),
    KeyDoc(
        "method[].name",
        "string",
        _UNSET,
        "Label in the journal. Default: the fault's name, or "
        "fault#N (N counting from 1 in the method) when several steps use the same fault.",
    ),
    KeyDoc(
        "method[].at",
        "duration >= 0",
        "0s",
        "Offset of the (first) injection from the start of the run.",
    ),
    KeyDoc(
        "method[].duration",
        "duration >= 0",
        _UNSET,
        "How long the fault lasts before it is "
        "reverted; also sets the fault's duration parameter if it has one. Default: that "
        "parameter's default, or none (reverted right after the injection).",
    ),
    KeyDoc("method[].repeat", "int >= 1", 1, "How many times the step is injected."),
    KeyDoc(
        "method[].every",
        "duration > 0",
        _UNSET,
        "Time between repetitions; required when repeat > 1.",
    ),
    KeyDoc(
        "method[].target",
        "target",
        _UNSET,
        "Which workers: {worker: 0}, {workers: [0, 2]}, "
        "{count: N}, {fraction: 0.5}, {session: ID}, {node: N} (every worker on node N; Ray "
        "backend) or all. Default: one worker drawn with the seed. Pool-level faults ignore "
        "it; node faults act on {node: N}, else on a node drawn with the seed.",
    ),
    KeyDoc(
        "method[].<param>",
        "per fault",
        _UNSET,
        "The fault's own parameters sit beside the "
        "common keys (chaospool faults lists them with their defaults).",
    ),
)


def describe_model() -> tuple[KeyDoc, ...]:
    """Every DSL key with its type, default and description, in document order (for docs)."""
    return KEYS


@dataclass(frozen=True)
class PoolSpec:
    """The ``pool:`` section; ``pool_kwargs()`` gives the keyword arguments of chaospool.Pool."""

    worker: str
    size: int
    max_overflow: int
    strategy: Literal["lifo", "fifo"]
    checkout_timeout: float
    request_timeout: float
    max_queue: int
    max_restarts: int
    restart_within: float
    max_memory: int | None
    max_requests: int | None
    overflow_idle: float
    lazy: bool
    health_interval: float
    health_timeout: float
    backend: str = "process"
    ray: Any = None  # chaospool._ray.settings.RaySettings with backend "ray"

    @property
    def slots(self) -> int:
        """Worker slots that may exist at once: ``size + max_overflow``."""
        return self.size + self.max_overflow

    def pool_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``chaospool.Pool(**kwargs)`` (durations in seconds, bytes)."""
        return {
            "worker": self.worker,
            "size": self.size,
            "max_overflow": self.max_overflow,
            "strategy": self.strategy,
            "checkout_timeout": self.checkout_timeout,
            "request_timeout": self.request_timeout,
            "max_queue": self.max_queue,
            "restart": {"max_restarts": self.max_restarts, "within": self.restart_within},
            "max_memory": self.max_memory,
            "max_requests": self.max_requests,
            "overflow_idle": self.overflow_idle,
            "lazy": self.lazy,
            "health_check": {"interval": self.health_interval, "timeout": self.health_timeout},
            **self._backend_kwargs(),
        }

    def _backend_kwargs(self) -> dict[str, Any]:
        if self.backend != "ray":
            return {}  # the default backend: the keyword arguments stay as they always were
        return {"backend": "ray", "ray": self.ray.to_dict() if self.ray is not None else None}


@dataclass(frozen=True)
class MixEntry:
    """One command of the load mix. ``args`` is plain data (treat it as read-only)."""

    command: str
    weight: float
    args: Any


@dataclass(frozen=True)
class LoadSpec:
    """The ``load:`` section. ``rate`` not None means open loop (``clients`` is then unused;
    the probe caps operations in flight and counts launches it sheds); otherwise ``clients``
    closed-loop clients."""

    clients: int
    rate: float | None
    think: float
    sessions: int | None
    retries: int
    mix: tuple[MixEntry, ...]

    @property
    def open_loop(self) -> bool:
        return self.rate is not None


@dataclass(frozen=True)
class Tolerance:
    """One steady-state check: ``metric`` of ``phase`` compared with ``op`` to ``value``.

    ``value`` is in base units (seconds, fraction, per second); ``text`` is what the user wrote
    (``">= 0.95"``), for reports.
    """

    metric: str
    phase: Phase
    op: str
    value: float
    text: str

    def holds(self, observed: float | None) -> bool:
        """Whether ``observed`` meets the tolerance; a missing value (None) never does."""
        return observed is not None and OPERATORS[self.op](observed, self.value)


TargetKind = Literal[
    "default", "worker", "workers", "count", "fraction", "session", "all", "node"
]


@dataclass(frozen=True)
class Target:
    """Which workers a step acts on.

    ``default`` = one worker drawn with the seed; ``worker``/``workers`` = slot indexes (both
    kinds fill ``workers``); ``count`` = N distinct workers drawn; ``fraction`` = that share of
    the live workers (at least one); ``session`` = the worker serving that session; ``all``;
    ``node`` = every worker on cluster node ``node`` (Ray backend; resolved at run time).
    """

    kind: TargetKind
    workers: tuple[int, ...] = ()
    count: int | None = None
    fraction: float | None = None
    session: str | None = None
    node: int | None = None


@dataclass(frozen=True)
class FaultStep:
    """One step of ``method``. ``params`` is the fault's validated ``Params`` instance.

    ``duration`` None means the fault is reverted right after its injection. With ``repeat``
    > 1 the step is injected at ``at``, ``at + every``, ... (``every`` is 0 when repeat is 1).
    ``index`` is the step's position in ``method`` (0-based).
    """

    fault: str
    name: str
    at: float
    duration: float | None
    repeat: int
    every: float
    target: Target
    params: Any
    index: int

    @property
    def injections(self) -> tuple[float, ...]:
        """The offsets (from the start of the run) of every injection of this step."""
        return tuple(self.at + i * self.every for i in range(self.repeat))


@dataclass(frozen=True)
class Experiment:
    """A validated experiment. ``path``/``sha256`` identify the source file (for a mapping:
    ``None`` and the hash of its canonical JSON); ``base_dir`` resolves relative plugin paths."""

    version: int
    title: str
    description: str
    seed: int | None
    duration: float
    plugins: tuple[str, ...]
    pool: PoolSpec
    load: LoadSpec
    steady_state: tuple[Tolerance, ...]
    method: tuple[FaultStep, ...]
    path: str | None
    sha256: str | None
    base_dir: str
