"""Shared reading and formatting of the journal dict for every reporter.

Reporters see only the journal (docs/reports.md), possibly re-read from a file written by an older
or partial run, so every accessor here tolerates a missing key or a ``null`` value.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

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


def check_name(check: Mapping[str, Any]) -> str:
    """``overall.success_rate >= 0.95``: the check as a person would write it."""
    phase = check.get("phase") or "overall"
    return f"{phase}.{check.get('metric', '?')} {check.get('expected', '')}".rstrip()


def experiment_title(journal: Mapping[str, Any]) -> str:
    exp = journal.get("experiment") or {}
    title = exp.get("title")
    if title:
        return str(title)
    path = exp.get("path")
    if path:
        return str(path).replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return "experiment"


def fault_label(index: int, fault: Mapping[str, Any]) -> str:
    """``F2 kill worker #2``: numbered so that repeated steps with one name stay distinct."""
    kind = str(fault.get("fault") or "fault")
    name = str(fault.get("name") or kind)
    text = name if name == kind else f"{name} ({kind})"
    return f"F{index + 1} {text}"


def reproduce_command(journal: Mapping[str, Any]) -> str:
    """The command that re-runs this experiment with the same seed.

    The engine records its own (``reproduce``); journals without one get it rebuilt.
    """
    given = journal.get("reproduce")
    if isinstance(given, str) and given:
        return given
    exp = journal.get("experiment") or {}
    path = exp.get("path") or "EXPERIMENT.yaml"
    argv = ["chaospool", "run", str(path)]
    if journal.get("seed") is not None:
        argv += ["--seed", str(journal["seed"])]
    return shlex.join(argv)


def status_line(journal: Mapping[str, Any]) -> str:
    """``completed · 4/5 checks passed`` (or ``failed`` / ``aborted``)."""
    checks: Sequence[Mapping[str, Any]] = journal.get("checks") or []
    passed = sum(1 for c in checks if c.get("ok"))
    status = journal.get("status") or "unknown"
    verdict = "PASSED" if journal.get("ok") else "FAILED"
    return f"{verdict} · status {status} · {passed}/{len(checks)} checks passed"


def _plugin_error(entry: Any) -> str:
    if isinstance(entry, Mapping):
        times = f" ({entry['count']} times)" if (entry.get("count") or 1) > 1 else ""
        return (f"plugin {entry.get('plugin')!r} raised in {entry.get('hook')}: "
                f"{entry.get('error')}{times}")
    return str(entry)


def problems(journal: Mapping[str, Any]) -> list[str]:
    """What went wrong beyond the checks: the run's error, fault errors, plugin errors."""
    found = []
    if journal.get("error"):
        found.append(f"run error: {journal['error']}")
    for i, fault in enumerate(journal.get("faults") or []):
        if fault.get("error"):
            found.append(f"{fault_label(i, fault)}: {fault['error']}")
    found += [_plugin_error(e) for e in journal.get("plugin_errors") or []]
    return found
