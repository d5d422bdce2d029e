"""The ``ray:`` settings of a pool (docs/ray.md), validated without importing Ray."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ("HealthSettings", "RaySettings", "parse_settings")

PLACEMENTS = ("spread", "pack")
_HOST_PORT = re.compile(r"^(?:ray://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")
KEYS = ("address", "nodes", "placement", "health_check")
HEALTH_KEYS = ("period", "timeout", "failure_threshold", "initial_delay")


@dataclass(frozen=True)
class HealthSettings:
    """Ray's node health checks for a local cluster chaospool starts (seconds).

    Ray's defaults declare a dead node only after 15 s or more; these find one in ~1.5 s on an
    idle machine. A loaded machine may need more slack (a false death is a real node loss).
    """

    period: float = 0.5
    timeout: float = 1.0
    failure_threshold: int = 3
    initial_delay: float = 1.0

    def system_config(self) -> dict[str, int]:
        return {
            "health_check_initial_delay_ms": round(self.initial_delay * 1000),
            "health_check_period_ms": round(self.period * 1000),
            "health_check_timeout_ms": round(self.timeout * 1000),
            "health_check_failure_threshold": self.failure_threshold,
        }


@dataclass(frozen=True)
class RaySettings:
    """``address``: ``local`` starts a local multi-node cluster on 127.0.0.1; ``auto`` or
    ``HOST:PORT`` connects to an existing one. ``nodes`` (local only) counts the head."""

    address: str = "local"
    nodes: int = 3
    placement: str = "spread"
    health: HealthSettings = HealthSettings()

    @property
    def local(self) -> bool:
        return self.address == "local"

    def to_dict(self) -> dict[str, Any]:
        h = self.health
        return {"address": self.address, "nodes": self.nodes, "placement": self.placement,
                "health_check": {"period": h.period, "timeout": h.timeout,
                                 "failure_threshold": h.failure_threshold,
                                 "initial_delay": h.initial_delay}}


def _number(name: str, value: Any, *, minimum: float = 0.0) -> float:
    if isinstance(value, str):
        from chaospool._units import parse_duration  # durations as in the DSL: "500ms"

        value = parse_duration(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"ray.health_check.{name} must be a duration, not {value!r}")
    if value <= minimum:
        raise ValueError(f"ray.health_check.{name} must be > {minimum:g}, not {value!r}")
    return float(value)


def _health(raw: Any) -> HealthSettings:
    if raw is None:
        return HealthSettings()
    if not isinstance(raw, Mapping):
        raise ValueError(f"ray.health_check must be a mapping, not {raw!r}")
    unknown = sorted(set(raw) - set(HEALTH_KEYS))
    if unknown:
        raise ValueError(f"unknown ray.health_check keys {unknown}; use {', '.join(HEALTH_KEYS)}")
    threshold = raw.get("failure_threshold", 3)
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise ValueError(f"ray.health_check.failure_threshold must be an int >= 1, "
                         f"not {threshold!r}")
    return HealthSettings(
        period=_number("period", raw.get("period", 0.5)),
        timeout=_number("timeout", raw.get("timeout", 1.0)),
        failure_threshold=threshold,
        initial_delay=_number("initial_delay", raw.get("initial_delay", 1.0)),
    )


def check_address(address: Any) -> str:
    if not isinstance(address, str) or not (
        address in ("local", "auto") or _HOST_PORT.match(address)
    ):
        raise ValueError(f"ray.address must be local, auto or HOST:PORT, not {address!r}")
    return address


def check_nodes(nodes: Any) -> int:
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
        raise ValueError(f"ray.nodes must be an int >= 1 (the head counts), not {nodes!r}")
    return nodes


def check_placement(placement: Any) -> str:
    if placement not in PLACEMENTS:
        raise ValueError(f"ray.placement must be spread or pack, not {placement!r}")
    return str(placement)


def parse_settings(raw: Mapping[str, Any] | RaySettings | None) -> RaySettings:
    """``Pool(..., ray={...})``'s mapping (or settings) -> RaySettings; ValueError if invalid."""
    if isinstance(raw, RaySettings):
        return raw
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"ray must be a mapping such as {{'address': 'local'}}, not {raw!r}")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ValueError(f"unknown ray keys {unknown}; use {', '.join(KEYS)}")
    return RaySettings(
        address=check_address(raw.get("address", "local")),
        nodes=check_nodes(raw.get("nodes", 3)),
        placement=check_placement(raw.get("placement", "spread")),
        health=_health(raw.get("health_check")),
    )
