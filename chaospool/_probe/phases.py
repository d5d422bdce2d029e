"""Phases known live: which phase an operation belongs to, decided when it is recorded.

``before`` runs to the first injection, ``during`` to the last revert, ``after`` to the end, and
an operation belongs to the phase in which it *started* (docs/reports.md). The engine tells the
clock about each injection and revert as it happens, on the run's clock, so an operation's
phase is known when it ends -- the probe keeps no row per operation to decide it later.

One case is not known at once: an operation that started after every fault so far had been
reverted is ``after`` only if no step is still to come. Such operations go to a provisional
slot (:data:`PENDING`), folded into ``during`` when another fault is injected and reverted,
or into ``after`` when the last step settles (or the summary closes the run). Folding is done
at once, by the clock calling ``on_fold``: two events in a row must not fold in one go.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ("AFTER", "BEFORE", "DURING", "PENDING", "PhaseClock")

BEFORE, DURING, AFTER, PENDING = 0, 1, 2, 3


class PhaseClock:
    """Phase boundaries, fed with ``injected``/``reverted``/``settled`` by the engine.

    ``steps`` is how many steps the schedule has; a step *settles* once it has been reverted,
    or ended without injecting (its error fails the run). ``on_fold(phase)`` is called when the
    provisional slot belongs to ``phase`` (the aggregator moves it there).
    """

    __slots__ = ("_active", "_open", "inject", "last_revert", "on_change", "on_fold", "revert")

    def __init__(self, steps: int) -> None:
        self.inject = math.inf  # first injection, once known
        self.last_revert = -math.inf  # latest revert so far
        self.revert = math.inf  # the final last revert, once every step settled
        self._active = 0
        self._open = steps
        self.on_fold: Callable[[int], None] | None = None
        self.on_change: Callable[[], None] | None = None  # after every injected/reverted/...

    @classmethod
    def fixed(cls, inject: float | None, revert: float | None) -> PhaseClock:
        """Boundaries known in advance (a finished run's, for replays and tests)."""
        clock = cls(0)
        if inject is not None:
            clock.inject = max(0.0, inject)
            clock.revert = math.inf if revert is None else max(clock.inject, revert)
        return clock

    def phase_of(self, start: float) -> int:
        """The phase of an operation that started at ``start`` (and ends now)."""
        if start < self.inject:
            return BEFORE
        if start < self.revert:
            if self._open <= 0 or self._active or start < self.last_revert:
                return DURING
            return PENDING
        return AFTER

    def lane(self) -> tuple[float, int]:
        """``(lo, phase)``: every operation started at or after ``lo`` has this phase until
        the clock changes (``on_change``). ``lo`` is the latest boundary known: past it each
        comparison of ``phase_of`` with a boundary comes out the same, and the rest is the
        clock's state. The aggregator's hot path uses it (docs/design.md, "Performance")."""
        bounds = [b for b in (self.inject, self.last_revert, self.revert) if math.isfinite(b)]
        lo = max(bounds, default=-math.inf)
        return lo, self.phase_of(lo)

    def injected(self, t: float) -> None:
        self.inject = min(self.inject, t)
        self._active += 1
        self._changed()

    def reverted(self, t: float) -> None:
        self._active = max(0, self._active - 1)
        if t > self.last_revert:
            # operations waiting for "after" started before this fault ended: they were during
            self.last_revert = t
            self._fold(DURING)
        self._changed()

    def settled(self) -> None:
        """A step is over (reverted, or never injected)."""
        self._open -= 1
        if self._open <= 0 and math.isfinite(self.inject) and not self._active:
            self.revert = max(self.inject, self.last_revert)
            self._fold(AFTER)
        self._changed()

    def close(self, inject: float | None, revert: float | None) -> None:
        """The run is over: the boundaries are the fault windows' (``revert`` None: a fault was
        never reverted, "during" lasts to the end)."""
        if inject is None:
            return
        self._fold(AFTER if revert is not None and revert <= self.last_revert else DURING)
        self._open = 0
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _fold(self, where: int) -> None:
        if self.on_fold is not None:
            self.on_fold(where)
