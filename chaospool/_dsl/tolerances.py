"""Steady-state tolerances: ``metric: "OP VALUE"`` checked against what the metric measures.

A latency takes a duration (``< 500ms``) or a number of seconds; a rate such as
``success_rate`` takes a fraction (``>= 0.95``) or a percentage (``>= 95%``); ``throughput`` takes
a number or a rate (``>= 500/s``); counts take plain numbers. A value of the wrong kind, or a
fraction above 1, is refused with the fix.
"""

from __future__ import annotations

from typing import Any

from chaospool._dsl import units
from chaospool._dsl.model import METRICS, Phase, Tolerance
from chaospool._dsl.reader import INVALID, Reader, show
from chaospool._dsl.source import Path

__all__ = ("read_tolerance",)

_KIND_WORDS = {
    "number": "a number",
    "duration": "a duration",
    "percent": "a percentage",
    "rate": "a rate",
}
_METRIC_WORDS = {
    ("number", "duration"): "a time: write a duration such as '< 500ms' or seconds ('< 0.5')",
    ("number", "percent"): "a fraction: write '>= 0.95' or '>= 95%'",
    ("number", "rate"): "a rate: write '>= 500/s' or a number per second",
    ("number",): "a count: write a plain number such as '> 0'",
}


def read_tolerance(reader: Reader, path: Path, metric: str, phase: Phase, raw: Any) -> Any:
    """A Tolerance for ``metric`` in ``phase``, or INVALID with the problem recorded."""
    if not isinstance(raw, str):
        return reader.error(
            path,
            f"a tolerance is an operator and a value in quotes, e.g. "
            f"'>= {show(raw)}', got {show(raw)}",
        )
    parsed = reader.check(path, units.parse_tolerance, raw)
    if parsed is INVALID:
        return INVALID
    allowed = METRICS[metric]
    if parsed.kind not in allowed:
        return reader.error(
            path, f"{metric} is {_METRIC_WORDS[allowed]}; {raw!r} is {_KIND_WORDS[parsed.kind]}"
        )
    if "percent" in allowed and parsed.value > 1:
        return reader.error(
            path,
            f"{metric} is a fraction between 0 and 1, got {raw!r} "
            f"(did you mean '{parsed.op} {parsed.value:g}%'?)",
        )
    return Tolerance(metric=metric, phase=phase, op=parsed.op, value=parsed.value, text=raw.strip())
