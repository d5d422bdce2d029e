"""The ``method:`` list: fault steps, their targets and each fault's own parameters.

A step's common keys (``fault name at duration repeat every target``) are described in the key
table; every other key is a parameter of the fault, checked against its ``Params`` dataclass.
A ``duration`` sets both the step's duration and the fault's ``duration`` parameter, if it has
one; without it the parameter's default is the step's duration (docs/plugins.md).

Default names: the fault's name; when several steps use the same fault, ``fault#N`` with N
counting that fault's steps from 1 in method order (``port_crash#1``, ``port_crash#2``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from chaospool._dsl import overlap, units
from chaospool._dsl.model import KEYS, FaultStep, PoolSpec, Target
from chaospool._dsl.params import build_params, coerce, param_specs
from chaospool._dsl.reader import INVALID, Reader, did_you_mean, parse_leaf, show
from chaospool._dsl.source import Path
from chaospool.fault import Fault

__all__ = ("COMMON_KEYS", "MethodReader", "backend_mismatch")

_STEP_DOCS = {
    doc.path.removeprefix("method[]."): doc
    for doc in KEYS
    if doc.path.startswith("method[].") and "<" not in doc.path
}
COMMON_KEYS: tuple[str, ...] = tuple(_STEP_DOCS)
_OWN_READER = ("target", "every")  # common keys read by their own method below
_TARGET_KINDS = ("worker", "workers", "count", "fraction", "session", "node")


def backend_mismatch(name: str, fault: type[Fault], backend: str | None) -> str | None:
    """Why ``fault`` cannot act on a pool of ``backend`` (None: it can, or the backend is not
    known because ``pool:`` was invalid): node faults need a Ray cluster (docs/ray.md)."""
    wanted = getattr(fault, "backends", None)
    if backend is None or wanted is None or backend in wanted:
        return None
    needs = " or ".join(f"'pool.backend: {b}'" for b in wanted)
    return (f"fault {name!r} cannot act on this pool (backend {backend!r}): it needs {needs}"
            + (" (docs/ray.md)" if "ray" in wanted else ""))


class MethodReader:
    """Reads the method list; needs the registry, the pool (slot count) and the run duration.

    ``registry``/``pool``/``duration`` may be missing (None / INVALID) when their own section
    was invalid: the checks that need them are then skipped, the rest still run.
    """

    def __init__(
        self,
        reader: Reader,
        registry: Mapping[str, type[Fault]] | None,
        pool: PoolSpec | None,
        duration: Any,
    ) -> None:
        self.reader = reader
        self.registry = registry
        self.slots = pool.slots if pool is not None else None
        self.backend = pool.backend if pool is not None else None
        self.duration = duration if isinstance(duration, float) else None

    def read(self, path: Path, raw: Any) -> Any:
        items = self.reader.sequence(path, raw)
        if items is None:
            return INVALID
        steps = [self._step((*path, i), i, item) for i, item in enumerate(items)]
        if any(step is INVALID for step in steps):
            return INVALID
        return self._exclusive(path, self._named(path, steps))

    def _exclusive(self, path: Path, steps: Any) -> Any:
        """Steps of a one-per-worker fault that may overlap: refused, naming both."""
        if steps is INVALID or self.registry is None:
            return steps
        for first, second in overlap.conflicts(steps, self.registry):
            return self.reader.error((*path, second.index), overlap.message(first, second))
        return steps

    def _named(self, path: Path, steps: list[dict[str, Any]]) -> Any:
        uses = Counter(step["fault"] for step in steps)
        seen: Counter[str] = Counter()
        named: dict[str, int] = {}
        result = []
        for step in steps:
            seen[step["fault"]] += 1
            fault = step["fault"]
            name = step["name"] or (fault if uses[fault] == 1 else f"{fault}#{seen[fault]}")
            if name in named:
                return self.reader.error(
                    (*path, step["index"], "name"),
                    f"step name {name!r} is already used by method[{named[name]}]",
                )
            named[name] = step["index"]
            result.append(FaultStep(**{**step, "name": name}))
        return tuple(result)

    # -- one step ------------------------------------------------------------------------------

    def _step(self, path: Path, index: int, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return self.reader.error(
                path, f"expected a fault step (a mapping with 'fault'), got {show(raw)}"
            )
        fault = self._fault(path, raw)
        common = {
            key: self._common(path, key, raw) for key in COMMON_KEYS if key not in _OWN_READER
        }
        common["target"] = self._target((*path, "target"), raw.get("target"))
        every = self._every(path, raw, common["repeat"])
        params = self._params(path, fault, raw, common["duration"])
        self._timing(path, common["at"], common["repeat"], every)
        values = {**common, "every": every, "params": params, "index": index}
        if fault is None or not all(v is not INVALID for v in values.values()):
            return INVALID
        duration = common["duration"]
        if duration is None and params is not None and hasattr(params, "duration"):
            duration = _seconds(params.duration)
        return {**values, "fault": raw["fault"], "duration": duration}

    def _fault(self, path: Path, raw: Mapping[str, Any]) -> type[Fault] | None:
        if "fault" not in raw:
            self.reader.error(path, "missing required key 'fault' (which fault to inject)")
            return None
        name = raw["fault"]
        if not isinstance(name, str):
            self.reader.error((*path, "fault"), f"expected a fault name, got {show(name)}")
            return None
        if self.registry is None:
            return None
        if name not in self.registry:
            self.reader.error(
                (*path, "fault"),
                f"unknown fault {name!r}" + did_you_mean(name, self.registry)
                + "; a plugin's fault needs the plugin loaded: `plugins: [my_faults.py]` in the "
                "experiment or `--plugin my_faults.py` (see `chaospool faults`)",
            )
            return None
        cls = self.registry[name]
        problem = backend_mismatch(name, cls, self.backend)
        if problem is not None:
            self.reader.error((*path, "fault"), problem)  # the params are still checked
        return cls

    def _common(self, path: Path, key: str, raw: Mapping[str, Any]) -> Any:
        doc = _STEP_DOCS[key]
        if key == "fault":
            return raw.get("fault")
        if key not in raw:
            return (
                None if key in ("name", "duration", "every") else parse_leaf(doc.type, doc.default)
            )
        value = self.reader.leaf((*path, key), doc.type, raw[key])
        if key == "name" and value == "":
            return self.reader.error((*path, key), "a step name cannot be empty")
        return value

    def _every(self, path: Path, raw: Mapping[str, Any], repeat: Any) -> Any:
        every = self._common(path, "every", raw)
        if every is None:
            if isinstance(repeat, int) and repeat > 1:
                return self.reader.error(
                    path, f"repeat is {repeat}: 'every' (the time between repetitions) is required"
                )
            return 0.0
        return every

    def _timing(self, path: Path, at: Any, repeat: Any, every: Any) -> None:
        if self.duration is None or INVALID in (at, repeat, every):
            return
        last = at + (repeat - 1) * every
        if last >= self.duration:
            which = "starts" if repeat == 1 else "is injected for the last time"
            self.reader.error(
                (*path, "at"),
                f"the step {which} at {units.print_duration(last)}, "
                f"not before the end of the run (duration: "
                f"{units.print_duration(self.duration)})",
            )

    # -- parameters ----------------------------------------------------------------------------

    def _params(
        self, path: Path, fault: type[Fault] | None, raw: Mapping[str, Any], duration: Any
    ) -> Any:
        if fault is None:
            return None
        specs = param_specs(fault)
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key in COMMON_KEYS:
                continue
            if key not in specs:
                self.reader.error(
                    (*path, key),
                    f"unknown parameter {show(key)} of fault "
                    f"{fault.name!r}" + did_you_mean(key, [*specs, *COMMON_KEYS]),
                    key=True,
                )
                continue
            values[key] = self.reader.check((*path, key), _coercer(specs[key].annotation), value)
        if "duration" in specs and duration is not None and duration is not INVALID:
            values["duration"] = self.reader.check(
                (*path, "duration"), _coercer(specs["duration"].annotation), duration
            )
        missing = [name for name, spec in specs.items() if spec.required and name not in values]
        for name in missing:
            self.reader.error(path, f"missing parameter {name!r} of fault {fault.name!r}")
        if missing or INVALID in values.values():
            return INVALID
        return self.reader.check(path, lambda v: build_params(fault, v), values)

    # -- targets -------------------------------------------------------------------------------

    def _target(self, path: Path, raw: Any) -> Any:
        if raw is None:
            return Target("default")
        if raw == "all":
            return Target("all")
        if not isinstance(raw, dict):
            hint = did_you_mean(raw, ["all"]) if isinstance(raw, str) else ""
            return self.reader.error(
                path,
                f"expected 'all' or a mapping such as {{worker: 0}}, "
                f"{{count: 2}}, {{fraction: 0.5}}, got {show(raw)}{hint}",
            )
        mapping = self.reader.mapping(path, raw, _TARGET_KINDS, what="target kind")
        if mapping is None or any(key not in _TARGET_KINDS for key in mapping):
            return INVALID
        if len(mapping) != 1:
            return self.reader.error(
                path, f"a target has exactly one of {', '.join(_TARGET_KINDS)}; got {show(raw)}"
            )
        kind, value = next(iter(mapping.items()))
        reader = getattr(self, f"_target_{kind}")
        return reader((*path, kind), value)

    def _slot(self, path: Path, value: Any) -> Any:
        index = self.reader.leaf(path, "int >= 0", value)
        if index is not INVALID and self.slots is not None and index >= self.slots:
            return self.reader.error(
                path,
                f"worker {index} does not exist: the pool has "
                f"{self.slots} slot(s), 0..{self.slots - 1} "
                f"(size + max_overflow)",
            )
        return index

    def _target_worker(self, path: Path, value: Any) -> Any:
        index = self._slot(path, value)
        return INVALID if index is INVALID else Target("worker", workers=(index,))

    def _target_workers(self, path: Path, value: Any) -> Any:
        if not isinstance(value, list) or not value:
            return self.reader.error(
                path, f"expected a non-empty list of worker indexes, got {show(value)}"
            )
        indexes = [self._slot((*path, i), v) for i, v in enumerate(value)]
        if INVALID in indexes:
            return INVALID
        if len(set(indexes)) != len(indexes):
            return self.reader.error(path, f"worker indexes repeat: {show(value)}")
        return Target("workers", workers=tuple(indexes))

    def _target_count(self, path: Path, value: Any) -> Any:
        count = self.reader.leaf(path, "int >= 1", value)
        if count is not INVALID and self.slots is not None and count > self.slots:
            return self.reader.error(
                path, f"count {count} exceeds the pool's {self.slots} slot(s) (size + max_overflow)"
            )
        return INVALID if count is INVALID else Target("count", count=count)

    def _target_fraction(self, path: Path, value: Any) -> Any:
        fraction = self.reader.leaf(path, "number", value)
        if fraction is not INVALID and not 0 < fraction <= 1:
            return self.reader.error(path, f"expected a fraction in (0, 1], got {show(value)}")
        return INVALID if fraction is INVALID else Target("fraction", fraction=fraction)

    def _target_node(self, path: Path, value: Any) -> Any:
        node = self.reader.leaf(path, "int >= 0", value)
        if node is not INVALID and self.backend not in (None, "ray"):
            return self.reader.error(
                path, "a node target needs a multi-node pool: set 'pool.backend: ray'")
        return INVALID if node is INVALID else Target("node", node=node)

    def _target_session(self, path: Path, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            return self.reader.error(path, f"expected a session id, got {show(value)}")
        return Target("session", session=str(value))


def _coercer(annotation: Any) -> Callable[[Any], Any]:
    return lambda value: coerce(annotation, value)


def _seconds(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    return float(value) if isinstance(value, int | float) else units.parse_duration(value)
