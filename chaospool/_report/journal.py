"""The ``Report`` users get back from ``chaospool.run``: a read-only view over one journal.

The journal itself is defined once, as typed records, in :mod:`chaospool._journal` (below the
engine that builds it and the reports that read it); this module re-exports the record types
under the names users met in 0.1.0. ``Report.from_journal(d).to_dict() == d`` for a journal
this version wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chaospool._journal import (
    METRIC_KEYS,
    Bucket,
    Check,
    FaultRecord,
    Journal,
    Metrics,
    Phases,
    Target,
    ToleranceLike,
    as_journal,
    evaluate_checks,
    journal_ok,
)
from chaospool._report._format import fmt_metric, reproduce_command

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
    "evaluate_checks",
    "journal_ok",
)

# the 0.1.0 names of two record types
TargetRecord = Target
TimelineBucket = Bucket


class Report:
    """The outcome of one experiment run: a read-only view over its journal."""

    def __init__(self, journal: Journal | Mapping[str, Any],
                 journal_path: str | None = None) -> None:
        self.journal = as_journal(journal)
        self.journal_path = journal_path
        j = self.journal
        self.metrics: Metrics = j.metrics
        self.phases: Phases = j.phases
        self.checks: tuple[Check, ...] = tuple(j.checks)
        self.faults: tuple[FaultRecord, ...] = tuple(j.faults)
        self.timeline: tuple[Bucket, ...] = tuple(j.timeline)

    @classmethod
    def from_journal(
        cls, journal: Journal | Mapping[str, Any], journal_path: str | None = None
    ) -> Report:
        return cls(journal, journal_path)

    @property
    def ok(self) -> bool:
        """Every tolerance held (and the run completed)."""
        return self.journal.ok

    @property
    def status(self) -> str:
        return self.journal.status

    @property
    def seed(self) -> int | None:
        return self.journal.seed

    @property
    def title(self) -> str | None:
        return self.journal.experiment.title

    def to_dict(self) -> dict[str, Any]:
        """The journal as JSON-able builtins (a copy: changing it leaves the report alone)."""
        return self.journal.to_dict()

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
        reproduce = reproduce_command(self.journal)
        if reproduce is not None:
            lines.append(f"reproduce: {reproduce}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<Report {self.title!r} status={self.status} ok={self.ok} seed={self.seed} "
                f"checks={sum(c.ok for c in self.checks)}/{len(self.checks)}>")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True))

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]
