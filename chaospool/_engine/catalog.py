"""The fault catalogue ``chaospool faults`` prints: every fault with its parameter defaults."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from chaospool._dsl.params import describe
from chaospool._dsl.units import print_duration, print_rate, print_size
from chaospool._plugins import fault_registry, fault_source, plugin_manager
from chaospool.fault import Fault, Unit

__all__ = (
    "display_defaults", "display_params", "fault_catalog", "param_choices", "param_defaults",
    "param_types", "param_units", "pool_scope",
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def param_defaults(cls: type[Fault]) -> dict[str, Any]:
    """``{param: default}``; a parameter without a default shows ``None`` (it is required)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls.Params):
        if f.default is not dataclasses.MISSING:
            out[f.name] = _jsonable(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = _jsonable(f.default_factory())
        else:
            out[f.name] = None
    return out


def _print_byte_rate(value: float) -> str:
    return print_rate(value, size=True)


def _unit_of(hint: Any) -> str | None:
    for meta in getattr(hint, "__metadata__", ()):
        if isinstance(meta, Unit):
            return meta.kind
    return None


def display_defaults(cls: type[Fault]) -> dict[str, str]:
    """Defaults as a user writes them in YAML (``200ms``, ``500MB``, ``50MB/s``)."""
    hints = typing.get_type_hints(cls.Params, include_extras=True)
    printers: dict[str, Callable[[Any], str]] = {
        "duration": print_duration, "size": print_size, "rate": _print_byte_rate}
    required = {f.name for f in dataclasses.fields(cls.Params)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    out: dict[str, str] = {}
    for name, value in param_defaults(cls).items():
        printer = printers.get(_unit_of(_strip_optional(hints.get(name))) or "")
        if name in required:
            out[name] = "(required)"
        elif value is None:
            out[name] = "(auto)"
        elif printer is not None and isinstance(value, int | float):
            out[name] = printer(value)
        else:
            out[name] = str(value)
    return out


_UNITS = {"duration": "seconds", "size": "bytes", "rate": "bytes/s"}


def param_types(cls: type[Fault]) -> dict[str, str]:
    """``{param: type in words}`` (``a duration``, ``one of 'kill', 'close'``)."""
    hints = typing.get_type_hints(cls.Params, include_extras=True)
    return {f.name: describe(hints.get(f.name, Any)).removeprefix("a ").removeprefix("an ")
            for f in dataclasses.fields(cls.Params)}


def param_units(cls: type[Fault]) -> dict[str, str | None]:
    """``{param: unit of its JSON default}``: seconds, bytes, bytes/s, or None (no unit)."""
    hints = typing.get_type_hints(cls.Params, include_extras=True)
    return {f.name: _UNITS.get(_unit_of(_strip_optional(hints.get(f.name))) or "")
            for f in dataclasses.fields(cls.Params)}


def param_choices(cls: type[Fault]) -> dict[str, list[Any]]:
    hints = typing.get_type_hints(cls.Params, include_extras=True)
    out: dict[str, list[Any]] = {}
    for f in dataclasses.fields(cls.Params):
        hint = _strip_optional(hints.get(f.name))
        if typing.get_origin(hint) is typing.Literal:
            out[f.name] = list(typing.get_args(hint))
    return out


def _strip_optional(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    is_union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    return args[0] if is_union and len(args) == 1 else hint


def pool_scope(cls: type[Fault]) -> tuple[bool, dict[str, list[Any]] | None]:
    """(acts on the whole pool with its defaults, ``{param: [choices that make it act on the
    pool]}`` when that depends on a parameter)."""
    try:
        default = cls.Params()
    except TypeError:  # a required parameter: only pool_level can tell
        return cls.pool_level, None
    for name, choices in param_choices(cls).items():
        pooled = [c for c in choices
                  if cls.acts_on_pool(dataclasses.replace(default, **{name: c}))]
        if pooled and len(pooled) < len(choices):
            return cls.acts_on_pool(default), {name: pooled}
    return cls.acts_on_pool(default), None


def display_params(cls: type[Fault], values: dict[str, Any]) -> dict[str, str]:
    """A step's parameters as a user writes them (``200ms``, not ``0.2``)."""
    hints = typing.get_type_hints(cls.Params, include_extras=True)
    printers: dict[str, Callable[[Any], str]] = {
        "duration": print_duration, "size": print_size, "rate": _print_byte_rate}
    out: dict[str, str] = {}
    for name, value in values.items():
        printer = printers.get(_unit_of(_strip_optional(hints.get(name))) or "")
        if printer is not None and isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = printer(value)
        else:
            plain = isinstance(value, str) and value and " " not in value
            out[name] = value if plain else repr(value) if isinstance(value, str) else str(value)
    return out


def fault_catalog(plugins: Sequence[str] = ()) -> list[dict[str, Any]]:
    pm = plugin_manager(list(plugins))
    registry = fault_registry(pm)
    return [_entry(name, cls, fault_source(pm, cls)) for name, cls in sorted(registry.items())]


def _entry(name: str, cls: type[Fault], source: str) -> dict[str, Any]:
    pool_level, pool_when = pool_scope(cls)
    return {
        "name": name,
        "description": cls.description(),
        "params": param_defaults(cls),
        "source": source,
        # beyond {name, description, params, source}: what a tool needs to write a step
        "types": param_types(cls),
        "units": param_units(cls),
        "choices": param_choices(cls),
        "pool_level": pool_level,
        "pool_level_when": pool_when,
        "backends": list(cls.backends) if cls.backends is not None else None,  # None: any
        "display": display_defaults(cls),
    }
