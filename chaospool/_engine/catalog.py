"""The fault catalogue ``chaospool faults`` prints: every fault with its parameter defaults."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Sequence
from typing import Any

from chaospool._dsl.units import print_duration, print_rate, print_size
from chaospool._plugins import fault_registry, fault_source, plugin_manager
from chaospool.fault import Fault, Unit

__all__ = ("display_defaults", "fault_catalog", "param_defaults")


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
        printer = printers.get(_unit_of(hints.get(name)) or "")
        if name in required:
            out[name] = "(required)"
        elif value is None:
            out[name] = "(auto)"
        elif printer is not None and isinstance(value, int | float):
            out[name] = printer(value)
        else:
            out[name] = str(value)
    return out


def fault_catalog(plugins: Sequence[str] = ()) -> list[dict[str, Any]]:
    pm = plugin_manager(list(plugins))
    registry = fault_registry(pm)
    return [
        {
            "name": name,
            "description": cls.description(),
            "params": param_defaults(cls),
            "source": fault_source(pm, cls),
            "display": display_defaults(cls),
        }
        for name, cls in sorted(registry.items())
    ]
