"""Steps that may not overlap on one worker (docs/faults.md, "Overlapping faults on one worker").

Most worker-side effects compose (each step keeps its own under a token), but a worker's channel
holds one partition at a time. ``conflicts`` finds, before anything runs, pairs of steps of such
a fault (``Fault.one_per_worker``) whose time windows overlap and whose targets may share a
worker -- drawn targets (default, count, fraction, session) may always do so. Pure: the loader
reports each pair at the later step's location.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from chaospool.fault import Fault

__all__ = ("StepSpec", "conflicts", "message")


class StepSpec(Protocol):
    """The fields of ``chaospool._dsl.model.FaultStep`` that the check reads."""

    @property
    def fault(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def index(self) -> int: ...
    @property
    def duration(self) -> float | None: ...
    @property
    def params(self) -> Any: ...
    @property
    def target(self) -> Any: ...
    @property
    def injections(self) -> tuple[float, ...]: ...


def conflicts(
    steps: Sequence[StepSpec], registry: Mapping[str, type[Fault]] | Callable[[str], Any]
) -> Iterator[tuple[StepSpec, StepSpec]]:
    """Each pair (earlier, later in ``method``) that may overlap on a worker."""
    lookup = registry.get if isinstance(registry, Mapping) else registry
    exclusive = [s for s in steps if getattr(lookup(s.fault), "one_per_worker", False)]
    for i, first in enumerate(exclusive):
        for second in exclusive[i + 1:]:
            if first.fault == second.fault and _same_worker(first, second) and \
                    _same_time(first, second):
                yield first, second


def message(first: StepSpec, second: StepSpec) -> str:
    return (f"{second.fault} steps {first.name!r} (method[{first.index}]) and {second.name!r} "
            f"(method[{second.index}]) may act on the same worker at the same time, and a "
            f"worker holds one {second.fault} at a time: give them distinct workers "
            f"({{worker: N}}) or times that do not overlap")


def _window(step: StepSpec) -> float:
    duration = step.duration if step.duration is not None else getattr(step.params, "duration", 0)
    return float(duration or 0.0)


def _same_time(a: StepSpec, b: StepSpec) -> bool:
    wa, wb = _window(a), _window(b)
    return any((sa < tb + wb and tb < sa + wa) or sa == tb
               for sa in a.injections for tb in b.injections)


def _same_worker(a: StepSpec, b: StepSpec) -> bool:
    ka, kb = a.target.kind, b.target.kind
    if ka in ("worker", "workers") and kb in ("worker", "workers"):
        return bool(set(a.target.workers) & set(b.target.workers))
    return True  # "all", or a drawn target: may share a worker
