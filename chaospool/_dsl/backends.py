"""The ``pool.ray`` section (docs/ray.md): its keys are read like any section's (units
parsed, unknown keys refused), then turned into the backend's settings here."""

from __future__ import annotations

from typing import Any

from chaospool._dsl.reader import INVALID, Reader
from chaospool._dsl.source import Path

__all__ = ("read_ray",)


def _valid(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_valid(v) for v in value.values())
    return value is not INVALID


def read_ray(reader: Reader, path: Path, values: Any) -> Any:
    """``RaySettings`` from the read ``ray:`` values (None: absent, the defaults), or INVALID."""
    from chaospool._ray.settings import RaySettings, check_address, parse_settings

    if values is None:
        return RaySettings()
    if not _valid(values):
        return INVALID
    if reader.check((*path, "address"), check_address, values["address"]) is INVALID:
        return INVALID
    return reader.check(path, parse_settings, values)
