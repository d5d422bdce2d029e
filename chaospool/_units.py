"""Units of the experiment DSL: durations, sizes, rates, percentages and tolerances.

One small function each way. Every ``print_*`` returns text that its ``parse_*`` reads back to
exactly the same value (``parse_x(print_x(v)) == v``), so a resolved experiment can be shown and
re-entered without drift.

- Durations: ``250ms``, ``2s``, ``1.5m``, ``1h``, ``500us`` (or ``500µs``), or a bare number of
  seconds (``2``, ``0.5``). Returned as float seconds.
- Sizes: a bare integer is bytes; ``B``; decimal ``KB MB GB TB`` are powers of 1000
  (``300MB`` = 300 000 000 bytes); binary ``KiB MiB GiB TiB`` are powers of 1024
  (``512KiB`` = 524 288 bytes). Unit letters are case-insensitive. Returned as int bytes; a size
  that is not a whole number of bytes (``1.5B``) is refused.
- Rates: ``500/s`` (events per second), ``10/ms``, ``60/m``, ``50MB/s`` (bytes per second: the
  numerator may carry a size unit), or a bare number per second. Returned as float per second.
- Percentages: ``95%`` is 0.95.
- Tolerances: an operator (``< <= > >= == !=``) and a value that is a number, a duration, a
  percentage or a rate: ``>= 0.95``, ``< 500ms``, ``<= 95%``, ``>= 500/s``.

Every parser raises ``ValueError`` with a message that quotes the bad text and says what is
expected; every parser refuses negative values and booleans.
"""

from __future__ import annotations

import decimal
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

__all__ = (
    "DURATION_UNITS",
    "OPERATORS",
    "SIZE_UNITS",
    "ParsedTolerance",
    "ValueKind",
    "parse_duration",
    "parse_percent",
    "parse_rate",
    "parse_size",
    "parse_tolerance",
    "print_duration",
    "print_percent",
    "print_rate",
    "print_size",
    "print_tolerance",
)

Number = int | float | str

# suffix -> seconds
DURATION_UNITS: dict[str, Fraction] = {
    "us": Fraction(1, 1_000_000),
    "µs": Fraction(1, 1_000_000),
    "ms": Fraction(1, 1000),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
}

# lower-cased suffix -> bytes
SIZE_UNITS: dict[str, int] = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE_SPELLING = {u: u.upper().replace("I", "i") for u in SIZE_UNITS}  # "kib" -> "KiB"



def _close(a: float, b: float) -> bool:
    # metrics are ratios and sums of floats: 0.1 + 0.2 must equal 0.3 for "== 0.3" to be usable
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# The one operator table of tolerances (docs/dsl.md): ``==`` and ``!=`` compare with a relative
# tolerance of 1e-9 (absolute 1e-12 near zero), so float noise never decides a check.
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": _close,
    "!=": lambda a, b: not _close(a, b),
}

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_DURATION_RE = re.compile(rf"^\s*({_NUMBER})\s*(us|µs|ms|s|m|h)?\s*$")
_SIZE_RE = re.compile(rf"^\s*({_NUMBER})\s*([A-Za-z]+)?\s*$")
_RATE_RE = re.compile(rf"^\s*({_NUMBER})\s*([A-Za-z]*)\s*/\s*(us|µs|ms|s|m|h)\s*$")
_PERCENT_RE = re.compile(rf"^\s*({_NUMBER})\s*%\s*$")
_TOLERANCE_RE = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*(.+?)\s*$")


def _exact(value: Number) -> Fraction | None:
    """A non-negative number (or numeric text) as an exact fraction; None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Fraction(value) if value >= 0 else None
    if isinstance(value, float):
        return Fraction(value) if math.isfinite(value) and value >= 0 else None
    if isinstance(value, str) and re.fullmatch(rf"\s*{_NUMBER}\s*", value):
        return Fraction(value.strip())
    return None


def _shortest(value: float) -> str:
    """The shortest text for a float (``2.0`` -> ``2``, ``0.25`` -> ``0.25``)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _decimal_text(exact: Fraction, reads_back: Callable[[str], bool]) -> str | None:
    """The shortest plain decimal text near ``exact`` for which ``reads_back`` holds.

    Scaling a float (``0.07 * 100``) picks up binary noise (``7.000000000000001``); searching the
    fewest significant digits that still parse back to the very same float avoids it.
    """
    for digits in range(1, 30):
        context = decimal.Context(prec=digits)
        number = context.divide(exact.numerator, exact.denominator)
        text = format(number.normalize(context), "f")
        if reads_back(text):
            return text
    return None


# -- durations ---------------------------------------------------------------------------------


def parse_duration(value: Number) -> float:
    """``250ms`` / ``2s`` / ``1.5m`` / ``1h`` / ``500us`` / a number of seconds -> seconds."""
    if not isinstance(value, str):
        exact = _exact(value)
        if exact is None:
            raise ValueError(f"expected a duration such as 250ms, 2s or 1.5m, got {value!r}")
        return float(exact)
    match = _DURATION_RE.match(value)
    if match is None:
        raise ValueError(
            f"bad duration {value!r}: expected a number and a unit "
            f"(us, ms, s, m, h), e.g. 250ms, 2s, 1.5m"
        )
    number, unit = match.groups()
    return float(Fraction(number) * DURATION_UNITS[unit or "s"])


def print_duration(seconds: float) -> str:
    """Seconds -> the most readable duration text that parses back to exactly ``seconds``."""
    if seconds == 0:
        return "0s"
    for unit in _duration_units_for(seconds):
        text = _decimal_text(Fraction(seconds) / DURATION_UNITS[unit], _reads_back(seconds, unit))
        # 1.5m reads well, 1.5083333333333333m does not: long texts only in seconds.
        if text is not None and (unit not in ("h", "m") or len(text) <= 4):
            return f"{text}{unit}"
    return f"{_shortest(seconds)}s"


def _reads_back(seconds: float, unit: str) -> Callable[[str], bool]:
    return lambda text: parse_duration(f"{text}{unit}") == seconds


def _duration_units_for(seconds: float) -> tuple[str, ...]:
    if seconds >= 3600:
        return ("h", "m", "s")
    if seconds >= 60:
        return ("m", "s")
    if seconds >= 1:
        return ("s",)
    if seconds >= 0.001:
        return ("ms", "s")
    return ("us", "ms", "s")


# -- sizes -------------------------------------------------------------------------------------


def parse_size(value: Number) -> int:
    """``300MB`` (10^6) / ``1GiB`` (2^30) / ``512KiB`` / a bare integer of bytes -> bytes."""
    if not isinstance(value, str):
        exact = _exact(value)
        if exact is None or exact.denominator != 1:
            raise ValueError(f"expected a size such as 300MB or 1GiB, or bytes, got {value!r}")
        return int(exact)
    match = _SIZE_RE.match(value)
    if match is None or (match.group(2) or "b").lower() not in SIZE_UNITS:
        raise ValueError(
            f"bad size {value!r}: expected a number and a unit "
            f"(B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 300MB or 1GiB"
        )
    number, unit = match.groups()
    total = Fraction(number) * SIZE_UNITS[(unit or "b").lower()]
    if total.denominator != 1:
        raise ValueError(f"bad size {value!r}: not a whole number of bytes")
    return int(total)


def print_size(size: int) -> str:
    """Bytes -> the largest unit that divides them exactly (``314572800`` -> ``300MiB``)."""
    for unit, factor in sorted(SIZE_UNITS.items(), key=lambda item: -item[1]):
        if factor > 1 and size >= factor and size % factor == 0:
            return f"{size // factor}{_SIZE_SPELLING[unit]}"
    return f"{size}B"


# -- rates -------------------------------------------------------------------------------------


def parse_rate(value: Number) -> float:
    """``500/s`` / ``10/ms`` / ``50MB/s`` (bytes per second) / a bare number -> per second."""
    if not isinstance(value, str) or _exact(value) is not None:
        exact = _exact(value)
        if exact is None:
            raise ValueError(f"expected a rate such as 500/s or 50MB/s, got {value!r}")
        return float(exact)
    match = _RATE_RE.match(value)
    if match is None or (match.group(2) and match.group(2).lower() not in SIZE_UNITS):
        raise ValueError(
            f"bad rate {value!r}: expected an amount per time unit, e.g. 500/s, 10/ms, 50MB/s"
        )
    number, size_unit, per = match.groups()
    amount = Fraction(number) * (SIZE_UNITS[size_unit.lower()] if size_unit else 1)
    return float(amount / DURATION_UNITS[per])


def print_rate(per_second: float, *, size: bool = False) -> str:
    """Per second -> ``500/s``; with ``size=True`` a byte rate such as ``50MB/s`` if exact."""
    if size and per_second == int(per_second) and per_second > 0:
        text = f"{print_size(int(per_second))}/s"
        if parse_rate(text) == per_second:
            return text
    return f"{_shortest(per_second)}/s"


# -- percentages -------------------------------------------------------------------------------


def parse_percent(value: Number) -> float:
    """``95%`` -> 0.95."""
    match = _PERCENT_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"bad percentage {value!r}: expected a number and %, e.g. 95%")
    return float(Fraction(match.group(1)) / 100)


def print_percent(fraction: float) -> str:
    """0.95 -> ``95%``."""
    text = _decimal_text(Fraction(fraction) * 100, lambda t: parse_percent(f"{t}%") == fraction)
    # 17 significant digits always identify a float, so the search never comes back empty.
    return f"{text if text is not None else _shortest(fraction * 100)}%"


# -- tolerances --------------------------------------------------------------------------------

ValueKind = Literal["number", "duration", "percent", "rate"]


@dataclass(frozen=True)
class ParsedTolerance:
    """``op`` one of ``< <= > >= == !=``; ``value`` in base units; ``kind`` how it was written."""

    op: str
    value: float
    kind: ValueKind


def parse_tolerance(text: str) -> ParsedTolerance:
    """``">= 0.95"`` / ``"< 500ms"`` / ``"<= 95%"`` / ``">= 500/s"`` -> ParsedTolerance."""
    if not isinstance(text, str):
        raise ValueError(f"a tolerance is an operator and a value, e.g. '>= 0.95', got {text!r}")
    match = _TOLERANCE_RE.match(text)
    if match is None:
        raise ValueError(
            f"bad tolerance {text!r}: expected an operator (< <= > >= == !=) "
            f"and a value, e.g. '>= 0.95' or '< 500ms'"
        )
    op, raw = match.groups()
    kind, value = _tolerance_value(raw, text)
    return ParsedTolerance(op, value, kind)


def _tolerance_value(raw: str, text: str) -> tuple[ValueKind, float]:
    exact = _exact(raw)
    if exact is not None:
        return "number", float(exact)
    kind: ValueKind = "percent" if raw.endswith("%") else "rate" if "/" in raw else "duration"
    parse = {"percent": parse_percent, "rate": parse_rate, "duration": parse_duration}[kind]
    try:
        return kind, parse(raw)
    except ValueError:
        raise ValueError(
            f"bad tolerance {text!r}: {raw!r} is not a number, duration (500ms), "
            f"percentage (95%) or rate (500/s)"
        ) from None


def print_tolerance(tolerance: ParsedTolerance) -> str:
    """ParsedTolerance -> text that ``parse_tolerance`` reads back to the same tolerance."""
    printers: dict[str, Callable[[float], str]] = {
        "number": _shortest,
        "duration": print_duration,
        "percent": print_percent,
        "rate": print_rate,
    }
    return f"{tolerance.op} {printers[tolerance.kind](tolerance.value)}"
