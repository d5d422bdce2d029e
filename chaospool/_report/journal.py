"""The journal (docs/reports.md): assembling it, evaluating tolerances into ``checks``, and the
``Report`` object users get back from ``chaospool.run``.

The journal is a plain JSON-able dict -- it is what gets written, re-read and re-rendered --
so ``Report`` is a read-only view over one: ``Report.from_journal(d).to_dict() == d``.
"""

from __future__ import annotations

import copy
import datetime as _dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chaospool._report._format import fmt_metric, reproduce_command
from chaospool._units import OPERATORS

__all__ = (
    "METRIC_KEYS",
    "Check",
    "FaultRecord",
    "Metrics",
    "Phases",
    "Report",
    "TargetRecord",
    "TimelineBucket",
    "ToleranceLike",
    "assemble_journal",
    "evaluate_checks",
    "journal_ok",
)

METRIC_KEYS = (
    "total", "succeeded", "errors", "recovered", "success_rate", "error_rate", "throughput",
    "mean_latency", "p50_latency", "p90_latency", "p95_latency", "p99_latency", "p999_latency",
    "max_latency", "worker_restarts", "recovery_time", "errors_by_kind",
    # docs/reports.md, "Outcomes" and "Consistency"
    "outcomes", "indeterminate", "maybe_duplicated", "lost_updates", "stale_reads",
)
_PHASE_NAMES = ("before", "during", "after")


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


# -- checks and assembly ---------------------------------------------------------------------


def _observed(summary: Mapping[str, Any], metric: str, phase: str) -> Any:
    scope = summary.get("metrics") if phase == "overall" else (summary.get("phases") or {}).get(
        phase
    )
    return (scope or {}).get(metric)


def _holds(tolerance: ToleranceLike, observed: Any) -> bool:
    """A missing (or non-numeric) observation never satisfies a tolerance."""
    if observed is None or isinstance(observed, bool) or not isinstance(observed, int | float):
        return False
    return OPERATORS[tolerance.op](float(observed), float(tolerance.value))


def evaluate_checks(
    tolerances: Iterable[ToleranceLike], summary: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One ``{metric, phase, expected, observed, ok}`` per tolerance, against ``summarize()``'s
    output (or a whole journal). ``expected`` is the tolerance as written (``">= 0.95"``)."""
    checks = []
    for tol in tolerances:
        observed = _observed(summary, tol.metric, tol.phase)
        checks.append({
            "metric": tol.metric,
            "phase": tol.phase,
            "expected": tol.text or f"{tol.op} {tol.value:g}",
            "observed": observed,
            "ok": _holds(tol, observed),
        })
    return checks


def journal_ok(status: str, checks: Sequence[Mapping[str, Any]]) -> bool:
    """``ok``: the run completed and every tolerance held (an aborted or failed run has not
    shown its steady state, whatever its partial numbers say)."""
    return status == "completed" and all(bool(c.get("ok")) for c in checks)


def _iso(when: _dt.datetime | str | None) -> str | None:
    if isinstance(when, _dt.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.UTC)
        return when.isoformat()
    return when


def assemble_journal(
    *,
    chaospool_version: str,
    seed: int | None,
    started_at: _dt.datetime | str | None,
    ended_at: _dt.datetime | str | None,
    experiment: Mapping[str, Any],
    status: str,
    summary: Mapping[str, Any],
    checks: Sequence[Mapping[str, Any]],
    faults: Sequence[Mapping[str, Any]],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The journal dict, keys in docs/reports.md's order. ``summary`` is ``summarize()``'s
    output; ``extra`` adds keys beyond the required ones (``load``: the probe's ``info()``)."""
    if status not in ("completed", "aborted", "failed"):
        raise ValueError(f"status must be completed, aborted or failed, not {status!r}")
    journal: dict[str, Any] = {
        "chaospool_version": chaospool_version,
        "seed": seed,
        "started_at": _iso(started_at),
        "ended_at": _iso(ended_at),
        "experiment": {k: experiment.get(k) for k in ("title", "path", "sha256")},
        "status": status,
        "ok": journal_ok(status, checks),
        "metrics": copy.deepcopy(dict(summary["metrics"])),
        "phases": copy.deepcopy(dict(summary["phases"])),
        "checks": [dict(c) for c in checks],
        "faults": [_fault_entry(f) for f in faults],
        # a day has 86,400 buckets: copy them flat (a deepcopy takes seconds)
        "timeline": [{**b, "faults_active": list(b.get("faults_active") or ())}
                     for b in summary["timeline"]],
    }
    for key, value in (extra or {}).items():
        journal.setdefault(key, value)
    return journal


def _fault_entry(fault: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("fault", "name", "targets", "injected_at", "reverted_at", "effect", "error")
    entry = {k: copy.deepcopy(fault.get(k)) for k in keys}
    entry["targets"] = entry["targets"] or []
    entry["effect"] = entry["effect"] or {}
    return entry


# -- the Report view -------------------------------------------------------------------------


class _ItemAccess:
    """``record["field"]`` as well as ``record.field`` (the journal reads as dicts)."""

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None


class Metrics(Mapping[str, Any]):
    """One metrics block: ``m.success_rate`` or ``m["success_rate"]`` (latencies in seconds)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None) -> None:
        self._data = dict(data or {})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"no metric {name!r}; metrics: {', '.join(self._data)}") from None

    def __repr__(self) -> str:
        return f"Metrics({self._data!r})"


class Phases(Mapping[str, Metrics]):
    """``report.phases.after`` or ``report.phases["after"]``: one ``Metrics`` per phase."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None) -> None:
        data = data or {}
        self._data = {name: Metrics(data.get(name)) for name in (*_PHASE_NAMES, *data)}

    def __getitem__(self, key: str) -> Metrics:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Metrics:
        if name.startswith("_") or name not in self._data:
            raise AttributeError(name)
        return self._data[name]


@dataclass(frozen=True)
class Check(_ItemAccess):
    """One evaluated tolerance."""

    metric: str
    phase: str
    expected: str
    observed: Any
    ok: bool


@dataclass(frozen=True)
class TargetRecord(_ItemAccess):
    """A worker a fault acted on: its slot and the pid it had then."""

    index: int | None
    pid: int | None


@dataclass(frozen=True)
class FaultRecord(_ItemAccess):
    """One injection: what, where, when (run clock, seconds), its evidence and its error."""

    fault: str
    name: str
    targets: tuple[TargetRecord, ...]
    injected_at: float | None
    reverted_at: float | None
    effect: Mapping[str, Any]
    error: str | None


@dataclass(frozen=True)
class TimelineBucket(_ItemAccess):
    t: float
    succeeded: int
    errors: int
    recovered: int
    p99_latency: float | None
    faults_active: tuple[str, ...]
    # outcomes (docs/reports.md): ok + fail + info = succeeded + errors
    ok: int = 0
    fail: int = 0
    info: int = 0


def _fault_record(d: Mapping[str, Any]) -> FaultRecord:
    targets = tuple(
        TargetRecord(t.get("index"), t.get("pid")) if isinstance(t, Mapping) else
        TargetRecord(getattr(t, "index", None), getattr(t, "pid", None))
        for t in d.get("targets") or ()
    )
    return FaultRecord(
        fault=str(d.get("fault") or ""), name=str(d.get("name") or d.get("fault") or ""),
        targets=targets, injected_at=d.get("injected_at"), reverted_at=d.get("reverted_at"),
        effect=dict(d.get("effect") or {}), error=d.get("error"),
    )


def _bucket(d: Mapping[str, Any]) -> TimelineBucket:
    return TimelineBucket(
        t=d["t"], succeeded=d.get("succeeded", 0), errors=d.get("errors", 0),
        recovered=d.get("recovered", 0), p99_latency=d.get("p99_latency"),
        faults_active=tuple(d.get("faults_active") or ()),
        ok=d.get("ok", d.get("succeeded", 0)), fail=d.get("fail", 0), info=d.get("info", 0),
    )


class Report:
    """The outcome of one experiment run: a read-only view over its journal."""

    def __init__(self, journal: Mapping[str, Any], journal_path: str | None = None) -> None:
        self._journal = copy.deepcopy(dict(journal))
        self.journal_path = journal_path
        j = self._journal
        self.metrics = Metrics(j.get("metrics"))
        self.phases = Phases(j.get("phases"))
        self.checks = tuple(Check(c.get("metric", ""), c.get("phase", "overall"),
                                  str(c.get("expected", "")), c.get("observed"),
                                  bool(c.get("ok"))) for c in j.get("checks") or ())
        self.faults = tuple(_fault_record(f) for f in j.get("faults") or ())
        self.timeline = tuple(_bucket(b) for b in j.get("timeline") or ())

    @classmethod
    def from_journal(
        cls, journal: Mapping[str, Any], journal_path: str | None = None
    ) -> Report:
        return cls(journal, journal_path)

    @property
    def ok(self) -> bool:
        """Every tolerance held (and the run completed)."""
        return bool(self._journal.get("ok"))

    @property
    def status(self) -> str:
        return str(self._journal.get("status", "unknown"))

    @property
    def seed(self) -> int | None:
        seed = self._journal.get("seed")
        return None if seed is None else int(seed)

    @property
    def title(self) -> str | None:
        return (self._journal.get("experiment") or {}).get("title")

    def to_dict(self) -> dict[str, Any]:
        """The journal (a copy: changing it leaves the report alone)."""
        return copy.deepcopy(self._journal)

    def failed_checks(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def assert_ok(self) -> None:
        """Raise ``AssertionError`` with a table of the failed checks unless ``ok``."""
        if not self.ok:
            raise AssertionError(self.failure_text())

    def failure_text(self) -> str:
        """What went wrong, for people: status, failed checks, fault errors, how to reproduce."""
        failed = self.failed_checks()
        head = (f"experiment {self.title or '(untitled)'!r}: {len(failed)} of "
                f"{len(self.checks)} checks failed (status {self.status}, seed {self.seed})")
        lines = [head]
        if failed:
            lines += _table(
                ("check", "phase", "expected", "observed"),
                [(c.metric, c.phase, c.expected, fmt_metric(c.metric, c.observed))
                 for c in failed],
            )
        lines += [f"fault {f.name!r} ({f.fault}) raised: {f.error}"
                  for f in self.faults if f.error]
        if self.journal_path:
            lines.append(f"journal: {self.journal_path}")
        lines.append(f"reproduce: {reproduce_command(self._journal)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<Report {self.title!r} status={self.status} ok={self.ok} seed={self.seed} "
                f"checks={sum(c.ok for c in self.checks)}/{len(self.checks)}>")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True))

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]
