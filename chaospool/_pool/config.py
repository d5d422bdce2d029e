"""The pool's validated configuration (the keyword arguments of ``Pool``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# the one definition of the pool's options: defaults and the restart/health_check groups
from chaospool._options import DEFAULTS, flatten


def parse_size(value: int | float | str | None) -> int | None:
    """Bytes from ``300MB`` (10^6, as in the DSL), ``1.5GiB``, ``4096`` or None.

    The DSL's own parser, so ``Pool(max_memory="300MB")`` and ``max_memory: 300MB`` in an
    experiment mean the same number of bytes.
    """
    if value is None:
        return None
    # chaospool._units: the same parser the DSL uses, below both (docs/design.md)
    from chaospool import _units as units

    return units.parse_size(value)


def _positive(name: str, value: float, *, zero_ok: bool = False) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if value < 0 or (value == 0 and not zero_ok):
        raise ValueError(f"{name} must be {'>= 0' if zero_ok else '> 0'}, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class PoolConfig:
    worker: str
    size: int = DEFAULTS["size"]
    max_overflow: int = DEFAULTS["max_overflow"]
    strategy: str = DEFAULTS["strategy"]
    checkout_timeout: float = DEFAULTS["checkout_timeout"]
    request_timeout: float = DEFAULTS["request_timeout"]
    max_queue: int = DEFAULTS["max_queue"]
    max_restarts: int = DEFAULTS["max_restarts"]
    restart_within: float = DEFAULTS["restart_within"]
    max_memory: int | None = DEFAULTS["max_memory"]
    max_requests: int | None = DEFAULTS["max_requests"]
    overflow_idle: float = DEFAULTS["overflow_idle"]
    lazy: bool = DEFAULTS["lazy"]
    health_interval: float = DEFAULTS["health_interval"]  # 0 disables heartbeats
    health_timeout: float = DEFAULTS["health_timeout"]
    start_timeout: float = 15.0
    stop_grace: float = 2.0

    def __post_init__(self) -> None:
        if not isinstance(self.worker, str) or not self.worker:
            raise ValueError("worker must name an importable module (module or module:object)")
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"size must be an integer >= 1, not {self.size!r}")
        if not isinstance(self.max_overflow, int) or self.max_overflow < 0:
            raise ValueError(f"max_overflow must be an integer >= 0, not {self.max_overflow!r}")
        if self.strategy not in ("lifo", "fifo"):
            raise ValueError(f"strategy must be 'lifo' or 'fifo', not {self.strategy!r}")
        if not isinstance(self.max_queue, int) or self.max_queue < 0:
            raise ValueError(f"max_queue must be an integer >= 0, not {self.max_queue!r}")
        for name in ("checkout_timeout", "request_timeout", "start_timeout", "restart_within"):
            _positive(name, getattr(self, name))
        for name in ("overflow_idle", "health_interval", "health_timeout", "stop_grace"):
            _positive(name, getattr(self, name), zero_ok=True)
        if self.max_requests is not None and self.max_requests < 1:
            raise ValueError(f"max_requests must be >= 1, not {self.max_requests!r}")

    @property
    def slots(self) -> int:
        return self.size + self.max_overflow


def build_config(worker: str, **kw: Any) -> PoolConfig:
    """Normalise ``Pool``'s keyword arguments (nested restart / health_check mappings)."""
    health: Mapping[str, Any] | bool | None = kw.pop("health_check", None)
    # health_check=False: no heartbeats (an interval of 0); a mapping is one of the groups
    kw = flatten({**kw, "health_check": None if health is False else health})
    if health is False:
        kw["health_interval"] = 0.0
    try:
        kw["max_memory"] = parse_size(kw.get("max_memory"))
    except ValueError as exc:
        raise ValueError(f"max_memory: {exc}") from None
    return PoolConfig(worker=worker, **kw)
