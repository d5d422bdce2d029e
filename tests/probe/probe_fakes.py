"""Test doubles for the probe: a pool that fails on demand, a hand-driven clock, a load spec."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel


@dataclass(frozen=True)
class Mix:
    command: str
    weight: float = 1.0
    args: Any = None


@dataclass(frozen=True)
class Load:
    clients: int = 1
    rate: float | None = None
    think: float = 0.0
    sessions: int | None = None
    retries: int = 0
    mix: tuple[Mix, ...] = (Mix("ping"),)
    consistency: bool = False


@dataclass
class Call:
    number: int
    command: str
    args: Any
    session: str | None
    retries: int


# A behaviour decides what call ``n`` gets: an exception instance is raised, the sentinel
# ``REPLY`` means "answer normally" (echo -> its args, anything else -> "pong"), any other
# value is returned as the reply.
REPLY = object()
Behaviour = Callable[[Call], Any]


class FakePool:
    """``execute`` as ``chaospool.Pool`` has it, failing on demand.

    ``gate``: when set, every call waits on it (an operation stays in flight until the test
    releases it); ``entered`` counts calls that reached the gate.
    """

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or (lambda call: REPLY)
        self.calls: list[Call] = []
        self.gate: anyio.Event | None = None
        self.entered = 0

    async def execute(
        self,
        command: str,
        args: Any = None,
        *,
        session: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  reason: mirrors Pool.execute
        retries: int = 0,
    ) -> Any:
        call = Call(len(self.calls), command, args, session, retries)
        self.calls.append(call)
        if self.gate is not None:
            self.entered += 1
            await self.gate.wait()
        else:
            await anyio.lowlevel.checkpoint()
        result = self.behaviour(call)
        if isinstance(result, BaseException):
            raise result
        if result is REPLY:
            return args if command == "echo" else "pong"
        return result


class StepClock:
    """Advances ``step`` seconds each time it is read: deterministic time for the probe."""

    def __init__(self, step: float = 0.001) -> None:
        self.step = step
        self.now = 0.0

    def __call__(self) -> float:
        value = self.now
        self.now += self.step
        return value


class ManualClock:
    """Reads whatever the test set."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class RealClock:
    """Seconds since it was made (for the open loop, whose schedule follows real time)."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.start
