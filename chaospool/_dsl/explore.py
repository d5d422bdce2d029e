"""The ``explore:`` section (docs/explore.md): what ``chaospool explore`` may draw.

Read after ``method`` because its ``faults`` list is checked against the same fault registry
(plugins included) and its window against the run's duration. ``run`` ignores the section.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from chaospool._dsl import units
from chaospool._dsl.methods import backend_mismatch
from chaospool._dsl.model import KEYS, ExploreSpec
from chaospool._dsl.reader import INVALID, Reader, did_you_mean, show
from chaospool._dsl.source import Path
from chaospool.fault import Fault

__all__ = ("read_explore",)

_KEYS = tuple(d.path.removeprefix("explore.") for d in KEYS if d.path.startswith("explore."))
_RANGE_RE = re.compile(r"^\s*(\d+)\s*\.\.\s*(\d+)\s*$")


def read_explore(
    reader: Reader,
    path: Path,
    raw: Any,
    registry: Mapping[str, type[Fault]] | None,
    duration: Any,
    backend: str | None = None,
) -> Any:
    """An ``ExploreSpec``, ``None`` when the section is absent, INVALID (errors recorded).

    ``backend``: the pool's (None when ``pool:`` was invalid), for the faults it can run."""
    if raw is None:
        return None
    mapping = reader.mapping(path, raw, _KEYS)
    if mapping is None:
        return INVALID
    steps = _steps(reader, (*path, "steps"), mapping.get("steps", "1..3"))
    values = {
        "faults": _faults(reader, (*path, "faults"), mapping.get("faults"), registry, backend),
        "duration": _optional(reader, (*path, "duration"), "duration > 0", mapping, "duration"),
        "budget": reader.leaf((*path, "budget"), "int >= 1", mapping.get("budget", 20)),
    }
    own = values["duration"]
    run = own if isinstance(own, float) else duration if isinstance(duration, float) else None
    window = _window(reader, (*path, "window"), mapping.get("window", ["10%", "70%"]), run)
    if INVALID in (*values.values(), steps, window) or any(k not in _KEYS for k in mapping):
        return INVALID
    return ExploreSpec(min_steps=steps[0], max_steps=steps[1], window=window, **values)


def _optional(reader: Reader, path: Path, type_text: str, raw: Mapping[str, Any], key: str) -> Any:
    return reader.leaf(path, type_text, raw[key]) if key in raw else None


def _faults(
    reader: Reader, path: Path, raw: Any, registry: Mapping[str, type[Fault]] | None,
    backend: str | None,
) -> Any:
    if raw is None:
        return None
    names = reader.leaf(path, "list of strings", raw)
    if names is INVALID:
        return INVALID
    if not names:
        return reader.error(path, "list at least one fault (or leave 'faults' out: every fault)")
    problems = [(i, _refusal(name, registry or {}, backend)) for i, name in enumerate(names)]
    for i, problem in problems:
        if problem is not None and registry is not None:
            reader.error((*path, i), problem)
    if len(set(names)) != len(names):
        return reader.error(path, f"faults repeat: {show(raw)}")
    bad = registry is not None and any(problem for _, problem in problems)
    return INVALID if bad else names


def _refusal(name: str, registry: Mapping[str, type[Fault]], backend: str | None) -> str | None:
    """Why explore may not draw ``name``: an unknown fault, or one this pool cannot run."""
    if name not in registry:
        return f"unknown fault {name!r}{did_you_mean(name, registry)}"
    return backend_mismatch(name, registry[name], backend)


def _steps(reader: Reader, path: Path, raw: Any) -> Any:
    if isinstance(raw, int) and not isinstance(raw, bool):
        low = high = raw
    elif isinstance(raw, str) and (match := _RANGE_RE.match(raw)):
        low, high = int(match[1]), int(match[2])
    else:
        return reader.error(
            path, f"expected a number of steps (2) or a range (1..3), got {show(raw)}"
        )
    if not 1 <= low <= high:
        return reader.error(
            path, f"expected 1 <= A <= B in A..B (steps per schedule), got {show(raw)}"
        )
    return (low, high)


def _window(reader: Reader, path: Path, raw: Any, run: float | None) -> Any:
    if not isinstance(raw, list) or len(raw) != 2:
        return reader.error(
            path, f"expected [start, end], e.g. [10%, 70%] or [1s, 5s], got {show(raw)}"
        )
    bounds = [_bound(reader, (*path, i), value) for i, value in enumerate(raw)]
    if INVALID in bounds:
        return INVALID
    spec = ExploreSpec(window=(bounds[0], bounds[1]))
    start, end = spec.bounds(run if run is not None else 1.0)
    if start > end:
        return reader.error(path, f"the window starts after it ends: {show(raw)}")
    if run is not None and end >= run:
        return reader.error(
            (*path, 1),
            f"the window ends at {units.print_duration(end)}, not before the end of the run "
            f"({units.print_duration(run)})",
        )
    return spec.window


def _bound(reader: Reader, path: Path, raw: Any) -> Any:
    """``10%`` or a number in [0, 1] is a fraction of the run; ``2s`` an offset in seconds."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if not 0 <= raw <= 1:
            return reader.error(path, f"a bare number is a fraction of the run (0..1); got "
                                      f"{show(raw)} (write 2s for an offset)")
        return ("fraction", float(raw))
    if isinstance(raw, str) and raw.strip().endswith("%"):
        fraction = reader.check(path, units.parse_percent, raw)
        if fraction is not INVALID and not 0 <= fraction <= 1:
            return reader.error(path, f"expected a percentage in 0%..100%, got {show(raw)}")
        return INVALID if fraction is INVALID else ("fraction", fraction)
    seconds = reader.leaf(path, "duration", raw)
    return INVALID if seconds is INVALID else ("offset", seconds)
