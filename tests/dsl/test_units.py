"""Units: each parser against known values, each printer round-tripping through its parser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chaospool._dsl import units
from chaospool._dsl.units import ParsedTolerance

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("2s", 2.0),
        ("1.5m", 90.0),
        ("1h", 3600.0),
        ("500us", 0.0005),
        ("500µs", 0.0005),
        ("0s", 0.0),
        (" 3 s ", 3.0),
        ("2", 2.0),
        ("0.5", 0.5),
        (2, 2.0),
        (0.25, 0.25),
        (".5s", 0.5),
        ("1e3ms", 1.0),
    ],
)
def test_parse_duration(text: Any, seconds: float) -> None:
    assert units.parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "fast", "5 sec", "-1s", -1, True, "1.5.2s", "5S", None, [1]])
def test_parse_duration_refuses(bad: Any) -> None:
    with pytest.raises(ValueError, match="duration"):
        units.parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("300MB", 300_000_000),
        ("300mb", 300_000_000),
        ("1GiB", 2**30),
        ("512KiB", 512 * 1024),
        ("1.5GiB", 3 * 2**29),
        ("2TB", 2 * 10**12),
        ("10B", 10),
        ("4096", 4096),
        (4096, 4096),
        (0, 0),
    ],
)
def test_parse_size(text: Any, size: int) -> None:
    assert units.parse_size(text) == size


@pytest.mark.parametrize("bad", ["1.5B", "10XB", "MB", "-5MB", -5, 1.5, True, "lots"])
def test_parse_size_refuses(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"size|bytes"):
        units.parse_size(bad)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("500/s", 500.0),
        ("10/ms", 10_000.0),
        ("60/m", 1.0),
        ("3600/h", 1.0),
        ("50MB/s", 50e6),
        ("1MiB/s", float(2**20)),
        ("2.5/s", 2.5),
        (100, 100.0),
        ("100", 100.0),
    ],
)
def test_parse_rate(text: Any, rate: float) -> None:
    assert units.parse_rate(text) == rate


@pytest.mark.parametrize("bad", ["fast", "5/x", "5XB/s", "-5/s", "/s", True, None])
def test_parse_rate_refuses(bad: Any) -> None:
    with pytest.raises(ValueError, match="rate"):
        units.parse_rate(bad)


@pytest.mark.parametrize(("text", "value"), [("95%", 0.95), ("0.1%", 0.001), ("100%", 1.0)])
def test_parse_percent(text: str, value: float) -> None:
    assert units.parse_percent(text) == value


@pytest.mark.parametrize("bad", ["95", "%", "-5%", 0.95])
def test_parse_percent_refuses(bad: Any) -> None:
    with pytest.raises(ValueError, match="percentage"):
        units.parse_percent(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (">= 0.95", ParsedTolerance(">=", 0.95, "number")),
        ("< 500ms", ParsedTolerance("<", 0.5, "duration")),
        ("> 0", ParsedTolerance(">", 0.0, "number")),
        ("== 0", ParsedTolerance("==", 0.0, "number")),
        ("!= 0", ParsedTolerance("!=", 0.0, "number")),
        ("<= 95%", ParsedTolerance("<=", 0.95, "percent")),
        (">= 500/s", ParsedTolerance(">=", 500.0, "rate")),
        ("<2s", ParsedTolerance("<", 2.0, "duration")),
        ("  >=  1.5m ", ParsedTolerance(">=", 90.0, "duration")),
    ],
)
def test_parse_tolerance(text: str, expected: ParsedTolerance) -> None:
    assert units.parse_tolerance(text) == expected


@pytest.mark.parametrize("bad", ["0.95", "=> 0.95", "= 1", ">= fast", ">=", "~ 1", ">= -1"])
def test_parse_tolerance_refuses(bad: str) -> None:
    with pytest.raises(ValueError, match="tolerance") as info:
        units.parse_tolerance(bad)
    assert repr(bad) in str(info.value)


def test_size_units_are_documented_as_decimal_and_binary() -> None:
    assert units.parse_size("1MB") == 10**6
    assert units.parse_size("1MiB") == 2**20


Printer = tuple[Callable[[Any], Any], Callable[[Any], str]]
_KINDS: dict[str, Printer] = {
    "duration": (units.parse_duration, units.print_duration),
    "size": (units.parse_size, units.print_size),
    "rate": (units.parse_rate, units.print_rate),
    "percent": (units.parse_percent, units.print_percent),
}

_ROUND_TRIPS = [
    *(
        ("duration", t)
        for t in [
            "250ms",
            "2s",
            "1.5m",
            "1h",
            "500us",
            "0s",
            "0.1",
            7.000001,
            "90.5s",
            "12345.678s",
            "1e-7s",
            0.3,
            "3601s",
            "59.99s",
            1e9,
        ]
    ),
    *(("size", t) for t in ["300MB", "1GiB", "512KiB", "1.5GiB", 0, 1, 1000, 1023, 10**15 + 1]),
    *(("rate", t) for t in ["500/s", "10/ms", "50MB/s", "1/h", 0.1, "7/m", 1e-9]),
    *(("percent", t) for t in ["95%", "7%", "0.1%", "33.3%", "100%", "0%", "12.3456%"]),
]


@pytest.mark.parametrize(("kind", "text"), _ROUND_TRIPS)
def test_print_round_trips(kind: str, text: Any) -> None:
    parse, show = _KINDS[kind]
    value = parse(text)
    printed = show(value)
    assert isinstance(printed, str)
    assert parse(printed) == value


@pytest.mark.parametrize(
    ("kind", "value", "printed"),
    [
        ("duration", 0.25, "250ms"),
        ("duration", 90.0, "1.5m"),
        ("duration", 7200.0, "2h"),
        ("duration", 2.0, "2s"),
        ("duration", 0.0005, "500us"),
        ("size", 300_000_000, "300MB"),
        ("size", 2**30, "1GiB"),
        ("size", 1023, "1023B"),
        ("rate", 500.0, "500/s"),
        ("percent", 0.95, "95%"),
        ("percent", 0.07, "7%"),
    ],
)
def test_print_is_readable(kind: str, value: Any, printed: str) -> None:
    assert _KINDS[kind][1](value) == printed


def test_print_byte_rate() -> None:
    assert units.print_rate(50e6, size=True) == "50MB/s"
    assert units.parse_rate(units.print_rate(1234.5, size=True)) == 1234.5


@pytest.mark.parametrize(
    "text", [">= 0.95", "< 500ms", "> 0", "== 0", "!= 0", "<= 95%", ">= 500/s", "< 1.5m"]
)
def test_tolerance_round_trips(text: str) -> None:
    parsed = units.parse_tolerance(text)
    assert units.parse_tolerance(units.print_tolerance(parsed)) == parsed
