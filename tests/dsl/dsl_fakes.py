"""A tiny fault registry for the DSL tests: Params dataclasses of every supported shape."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from chaospool.fault import Duration, Fault, FaultContext, Rate, Size


class Crash(Fault):
    """Kills the target."""

    name: ClassVar[str] = "crash"

    @dataclasses.dataclass
    class Params:
        signal: str | int = "SIGKILL"
        mode: Literal["kill", "close"] = "kill"

    async def inject(self, ctx: FaultContext) -> None:
        raise NotImplementedError("the DSL tests never run faults")


class Slow(Fault):
    """Slows the target."""

    name: ClassVar[str] = "slow"

    @dataclasses.dataclass
    class Params:
        latency: Duration = 0.2
        jitter: Duration = 0.0
        duration: Duration = 5.0

        def __post_init__(self) -> None:
            if self.jitter > self.latency:
                raise ValueError("jitter must not exceed latency")


class Leak(Fault):
    """Leaks memory."""

    name: ClassVar[str] = "leak"

    @dataclasses.dataclass
    class Params:
        rate: Rate = 50e6
        limit: Size = 500_000_000
        amount: Size | None = None
        duration: float = 10.0


class Herd(Fault):
    """A pool-level fault with container parameters and a required one."""

    name: ClassVar[str] = "herd"
    pool_level: ClassVar[bool] = True

    @dataclasses.dataclass
    class Params:
        command: str
        requests: int = 1000
        args: dict[str, Any] = dataclasses.field(default_factory=dict)
        tags: list[str] = dataclasses.field(default_factory=list)
        window: tuple[float, ...] = ()
        ratio: float = 0.5
        loud: bool = False
        extra: Any = None


REGISTRY: Mapping[str, type[Fault]] = {f.name: f for f in (Crash, Slow, Leak, Herd)}

def experiment(**sections: Any) -> dict[str, Any]:
    """The minimal experiment with ``sections`` merged over it (a fresh dict each time)."""
    base: dict[str, Any] = {"version": 1, "pool": {"worker": "chaospool.workers.demo"}}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base
