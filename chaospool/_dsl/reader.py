"""Reading raw values into typed ones while collecting every problem, each with its location.

A ``Reader`` never stops at the first problem: a bad value is recorded as an ``ErrorLocation``
and replaced by ``INVALID`` so validation goes on and the user sees every error at once.

Leaf types are named by the ``type`` text of the DSL's key table (``model.KEYS``), for example
``int >= 1``, ``duration > 0``, ``size | null`` or ``lifo | fifo``: the table that documents a
key is also what checks it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from chaospool._dsl import units
from chaospool._dsl.source import Path, Source, format_path
from chaospool.errors import ErrorLocation

__all__ = ("INVALID", "Reader", "did_you_mean", "parse_leaf", "show")


class _Invalid:
    """Stands for a value that failed validation (its error is already recorded)."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = _Invalid()


def show(value: Any) -> str:
    """A value as the user would recognise it in a message (YAML-ish, shortened)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'size'?)`` or `` (expected one of: a, b)`` for an unknown name."""
    options = sorted(set(choices))
    close = _close(word, options)
    if close:
        return f" (did you mean {close!r}?)"
    return f" (expected one of: {', '.join(options)})" if options else ""


def _close(word: object, options: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {show(value)}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {show(value)}")
    return float(value)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {show(value)}")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {show(value)}")
    return value


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings, got {show(value)}")
    return tuple(value)


def _unit(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or value is None:
            raise ValueError(f"expected {parse.__name__.removeprefix('parse_')}, got {show(value)}")
        return parse(value)

    return check


_BASES: dict[str, Callable[[Any], Any]] = {
    "int": _integer,
    "number": _number,
    "string": _string,
    "bool": _boolean,
    "duration": _unit(units.parse_duration),
    "size": _unit(units.parse_size),
    "rate": _unit(units.parse_rate),
    "list of strings": _strings,
    "any": lambda value: value,
}
_TYPE_RE = re.compile(r"^(?P<base>[a-z ]+?)(?: (?P<op>>=|>) (?P<bound>\d+))?$")


def parse_leaf(type_text: str, value: Any) -> Any:
    """Check and convert ``value`` for a key whose table type is ``type_text``; ValueError."""
    alternatives = [alt.strip() for alt in type_text.split("|")]
    if value is None and "null" in alternatives:
        return None
    kinds = [alt for alt in alternatives if alt != "null"]
    match = _TYPE_RE.match(kinds[0])
    if len(kinds) > 1 or match is None or match["base"] not in _BASES:
        return _choice(kinds, value)
    result = _BASES[match["base"]](value)
    if match["op"] and not units.OPERATORS[match["op"]](result, float(match["bound"])):
        raise ValueError(f"expected {kinds[0]}, got {show(value)}")
    return result


def _choice(choices: list[str], value: Any) -> str:
    if value not in choices or not isinstance(value, str):
        hint = _close(value, choices) if isinstance(value, str) else None
        suggestion = f" (did you mean {hint!r}?)" if hint else ""
        raise ValueError(f"expected one of {', '.join(choices)}, got {show(value)}{suggestion}")
    return value


class Reader:
    """Collects located errors while the loader reads a Source."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.errors: list[ErrorLocation] = []

    def error(self, path: Path, message: str, *, key: bool = False) -> _Invalid:
        loc = self.source.where(path, key=key)
        where = format_path(path)
        self.errors.append(ErrorLocation(where, loc.line, loc.column, message, loc.file))
        return INVALID

    def check(self, path: Path, parse: Callable[[Any], Any], value: Any) -> Any:
        """``parse(value)``, or INVALID with the ValueError's message recorded at ``path``."""
        try:
            return parse(value)
        except ValueError as error:
            return self.error(path, str(error))

    def leaf(self, path: Path, type_text: str, value: Any) -> Any:
        return self.check(path, lambda v: parse_leaf(type_text, v), value)

    def mapping(
        self, path: Path, value: Any, allowed: Iterable[str], *, what: str = "key"
    ) -> Mapping[Any, Any] | None:
        """``value`` if it is a mapping (else None); each key outside ``allowed`` is an error."""
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping, got {show(value)}")
            return None
        allowed = tuple(allowed)
        for key in value:
            if key not in allowed:
                self.error(
                    (*path, key),
                    f"unknown {what} {show(key)}" + did_you_mean(key, allowed),
                    key=True,
                )
        return value

    def sequence(self, path: Path, value: Any) -> list[Any] | None:
        """``value`` if it is a list, else None (the error recorded)."""
        if not isinstance(value, list):
            self.error(path, f"expected a list, got {show(value)}")
            return None
        return value
