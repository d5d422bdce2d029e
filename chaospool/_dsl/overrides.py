"""``--set KEY=VALUE`` overrides, applied to the raw tree before validation.

``KEY`` is a dotted path (``pool.size``, ``load.clients``, ``method.0.at``; a number indexes a
list, also written ``method[0].at``). ``VALUE`` is read as YAML, so ``8`` is an integer, ``5s``
stays text for the unit parser and ``{worker: 1}`` is a mapping; a value starting with a
comparison operator (``>= 0.95``) is a tolerance and stays text. Values given in a Python
mapping are used as they are, except text, which is read as YAML like on the command line.

Every override is then validated like the file itself; its problems are located in the
argument: file ``--set``, line 1, column = where the key segment or the value starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaospool._dsl.reader import show
from chaospool._dsl.source import Loc, Path, Source, format_path, read_yaml
from chaospool.errors import ErrorLocation

__all__ = ("SET_FILE", "Overrides", "apply_overrides")

SET_FILE = "--set"

_SEGMENT = re.compile(r"\[([^\]]*)\]|([^.\[\]]*)")
_TOLERANCE_START = re.compile(r"\s*(<=|>=|==|!=|<|>)")

Overrides = Mapping[str, Any] | Sequence[str]


@dataclass(frozen=True)
class _Override:
    text: str  # the argument as given, "pool.size=8"
    segments: tuple[tuple[str, int], ...]  # each key segment and its 1-based column
    value: Any
    value_column: int
    value_source: Source | None  # positions inside a YAML value such as {worker: 1}


_FROM_TEXT: Any = object()  # marks an override whose value is read from its text


class _Error(Exception):
    def __init__(self, column: int, message: str, path: str = "") -> None:
        super().__init__(message)
        self.location = ErrorLocation(path, 1, column, message, SET_FILE)


def apply_overrides(source: Source, overrides: Overrides) -> list[ErrorLocation]:
    """Apply every override to ``source`` (data and locations); return the problems found."""
    errors: list[ErrorLocation] = []
    for text, value in _items(overrides):
        try:
            _apply(source, _parse(text, value))
        except _Error as error:
            errors.append(error.location)
    return errors


def _items(overrides: Overrides) -> Iterator[tuple[str, Any]]:
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            yield f"{key}={value}", value
    else:
        for text in overrides:
            yield text, _FROM_TEXT


def _parse(text: str, given: Any) -> _Override:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise _Error(1, f"expected KEY=VALUE (e.g. pool.size=8), got {text!r}")
    segments = _segments(key)
    value_column = len(key) + 2
    if given is not _FROM_TEXT and not isinstance(given, str):
        return _Override(text, tuple(segments), given, value_column, None)
    if _TOLERANCE_START.match(raw):
        # ">= 0.95" is not valid YAML (">" starts a folded block, "!" a tag): take it as text.
        return _Override(text, tuple(segments), raw.strip(), value_column, None)
    return _Override(text, tuple(segments), *_yaml_value(raw, value_column))


def _segments(key: str) -> list[tuple[str, int]]:
    """``method.0.at`` and ``method[0].at`` alike -> each segment with its 1-based column."""
    segments: list[tuple[str, int]] = []
    at = 0
    while at <= len(key):
        match = _SEGMENT.match(key, at)
        text = None if match is None else (match.group(1) if match.group(1) is not None
                                           else match.group(2))
        if match is None or text is None or not text.strip():
            raise _Error(at + 1 + (match is not None and match.group(1) is not None),
                         f"empty key segment in {key!r} (write method.0.at or method[0].at)")
        start = match.start(1) if match.group(1) is not None else match.start(2)
        segments.append((text.strip(), start + 1 + len(text) - len(text.lstrip())))
        at = match.end()
        if at < len(key) and key[at] == ".":
            at += 1
        elif at == len(key):
            break
        elif key[at] != "[":
            raise _Error(at + 1, f"unexpected {key[at]!r} in {key!r}")
    return segments


def _yaml_value(raw: str, column: int) -> tuple[Any, int, Source | None]:
    parsed, errors = read_yaml(raw, SET_FILE)
    if errors or parsed is None:
        first = errors[0]
        raise _Error(column + first.column - 1, first.message)
    return parsed.data, column, parsed


def _apply(source: Source, override: _Override) -> None:
    if source.data is None:
        source.data = {}
    container: Any = source.data
    path: Path = ()
    for depth, (segment, column) in enumerate(override.segments):
        last = depth == len(override.segments) - 1
        step = _step(container, segment, column, path)
        path = (*path, step)
        if last:
            container[step] = override.value
            _relocate(source, path, column, override)
        else:
            if isinstance(container, dict) and step not in container:
                following, following_column = override.segments[depth + 1]
                if following.isdigit():
                    raise _Error(
                        following_column,
                        f"{format_path(path)} does not exist: there is no item {following} to set",
                        format_path(path),
                    )
                container[step] = {}
                source.relocate(path, Loc(SET_FILE, 1, column), Loc(SET_FILE, 1, column))
            container = container[step]


def _step(container: Any, segment: str, column: int, path: Path) -> str | int:
    where = format_path(path) or "the experiment"
    if isinstance(container, dict):
        return segment
    if isinstance(container, list):
        if not segment.isdigit():
            raise _Error(
                column, f"{where} is a list: expected an index, got {segment!r}", format_path(path)
            )
        index = int(segment)
        if index >= len(container):
            raise _Error(
                column, f"{where} has {len(container)} item(s): no index {index}", format_path(path)
            )
        return index
    raise _Error(
        column,
        f"cannot set {segment!r} inside {where}: it is {show(container)}, not a mapping or a list",
        format_path(path),
    )


def _relocate(source: Source, path: Path, key_column: int, override: _Override) -> None:
    source.relocate(path, Loc(SET_FILE, 1, key_column), Loc(SET_FILE, 1, override.value_column))
    inner = override.value_source
    if inner is None:
        return
    shift = override.value_column - 1
    for table, target in ((inner.values, source.values), (inner.keys, source.keys)):
        for sub, loc in table.items():
            if sub:  # the value itself is already located at the value's column
                target[(*path, *sub)] = Loc(SET_FILE, 1, loc.column + shift)
