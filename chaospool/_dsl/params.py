"""A fault's own parameters: YAML values checked against its ``Params`` dataclass.

Supported annotations: ``int``, ``float``, ``str``, ``bool``, ``Literal[...]``, ``dict``/``Mapping``
(``[K, V]``), ``list``/``Sequence`` (``[T]``), ``tuple[T, ...]``, unions and ``Optional``, ``Any``,
and the unit markers of ``chaospool.fault`` (``Duration``, ``Size``, ``Rate``) whose YAML text is
parsed with ``units``. Any other class is accepted when the value is already an instance of it.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from chaospool._dsl import units
from chaospool._dsl.reader import did_you_mean, show
from chaospool.fault import Fault, Unit

__all__ = ("ParamSpec", "build_params", "coerce", "describe", "param_specs")

_UNIT_PARSERS: dict[str, Callable[[Any], Any]] = {
    "duration": units.parse_duration,
    "size": units.parse_size,
    "rate": units.parse_rate,
}


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One field of a fault's Params: its name, resolved annotation and whether it is required."""

    name: str
    annotation: Any
    required: bool


def param_specs(fault: type[Fault]) -> dict[str, ParamSpec]:
    """The init fields of ``fault.Params`` with their resolved annotations."""
    params = fault.Params
    try:
        hints = typing.get_type_hints(params, include_extras=True)
    except (NameError, TypeError):
        # A plugin's annotation we cannot resolve: its values are passed through unchecked.
        hints = {}
    return {
        f.name: ParamSpec(f.name, hints.get(f.name, Any), _required(f))
        for f in dataclasses.fields(params)
        if f.init
    }


def _required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def coerce(annotation: Any, value: Any) -> Any:
    """Check ``value`` against ``annotation`` and convert units; ValueError says what is wrong."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _annotated(annotation, value)
    if annotation is Any or annotation is object:
        return value
    if origin in (Union, types.UnionType):
        return _union(annotation, value)
    if origin is Literal:
        return _literal(get_args(annotation), value)
    if origin is not None:
        return _generic(origin, get_args(annotation), value)
    if annotation is type(None):
        if value is None:
            return None
        raise ValueError(f"expected null, got {show(value)}")
    return _plain(annotation, value)


def _annotated(annotation: Any, value: Any) -> Any:
    base, *extras = get_args(annotation)
    unit = next((extra for extra in extras if isinstance(extra, Unit)), None)
    if unit is None:
        return coerce(base, value)
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a {unit.kind}, got {show(value)}")
    return _UNIT_PARSERS[unit.kind](value)


def _union(annotation: Any, value: Any) -> Any:
    members = get_args(annotation)
    if value is None and type(None) in members:
        return None
    for member in members:
        if member is type(None):
            continue
        try:
            return coerce(member, value)
        except ValueError:
            continue
    raise ValueError(f"expected {describe(annotation)}, got {show(value)}")


def _literal(choices: tuple[Any, ...], value: Any) -> Any:
    for choice in choices:
        if value == choice and type(value) is type(choice):
            return choice
    hint = did_you_mean(value, [str(c) for c in choices]) if isinstance(value, str) else ""
    if "did you mean" not in hint:
        hint = ""  # the choices are listed once, right here
    listed = ", ".join(show(c) for c in choices)
    raise ValueError(f"expected one of {listed}, got {show(value)}{hint}")


def _generic(origin: Any, args: tuple[Any, ...], value: Any) -> Any:
    if origin in (dict, collections.abc.Mapping, collections.abc.MutableMapping):
        if not isinstance(value, dict):
            raise ValueError(f"expected a mapping, got {show(value)}")
        key_type, value_type = args if len(args) == 2 else (Any, Any)
        return {coerce(key_type, k): coerce(value_type, v) for k, v in value.items()}
    if origin in (list, collections.abc.Sequence, collections.abc.MutableSequence):
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {show(value)}")
        return [coerce(args[0] if args else Any, item) for item in value]
    if origin is tuple:
        return _tuple(args, value)
    return _plain(origin, value)


def _tuple(args: tuple[Any, ...], value: Any) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {show(value)}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(coerce(args[0], item) for item in value)
    if len(args) != len(value):
        raise ValueError(f"expected a list of {len(args)} items, got {show(value)}")
    return tuple(coerce(a, item) for a, item in zip(args, value, strict=True))


def _plain(annotation: Any, value: Any) -> Any:
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif annotation in (dict, list, tuple):
        return _generic(annotation, (), value)
    elif isinstance(annotation, type) and isinstance(value, annotation):
        return value
    elif not isinstance(annotation, type):
        return value  # a typing construct we do not model: pass the plain data through
    raise ValueError(f"expected {describe(annotation)}, got {show(value)}")


_NAMES: dict[Any, str] = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true or false",
    dict: "a mapping",
    list: "a list",
    tuple: "a list",
    type(None): "null",
}


def describe(annotation: Any) -> str:
    """A type in words, for messages (``a duration or null``)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extras = get_args(annotation)
        unit = next((e for e in extras if isinstance(e, Unit)), None)
        return f"a {unit.kind}" if unit else describe(base)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(member) for member in get_args(annotation))
    if origin is Literal:
        return "one of " + ", ".join(show(c) for c in get_args(annotation))
    if origin is not None:
        mappings = (dict, collections.abc.Mapping, collections.abc.MutableMapping)
        return "a mapping" if origin in mappings else "a list"
    name = getattr(annotation, "__name__", str(annotation))
    return _NAMES.get(annotation, f"a {name}")


def build_params(fault: type[Fault], values: Mapping[str, Any]) -> Any:
    """``fault.Params(**values)``; a ValueError/TypeError from its ``__post_init__`` is re-raised
    as ValueError so the loader can locate it."""
    try:
        return fault.Params(**values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"invalid parameters for fault {fault.name!r}: {error}") from error
