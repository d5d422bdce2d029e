"""Shared reading and formatting of the journal for every reporter.

Reporters see only the journal (docs/reports.md), as the typed records of
:mod:`chaospool._journal`; one re-read from a file written by an older or partial run has its
missing keys defaulted or ``UNSET``, and every formatter here takes ``None`` for "not measured".
"""

from __future__ import annotations

import shlex
from typing import Any

from chaospool._journal import Check, FaultRecord, HookErrorRecord, Journal

__all__ = (
    "PHASES",
    "PHASE_METRICS",
    "check_name",
    "experiment_title",
    "fault_label",
    "fmt_metric",
    "fmt_seconds",
    "problems",
    "reproduce_command",
    "status_line",
)

PHASES = ("before", "during", "after", "overall")

# The metrics shown in the per-phase tables, in reading order.
PHASE_METRICS = (
    "total",
    "succeeded",
    "errors",
    "recovered",
    "success_rate",
    "error_rate",
    "throughput",
    "mean_latency",
    "p50_latency",
    "p90_latency",
    "p95_latency",
    "p99_latency",
    "p999_latency",
    "max_latency",
    "worker_restarts",
    "recovery_time",
)

_SECONDS = frozenset({"recovery_time"})
_RATIOS = frozenset({"success_rate", "error_rate"})
MISSING = "—"


def fmt_seconds(value: float | None) -> str:
    """A duration for people: ``850 µs``, ``12.3 ms``, ``2.50 s``."""
    if value is None:
        return MISSING
    v = float(value)
    if abs(v) >= 1.0:
        return f"{v:.2f} s"
    if abs(v) >= 0.001:
        return f"{v * 1000:.1f} ms"
    if v == 0:
        return "0 s"
    return f"{v * 1_000_000:.0f} µs"


def fmt_metric(metric: str, value: Any) -> str:
    """Format one metric value by what it measures (latency, ratio, rate, count)."""
    if value is None:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if metric.endswith("_latency") or metric in _SECONDS:
        return fmt_seconds(value)
    if metric in _RATIOS:
        return f"{value * 100:.2f}%"
    if metric == "throughput":
        return f"{value:.1f}/s"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}"
    return str(int(value))


def check_name(check: Check) -> str:
    """``overall.success_rate >= 0.95``: the check as a person would write it."""
    return f"{check.phase or 'overall'}.{check.metric or '?'} {check.expected}".rstrip()


def experiment_title(journal: Journal) -> str:
    exp = journal.experiment
    if exp.title:
        return exp.title
    if exp.path:
        return exp.path.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return "experiment"


def fault_label(index: int, fault: FaultRecord) -> str:
    """``F2 kill worker #2``: numbered so that repeated steps with one name stay distinct."""
    kind = fault.fault or "fault"
    name = fault.name or kind
    text = name if name == kind else f"{name} ({kind})"
    return f"F{index + 1} {text}"


def reproduce_command(journal: Journal) -> str | None:
    """The command that re-runs this experiment with the same seed; None for a journal rebuilt
    from a history, which records neither the experiment nor the seed.

    The engine records its own (``reproduce``); journals without one get it rebuilt.
    """
    if journal.reproduce:
        return str(journal.reproduce)
    if journal.from_history:
        return None
    argv = ["chaospool", "run", journal.experiment.path or "EXPERIMENT.yaml"]
    if journal.seed is not None:
        argv += ["--seed", str(journal.seed)]
    return shlex.join(argv)


def status_line(journal: Journal) -> str:
    """``completed · 4/5 checks passed`` (or ``failed`` / ``aborted``)."""
    passed = sum(1 for c in journal.checks if c.ok)
    verdict = "PASSED" if journal.ok else "FAILED"
    return f"{verdict} · status {journal.status} · {passed}/{len(journal.checks)} checks passed"


def _plugin_error(entry: HookErrorRecord) -> str:
    times = f" ({entry.count} times)" if entry.count > 1 else ""
    return f"plugin {entry.plugin!r} raised in {entry.hook}: {entry.error}{times}"


def problems(journal: Journal) -> list[str]:
    """What went wrong beyond the checks: the run's error, fault errors, plugin errors."""
    found = []
    if journal.error:
        found.append(f"run error: {journal.error}")
    found += [f"{fault_label(i, f)}: {f.error}" for i, f in enumerate(journal.faults) if f.error]
    found += [_plugin_error(e) for e in journal.plugin_errors or ()]
    return found
