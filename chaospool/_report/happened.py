"""What a run did, in a few lines a person reads first; and check values shown honestly.

``happened_lines``: faults injected (one line of evidence each), the pool's reactions, workers
restarted, operations recovered, errors by kind whenever there are errors, and where an
aborted run stopped. ``fmt_observed``: a check's observed value in the unit and precision of
its expected value, never rounded onto the threshold (or onto 0 / 100 %) when it is not there,
and exact when the check failed (docs/reports.md, "The terminal summary").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from chaospool._journal import FaultRecord, Journal, Metrics
from chaospool._report._format import fault_label, fmt_metric, fmt_seconds

__all__ = ("evidence_line", "fmt_observed", "happened_lines", "stopped_note")

_TOLERANCE = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*(.+?)\s*$")
_DURATION = re.compile(r"^([-+]?[\d.]+(?:e[-+]?\d+)?)\s*(us|µs|ms|s|m|h)$")
_DURATION_SCALE = {"us": 1e6, "µs": 1e6, "ms": 1e3, "s": 1.0, "m": 1 / 60, "h": 1 / 3600}
_RATIOS = ("success_rate", "error_rate")
_MAX_DECIMALS = 9
# fewest decimals shown, by how the expected value is written: a ratio as a number (0.95)
# shows 0.9787, as a percentage 97.87%; a duration 552.0ms
_MIN_DECIMALS = {"%": 2, "/s": 1, "us": 1, "µs": 1, "ms": 1, "s": 1, "m": 1, "h": 1}


def _unit_of(raw: str) -> tuple[str, float, str] | None:
    """(number text, scale from base units, unit suffix) of a tolerance's value."""
    if raw.endswith("%"):
        return raw[:-1].strip(), 100.0, "%"
    if raw.endswith("/s"):
        return raw[:-2].strip(), 1.0, "/s"
    match = _DURATION.match(raw)
    if match:
        return match.group(1), _DURATION_SCALE[match.group(2)], match.group(2)
    try:
        float(raw)
    except ValueError:
        return None
    return raw, 1.0, ""


def fmt_observed(metric: str, expected: Any, observed: Any, ok: bool) -> str:
    """``observed`` as the expected value is written: ``99.983%`` next to ``>= 99%``."""
    if isinstance(observed, bool) or not isinstance(observed, int | float):
        return fmt_metric(metric, observed)
    match = _TOLERANCE.match(str(expected or ""))
    unit = _unit_of(match.group(2)) if match else None
    if unit is None:
        return fmt_metric(metric, observed)
    number, scale, suffix = unit
    value = float(f"{observed * scale:.12g}")  # without the float noise of the scaling
    least = 4 if metric in _RATIOS and not suffix else _MIN_DECIMALS.get(suffix, 0)
    decimals = max(len(number.partition(".")[2]), 0 if float(value).is_integer() else least)
    avoid = {float(number), 0.0} | ({scale} if metric in _RATIOS else set())
    text = _digits(value, decimals)
    # more decimals while the text reads as a boundary the value is not at, or (a failed
    # check) while it is not the exact value
    while decimals < _MAX_DECIMALS and abs(float(text) - value) > abs(value) * 1e-7 and (
            float(text) in avoid or not ok or _significant(text) < 2):
        decimals += 1
        text = _digits(value, decimals)
    return f"{text}{suffix}"


def _significant(text: str) -> int:
    return len(text.lstrip("-").replace(".", "").lstrip("0"))


def _digits(value: float, decimals: int) -> str:
    if decimals == 0:
        return str(round(value))
    return f"{value:.{decimals}f}"


# -- evidence ------------------------------------------------------------------------------------

def _brief(value: Any) -> str:
    if isinstance(value, list | tuple):
        return str(len(value))
    if isinstance(value, Mapping):
        return "{" + " ".join(f"{k}={_brief(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _empty(value: Any) -> bool:
    return value is None or value is False or value == 0 or value in ([], (), {}, "")


def evidence_line(effect: Mapping[str, Any], width: int = 110) -> str:
    """A fault's effect in one line: scalars as they are, lists as their length; empty
    values (none, zero, an empty list) are left out."""
    text = " ".join(f"{k}={_brief(v)}" for k, v in effect.items() if not _empty(v))
    return text if len(text) <= width else text[: width - 1] + "…"


def _targets(fault: FaultRecord) -> str:
    if not fault.targets:
        return "the pool"
    return "slot " + ", ".join(f"{t.index} (pid {t.pid})" for t in fault.targets)


def _fault_line(index: int, fault: FaultRecord) -> str:
    label = fault_label(index, fault)
    if fault.error:
        return f"  {label}: FAILED: {fault.error}"
    effect = evidence_line(fault.effect, width=74)
    return (f"  {label} at {fmt_seconds(fault.injected_at)} on {_targets(fault)}\n"
            f"      {effect or 'no evidence recorded'}")


# -- the story ----------------------------------------------------------------------------------

_EVENT_WORDS = {  # kind -> (one, several)
    "crash": ("worker crash", "worker crashes"), "restart": ("replacement", "replacements"),
    "timeout": ("kill of a timed-out worker", "kills of timed-out workers"),
    "health_fail": ("failed health check", "failed health checks"),
    "recycle": ("recycle", "recycles"), "retire": ("retirement", "retirements"),
    "circuit_open": ("circuit opening", "circuit openings"),
    "circuit_half_open": ("circuit half-open", "circuit half-opens"),
}


def _event_words(kind: str, n: int) -> str:
    one, several = _EVENT_WORDS.get(kind, (kind, kind))
    return f"{n} {one if n == 1 else several}"


def stopped_note(journal: Journal) -> str | None:
    """``stopped at 2.8 s of 15 s`` for a run that did not run its whole duration."""
    if journal.status not in ("aborted", "failed"):
        return None
    elapsed, duration = journal.elapsed, journal.duration
    if not isinstance(elapsed, int | float) or not isinstance(duration, int | float):
        return None
    if elapsed >= duration:
        return None
    return (f"stopped at {elapsed:.1f} s of {duration:g} s: metrics and checks cover an "
            "incomplete run")


def happened_lines(journal: Journal) -> list[str]:
    """What happened, even when every check passed."""
    m, faults = journal.metrics, journal.faults
    lines = [f"faults: {len(faults)} injected" if faults else "faults: none (a baseline run)"]
    lines += [_fault_line(i, f) for i, f in enumerate(faults)]
    events = Counter(str(e.get("kind")) for e in journal.events or ())
    if events:
        lines.append("pool: " + ", ".join(_event_words(k, n) for k, n in events.most_common()))
    lines.append(f"workers restarted: {m.worker_restarts or 0}")
    lines.append(f"operations recovered (succeeded after a failed attempt): {m.recovered}")
    lines.append(_errors_line(m))
    return lines


def _errors_line(metrics: Metrics) -> str:
    errors, total = metrics.errors, metrics.total
    if not errors:
        return f"errors: none of {total} operations"
    kinds = sorted(metrics.errors_by_kind.items(), key=lambda kv: -kv[1])
    by_kind = ", ".join(f"{kind} {count}" for kind, count in kinds if count)
    return f"errors: {errors} of {total} operations: {by_kind}"
