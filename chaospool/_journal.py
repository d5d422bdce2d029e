"""The journal as typed records, defined once (docs/reports.md, "The journal").

The engine builds a :class:`Journal`; every report reads one; ``Journal.to_dict()`` is the JSON
object ``--journal`` writes and ``report.to_dict()`` returns. This module sits below both the
engine and the reports (docs/design.md, "Layers"): it imports the standard library, msgspec and
the units' operator table, nothing else of chaospool.

Why msgspec structs: they validate a journal file as they decode it (a wrong type names the
JSON path), they cost less than the dicts they replace on a day-long timeline, and a field
order fixes the key order, so a journal is written byte for byte as before.

Two kinds of optional key:

* ``None`` is a value the journal holds (``success_rate: null``: nothing to measure);
* ``UNSET`` marks a key the run did not record (``consistency`` without ``load.consistency``,
  ``latency_bands`` in a journal written before they existed): it stays absent from the JSON.

Numbers are ``int | float`` where either may occur, so a ``0`` is written back as ``0``; lists
stay lists (not tuples), so ``to_dict()`` equals the JSON read back.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import msgspec
from msgspec import UNSET, Struct, UnsetType

from chaospool._units import OPERATORS

__all__ = (
    "METRIC_KEYS",
    "PHASE_NAMES",
    "STATUSES",
    "UNSET",
    "Bucket",
    "Check",
    "Consistency",
    "ExperimentInfo",
    "FaultRecord",
    "Finding",
    "HookErrorRecord",
    "Journal",
    "JournalShapeError",
    "Metrics",
    "Num",
    "Operation",
    "Outcomes",
    "Phases",
    "Target",
    "ToleranceLike",
    "UnsetType",
    "as_journal",
    "assemble",
    "evaluate_checks",
    "journal_ok",
    "json_safe",
)

Num = int | float  # a JSON number: an int stays an int, so the journal reads back unchanged
STATUSES = ("completed", "aborted", "failed")
PHASE_NAMES = ("before", "during", "after")


class _Record(Struct, frozen=True, kw_only=True):
    """A record also reads as a mapping of the keys it holds: ``check["observed"]``, as the
    journal's dicts did (docs/internal-api.md, section 6); an ``UNSET`` field is no key."""

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, UNSET)
        if value is UNSET:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return (k for k in self.__struct_fields__ if getattr(self, k) is not UNSET)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: object) -> bool:
        fields = self.__struct_fields__
        return isinstance(key, str) and key in fields and getattr(self, key) is not UNSET

    def keys(self) -> list[str]:
        return list(self)

    def values(self) -> list[Any]:
        return [getattr(self, k) for k in self]

    def items(self) -> list[tuple[str, Any]]:
        return [(k, getattr(self, k)) for k in self]

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, UNSET) if key in self.__struct_fields__ else UNSET
        return default if value is UNSET else value

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-able builtins (a fresh copy: changing it changes nothing here)."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data


# code that asked ``isinstance(report.metrics, Mapping)`` of 0.1.0's dict-backed views still may
Mapping.register(_Record)


# -- metrics --------------------------------------------------------------------------------


class Outcomes(_Record, frozen=True, kw_only=True):
    """``ok + fail + info = total`` (docs/reports.md, "Outcomes")."""

    ok: int = 0
    fail: int = 0
    info: int = 0


class Metrics(_Record, frozen=True, kw_only=True):
    """One metrics block (the whole run or a phase): ``m.success_rate`` or ``m["total"]``.

    Latencies and times in seconds. The keys after ``errors_by_kind`` came with outcomes and
    consistency: a journal written before them has them ``UNSET``.
    """

    total: int = 0
    succeeded: int = 0
    errors: int = 0
    recovered: int = 0
    success_rate: Num | None = None
    error_rate: Num | None = None
    throughput: Num = 0.0
    mean_latency: Num | None = None
    p50_latency: Num | None = None
    p90_latency: Num | None = None
    p95_latency: Num | None = None
    p99_latency: Num | None = None
    p999_latency: Num | None = None
    max_latency: Num | None = None
    worker_restarts: int | None = None
    recovery_time: Num | None = None
    errors_by_kind: dict[str, int] = msgspec.field(default_factory=dict)
    outcomes: Outcomes | UnsetType = UNSET
    indeterminate: int | UnsetType = UNSET
    maybe_duplicated: int | UnsetType = UNSET
    lost_updates: int | UnsetType | None = UNSET
    stale_reads: int | UnsetType | None = UNSET

    def __getattr__(self, name: str) -> Any:
        # only reached for a name that is no field: say which names there are
        raise AttributeError(f"no metric {name!r}; metrics: {', '.join(self.__struct_fields__)}")


METRIC_KEYS: tuple[str, ...] = Metrics.__struct_fields__


class Phases(_Record, frozen=True, kw_only=True):
    """``phases.after`` or ``phases["after"]``: the metrics of each phase."""

    before: Metrics = Metrics()
    during: Metrics = Metrics()
    after: Metrics = Metrics()


# -- checks, faults, timeline ------------------------------------------------------------------


class Check(_Record, frozen=True, kw_only=True):
    """One evaluated tolerance; ``expected`` as written (``">= 0.95"``), ``observed`` the
    metric's value (null: nothing was measured, and the check failed)."""

    metric: str
    phase: str = "overall"
    expected: str = ""
    observed: Num | None = None
    ok: bool = False


class Target(_Record, frozen=True, kw_only=True):
    """A worker a fault acted on: its slot and the pid it had then."""

    index: int | None = None
    pid: int | None = None


class FaultRecord(_Record, frozen=True, kw_only=True):
    """One injection: what, where, when (run clock, seconds), its evidence and its error."""

    fault: str = ""
    name: str = ""
    targets: list[Target] = msgspec.field(default_factory=list)
    injected_at: Num | None = None
    reverted_at: Num | None = None
    # Free-form by design: each fault (a plugin's too) records its own evidence -- pids
    # killed, bytes allocated, node records -- so only "a JSON object" is promised here.
    effect: dict[str, Any] = msgspec.field(default_factory=dict)
    error: str | None = None


class Bucket(_Record, frozen=True, kw_only=True):
    """One timeline bucket: operations *ended* in ``[t, t + width)``."""

    t: Num
    succeeded: int = 0
    errors: int = 0
    recovered: int = 0
    p99_latency: Num | None = None
    max_latency: Num | UnsetType | None = UNSET
    latency_bands: list[int] | UnsetType = UNSET  # per band of ``latency_band_edges``
    faults_active: list[str] = msgspec.field(default_factory=list)
    ok: int | UnsetType = UNSET
    fail: int | UnsetType = UNSET
    info: int | UnsetType = UNSET


# -- the rest of a run -------------------------------------------------------------------------


class ExperimentInfo(_Record, frozen=True, kw_only=True):
    title: str | None = None
    path: str | None = None
    sha256: str | None = None


class HookErrorRecord(_Record, frozen=True, kw_only=True):
    """A plugin raised in a notification hook (``count`` times)."""

    plugin: str = ""
    hook: str = ""
    error: str = ""
    count: int = 1


class Operation(_Record, frozen=True, kw_only=True):
    """An operation a consistency finding involves: what was called, when, by which worker,
    and the counter value it saw (or added)."""

    f: str = ""
    invoke: Num = 0.0
    complete: Num = 0.0
    pid: int | None = None
    value: int | None = None


class Finding(_Record, frozen=True, kw_only=True):
    """One consistency violation: a read below an acknowledged increment, say."""

    kind: str = ""
    session: str = ""
    expected: str = ""
    observed: int | None = None
    operations: list[Operation] = msgspec.field(default_factory=list)


class Consistency(_Record, frozen=True, kw_only=True):
    """The consistency checker's findings (docs/reports.md, "Consistency")."""

    sessions: int = 0
    increments_acknowledged: int = 0
    lost_updates: int = 0
    stale_reads: int = 0
    increments_indeterminate: int = 0
    reads: int = 0
    overcounts: int = 0
    findings: list[Finding] = msgspec.field(default_factory=list)  # the first ones


class Journal(_Record, frozen=True, kw_only=True):
    """What one run did: the journal of docs/reports.md, keys in its order.

    ``metrics`` is the one key a journal file must have; the others default to an empty run,
    so an older or partial journal still renders. The keys after ``timeline`` are those a run
    recorded (``UNSET`` otherwise).
    """

    chaospool_version: str = ""
    seed: int | None = None
    started_at: str | None = None
    ended_at: str | None = None
    experiment: ExperimentInfo = ExperimentInfo()
    status: str = "unknown"
    ok: bool = False
    metrics: Metrics
    phases: Phases = Phases()
    checks: list[Check] = msgspec.field(default_factory=list)
    faults: list[FaultRecord] = msgspec.field(default_factory=list)
    timeline: list[Bucket] = msgspec.field(default_factory=list)
    source: str | UnsetType = UNSET  # "history": rebuilt by `chaospool report HISTORY.jsonl`
    error: str | UnsetType | None = UNSET
    duration: Num | UnsetType = UNSET
    elapsed: Num | UnsetType = UNSET
    reproduce: str | UnsetType = UNSET
    plugin_errors: list[HookErrorRecord] | UnsetType = UNSET
    # free-form: each kind of pool event carries its own fields ({t, kind, index, pid, ...})
    events: list[dict[str, Any]] | UnsetType = UNSET
    events_dropped: int | UnsetType = UNSET
    latency_band_edges: list[Num] | UnsetType = UNSET
    load: dict[str, Any] | UnsetType = UNSET  # the probe's own description of its load
    consistency: Consistency | UnsetType = UNSET

    @property
    def from_history(self) -> bool:
        return self.source == "history"


# -- reading a journal ---------------------------------------------------------------------------


class JournalShapeError(ValueError):
    """A mapping that is not a journal; ``str()`` says what and where (a JSON path)."""


def as_journal(data: Journal | Mapping[str, Any]) -> Journal:
    """``data`` as a :class:`Journal` (a dict is validated: :class:`JournalShapeError`)."""
    if isinstance(data, Journal):
        return data
    if not isinstance(data, Mapping):
        raise JournalShapeError(f"the top level is a JSON {_json_type(data)}, not an object")
    if "metrics" not in data:
        raise JournalShapeError("it has no 'metrics'")
    try:
        return msgspec.convert(data, Journal)
    except msgspec.ValidationError as exc:
        raise JournalShapeError(str(exc)) from None


def _json_type(value: Any) -> str:
    names = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


# -- checks --------------------------------------------------------------------------------------


class ToleranceLike(Protocol):
    """A steady-state tolerance (``chaospool._dsl.model.Tolerance``)."""

    @property
    def metric(self) -> str: ...
    @property
    def phase(self) -> str: ...
    @property
    def op(self) -> str: ...
    @property
    def value(self) -> float: ...
    @property
    def text(self) -> str: ...


def _observed(metrics: Metrics, phases: Phases, metric: str, phase: str) -> Num | None:
    scope = metrics if phase == "overall" else phases.get(phase)
    value = scope.get(metric) if isinstance(scope, Metrics) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None  # a missing (or non-numeric) observation never satisfies a tolerance
    return value


def _holds(tolerance: ToleranceLike, observed: Num | None) -> bool:
    if observed is None:
        return False
    return OPERATORS[tolerance.op](float(observed), float(tolerance.value))


def evaluate_checks(
    tolerances: Iterable[ToleranceLike], metrics: Metrics, phases: Phases
) -> list[Check]:
    """One check per tolerance, against the run's ``metrics`` and ``phases``; the comparison
    is the one operator table of the DSL (``chaospool._units.OPERATORS``)."""
    checks = []
    for tol in tolerances:
        observed = _observed(metrics, phases, tol.metric, tol.phase)
        checks.append(Check(metric=tol.metric, phase=tol.phase,
                            expected=tol.text or f"{tol.op} {tol.value:g}",
                            observed=observed, ok=_holds(tol, observed)))
    return checks


def journal_ok(status: str, checks: Sequence[Check]) -> bool:
    """``ok``: the run completed and every tolerance held (an aborted or failed run has not
    shown its steady state, whatever its partial numbers say)."""
    return status == "completed" and all(c.ok for c in checks)


# -- building one ---------------------------------------------------------------------------------


def _iso(when: _dt.datetime | str | None) -> str | None:
    if isinstance(when, _dt.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.UTC)
        return when.isoformat()
    return when


def _fault(entry: Mapping[str, Any]) -> FaultRecord:
    """A fault record from the engine's injection (or a history's nemesis window)."""
    return FaultRecord(
        fault=str(entry.get("fault") or ""), name=str(entry.get("name") or ""),
        targets=[Target(index=t.get("index"), pid=t.get("pid"))
                 for t in entry.get("targets") or ()],
        injected_at=entry.get("injected_at"), reverted_at=entry.get("reverted_at"),
        effect=json_safe(dict(entry.get("effect") or {})), error=entry.get("error"),
    )


def assemble(
    *,
    chaospool_version: str,
    seed: int | None,
    started_at: _dt.datetime | str | None,
    ended_at: _dt.datetime | str | None,
    experiment: ExperimentInfo,
    status: str,
    summary: Mapping[str, Any],
    checks: Sequence[Check],
    faults: Iterable[Mapping[str, Any]],
    **recorded: Any,
) -> Journal:
    """The journal of a run. ``summary``: the probe's ``summarize()`` output (its ``metrics``,
    ``phases`` and ``timeline``); ``recorded``: the optional keys the run has (``elapsed``,
    ``events``, ``load``...). Free-form values (evidence, events, load) are made JSON-safe."""
    if status not in STATUSES:
        raise ValueError(f"status must be completed, aborted or failed, not {status!r}")
    unknown = sorted(set(recorded) - set(Journal.__struct_fields__))
    if unknown:  # a key the model lacks would be dropped without a word
        raise TypeError(f"the journal has no key {unknown[0]!r}: add it to Journal first")
    for key in ("events", "load"):
        if key in recorded:
            recorded[key] = json_safe(recorded[key])
    return msgspec.convert({
        "chaospool_version": chaospool_version, "seed": seed, "started_at": _iso(started_at),
        "ended_at": _iso(ended_at), "experiment": experiment, "status": status,
        "ok": journal_ok(status, checks), "metrics": summary["metrics"],
        "phases": summary["phases"], "checks": checks,
        "faults": [_fault(f) for f in faults], "timeline": summary["timeline"], **recorded,
    }, Journal, from_attributes=True)


# -- JSON-safe values ------------------------------------------------------------------------------

# A value a plugin recorded may contain itself; its copy stops there instead of recursing.
_CYCLE = "<cycle>"


def json_safe(value: Any) -> Any:
    """``value`` if strict JSON can hold it as it is, else a copy that it can.

    A set becomes a sorted list, bytes text (UTF-8, undecodable bytes escaped), NaN and the
    infinities ``null``, a tuple a list, a key text, an enum its value, a dataclass a dict and
    any other object its ``repr`` (docs/reports.md, "The journal"). The common case -- nothing
    to convert -- costs one C-speed encode, not a walk in Python over a long run's timeline.
    """
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return _convert(value, set())
    return value


def _convert(value: Any, seen: set[int]) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if id(value) in seen:
        return _CYCLE
    seen.add(id(value))
    try:
        return _convert_container(value, seen)
    finally:
        seen.discard(id(value))


def _convert_container(value: Any, seen: set[int]) -> Any:
    if isinstance(value, Mapping):
        return {_key(k): _convert(v, seen) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_convert(v, seen) for v in value]
    if isinstance(value, set | frozenset):
        return [_convert(v, seen) for v in _sorted(value)]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, enum.Enum):
        return _convert(value.value, seen)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _convert(dataclasses.asdict(value), seen)
    return repr(value)


def _sorted(items: set[Any] | frozenset[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:  # mixed types: an order that is still the same on every run
        return sorted(items, key=repr)


def _key(key: Any) -> str:
    return key if isinstance(key, str) else str(_convert(key, set()))
