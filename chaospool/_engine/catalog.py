"""The fault catalogue ``chaospool faults`` prints: every fault with its parameter defaults."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from chaospool._plugins import fault_registry, fault_source, plugin_manager
from chaospool.fault import Fault

__all__ = ("fault_catalog", "param_defaults")


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


def fault_catalog(plugins: Sequence[str] = ()) -> list[dict[str, Any]]:
    pm = plugin_manager(list(plugins))
    registry = fault_registry(pm)
    return [
        {
            "name": name,
            "description": cls.description(),
            "params": param_defaults(cls),
            "source": fault_source(pm, cls),
        }
        for name, cls in sorted(registry.items())
    ]
