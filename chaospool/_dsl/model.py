"""The typed experiment model: what an experiment file becomes once the loader accepted it.

Frozen dataclasses with every unit already parsed (durations in float seconds, sizes in int
bytes, rates per second). Nothing downstream of the loader sees the raw YAML.

``KEYS`` is the one place where every DSL key is described -- its type, its default (as a user
would write it in YAML) and what it does. The loader takes allowed keys and defaults from it and
the docs generator renders it (``describe_model()``), so the three never disagree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from chaospool._dsl.units import OPERATORS
from chaospool._options import POOL_OPTIONS, nest

__all__ = (
    "KEYS",
    "METRICS",
    "PHASES",
    "Experiment",
    "ExploreSpec",
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
    # docs/reports.md, "Outcomes" and "Consistency"
    "indeterminate": ("number",),
    "maybe_duplicated": ("number",),
    "lost_updates": ("number",),
    "stale_reads": ("number",),
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
        "pythonpath",
        "list of strings",
        [],
        "Directories, relative to the experiment file, searched first (after the file's own "
        "directory) for pool.worker and plugins given by module name; on sys.path only while "
        "validating and running. The files explore and shrink write list the source "
        "experiment's directory here.",
    ),
    KeyDoc(
        "pool",
        "mapping",
        _UNSET,
        "The pool under test (keyword arguments of chaospool.Pool).",
        required=True,
    ),
    # every pool.* key, from the one definition of the pool's options (chaospool/_options.py)
    *(KeyDoc(f"pool.{o.key}", o.type, o.default, o.doc, required=o.required)
      for o in POOL_OPTIONS),
    # the backend's own keys (the Ray backend's settings: chaospool/_ray/settings.py)
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
        "load.consistency",
        "bool",
        False,
        "true: a share of the calls are built-in per-session counter increments and reads, "
        "checked for lost updates and stale reads (docs/reports.md).",
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
        "!=; values: numbers, durations, percentages, rates). == and != compare within a "
        "relative 1e-9 (absolute 1e-12 near zero), so float noise never decides a check. "
        "Top-level metrics apply to the whole run. Absent: no checks.",
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
    KeyDoc(
        "explore",
        "mapping",
        _UNSET,
        "What `chaospool explore` may draw (docs/explore.md); `run` ignores it, and explore "
        "ignores `method`. Absent: every registered fault, 1..3 steps, budget 20.",
    ),
    KeyDoc(
        "explore.faults",
        "list of strings",
        _UNSET,
        "Faults a schedule may draw from. Absent: every registered fault.",
    ),
    KeyDoc("explore.steps", "int | A..B", "1..3", "Steps per schedule: N, or a range A..B."),
    KeyDoc(
        "explore.duration",
        "duration > 0",
        _UNSET,
        "Each schedule's run time. Absent: the experiment's duration.",
    ),
    KeyDoc("explore.budget", "int >= 1", 20, "Schedules at most (--budget overrides it)."),
    KeyDoc(
        "explore.window",
        "[start, end]",
        ["10%", "70%"],
        "When steps may start: percentages (or numbers 0..1) of the run, or durations (2s).",
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
        plain = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**nest(plain), **self._backend_kwargs()}

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
    consistency: bool = False

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
class ExploreSpec:
    """The ``explore:`` section (docs/explore.md). ``faults`` None = every registered fault;
    ``duration`` None = the experiment's; ``window`` bounds are ``("fraction", 0.1)`` or
    ``("offset", 2.0)`` (seconds), resolved against the run's duration by :meth:`bounds`."""

    faults: tuple[str, ...] | None = None
    min_steps: int = 1
    max_steps: int = 3
    duration: float | None = None
    budget: int = 20
    window: tuple[tuple[str, float], tuple[str, float]] = (("fraction", 0.1), ("fraction", 0.7))

    def run_duration(self, experiment_duration: float) -> float:
        return self.duration if self.duration is not None else experiment_duration

    def bounds(self, run_duration: float) -> tuple[float, float]:
        """The window in seconds from the start of a run of ``run_duration``."""
        start, end = (v * run_duration if kind == "fraction" else v for kind, v in self.window)
        return start, end


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
    explore: ExploreSpec | None = None  # None: no explore section (explore uses the defaults)
    pythonpath: tuple[str, ...] = ()  # as written; resolved against base_dir (docs/dsl.md)
