"""``load()``: an experiment file or mapping -> a validated, frozen ``Experiment``.

Steps: read the source (YAML with positions, or a mapping), apply the overrides, then validate
every section against the key table (``model.KEYS``), the metric list and the fault registry.
Every problem is collected; if there is any, ``ExperimentError`` carries them all, sorted by
place.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import pathlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from chaospool._dsl.backends import read_ray
from chaospool._dsl.checks import (
    CommandProbe,
    check_args,
    check_clients,
    check_commands,
    check_sizes,
)
from chaospool._dsl.explore import read_explore
from chaospool._dsl.methods import MethodReader
from chaospool._dsl.model import (
    KEYS,
    METRICS,
    PHASES,
    Experiment,
    KeyDoc,
    LoadSpec,
    MixEntry,
    Phase,
    PoolSpec,
    Tolerance,
)
from chaospool._dsl.overrides import SET_FILE, Overrides, apply_overrides
from chaospool._dsl.reader import INVALID, Reader, show
from chaospool._dsl.search_path import on_sys_path, search_dirs
from chaospool._dsl.source import Path, Source, from_mapping, read_yaml
from chaospool._dsl.tolerances import read_tolerance
from chaospool._options import flatten
from chaospool.errors import ErrorLocation, ExperimentError
from chaospool.fault import Fault

__all__ = ("Registry", "RegistryFactory", "load")

FaultRegistry = Mapping[str, type[Fault]]
RegistryFactory = Callable[[tuple[str, ...], pathlib.Path], FaultRegistry]
Registry = FaultRegistry | RegistryFactory

_WORKER_RE = r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)?"


def load(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    overrides: Overrides = (),
    registry: Registry,
    commands: CommandProbe | None = None,
) -> Experiment:
    """Read, override and validate an experiment; raise ExperimentError with every problem.

    ``registry`` maps fault names to fault classes, or is a callable
    ``(plugins, base_dir) -> mapping`` called with the experiment's validated ``plugins:`` list,
    so the faults those plugins provide can be validated too. ``commands`` (when given) imports
    the worker module and lists its commands: each command the experiment names is checked.
    """
    opened = _open(source)
    reader = Reader(opened.source)
    reader.errors.extend(apply_overrides(opened.source, overrides))
    experiment = _Builder(reader, registry, opened, commands).build()
    if reader.errors or experiment is None:
        raise ExperimentError(sorted(reader.errors, key=_place))
    return experiment


def _place(error: ErrorLocation) -> tuple[bool, str, int, int]:
    return (error.file == SET_FILE, error.file, error.line, error.column)


@dataclass(frozen=True)
class _Opened:
    """A read source and what identifies it (``title``: the default title)."""

    source: Source
    path: str | None
    sha256: str
    base_dir: str
    title: str


def _open(source: str | os.PathLike[str] | Mapping[str, Any]) -> _Opened:
    if isinstance(source, Mapping):
        return _Opened(
            from_mapping(source), None, _mapping_sha256(source), os.getcwd(), "experiment"
        )
    path = pathlib.Path(source)
    name = os.fspath(source)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except OSError as error:
        raise _fail(name, f"cannot read the experiment: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise _fail(name, f"the experiment is not UTF-8 text: {error.reason}") from None
    read, errors = read_yaml(text, name)
    if read is None:
        raise ExperimentError(errors)
    base_dir = str(path.resolve().parent)
    return _Opened(read, name, hashlib.sha256(raw).hexdigest(), base_dir, path.stem)


def _fail(file: str, message: str) -> ExperimentError:
    return ExperimentError([ErrorLocation("", 1, 1, message, file)])


def _mapping_sha256(mapping: Mapping[str, Any]) -> str:
    try:
        text = json.dumps(mapping, sort_keys=True, separators=(",", ":"), default=str)
    except TypeError:  # keys of mixed types cannot be sorted: fall back to their repr
        text = repr(mapping)
    return hashlib.sha256(text.encode()).hexdigest()


def _name(doc: KeyDoc) -> str:
    return doc.path.rpartition(".")[2]


def _children(doc_path: str) -> list[KeyDoc]:
    return [doc for doc in KEYS if doc.path.rpartition(".")[0] == doc_path and "<" not in doc.path]


def _all_valid(value: Any) -> bool:
    if value is INVALID:
        return False
    if isinstance(value, dict):
        return all(_all_valid(v) for v in value.values())
    if isinstance(value, tuple | list):
        return all(_all_valid(v) for v in value)
    return True


Special = Mapping[str, Callable[[Path, Any], Any]]


class _Builder:
    def __init__(
        self, reader: Reader, registry: Registry, opened: _Opened, commands: CommandProbe | None
    ) -> None:
        self.reader = reader
        self.registry = registry
        self.opened = opened
        self.commands = commands
        self.faults: FaultRegistry = {}

    def section(self, path: Path, doc_path: str, raw: Any, special: Special | None = None) -> Any:
        """Read a mapping whose keys are described under ``doc_path`` in the key table.

        Absent keys take their table default (parsed like a written value); ``special`` maps
        keys that need more than a leaf check to their reader.
        """
        docs = _children(doc_path)
        mapping = self.reader.mapping(path, {} if raw is None else raw, [_name(d) for d in docs])
        if mapping is None:
            return INVALID
        return {_name(doc): self._key(path, doc, mapping, special or {}) for doc in docs}

    def _key(self, path: Path, doc: KeyDoc, mapping: Mapping[Any, Any], special: Special) -> Any:
        name = _name(doc)
        if name not in mapping and doc.required:
            return self.reader.error(path, f"missing required key {name!r}")
        if name not in mapping and doc.default is None:
            return None  # absent, and absent means something (see the key's description)
        value = mapping[name] if name in mapping else copy.deepcopy(doc.default)
        if name in special:
            return special[name]((*path, name), value)
        if doc.type == "mapping":
            return self.section((*path, name), doc.path, value)
        return self.reader.leaf((*path, name), doc.type, value)

    # -- the experiment ------------------------------------------------------------------------

    def build(self) -> Experiment | None:
        root = self.reader.source.data
        if root is None:
            self.reader.error(
                (),
                "the experiment is empty: it needs at least 'version: 1' "
                "and 'pool: {worker: MODULE}'",
            )
            return None
        special: Special = {
            "version": self._version,
            "pool": self._pool,
            "load": self._load,
            "steady_state": self._steady_state,
            "method": lambda _path, raw: raw,  # read below, once pool, duration, plugins are
            "explore": lambda _path, raw: raw,  # read below, with the registry (docs/explore.md)
            "pythonpath": self._pythonpath,
        }
        top = self.section((), "", root, special)
        if top is INVALID:
            return None
        top["method"] = self._method(("method",), top["method"], top)
        check_sizes(self.reader, top["pool"], top["method"])
        if self.commands is not None:
            with on_sys_path(self._search_dirs(top)):  # the child importing it inherits it
                check_commands(self.reader, top, self.commands, self.faults)
        pool = top["pool"] if isinstance(top["pool"], PoolSpec) else None
        top["explore"] = read_explore(
            self.reader, ("explore",), top["explore"], self.faults or None, top["duration"],
            pool.backend if pool is not None else None,
        )
        return self._experiment(top) if _all_valid(top) else None

    def _experiment(self, top: Mapping[str, Any]) -> Experiment:
        return Experiment(
            version=top["version"],
            title=top["title"] or self.opened.title,
            description=top["description"],
            seed=top["seed"],
            duration=top["duration"],
            plugins=top["plugins"],
            pool=top["pool"],
            load=top["load"],
            steady_state=top["steady_state"],
            method=top["method"],
            path=self.opened.path,
            sha256=self.opened.sha256,
            base_dir=self.opened.base_dir,
            explore=top["explore"],
            pythonpath=top["pythonpath"],
        )

    def _version(self, path: Path, raw: Any) -> Any:
        version = self.reader.leaf(path, "int", raw)
        if version is not INVALID and version != 1:
            return self.reader.error(
                path, f"unsupported version {show(raw)}: this chaospool reads version 1"
            )
        return version

    def _pythonpath(self, path: Path, raw: Any) -> Any:
        entries = self.reader.leaf(path, "list of strings", raw)
        if entries is INVALID:
            return INVALID
        for i, entry in enumerate(entries):
            full = pathlib.Path(self.opened.base_dir, entry).expanduser()
            if not full.is_dir():
                self.reader.error((*path, i), f"no such directory: {full} (pythonpath entries "
                                              "are relative to the experiment file)")
        return tuple(entries)

    def _search_dirs(self, top: Mapping[str, Any]) -> tuple[str, ...]:
        """Where the worker and module-name plugins are imported from (docs/dsl.md)."""
        def valid(key: str, default: Any) -> Any:
            return default if top.get(key, INVALID) is INVALID else top[key]

        pool = valid("pool", None)
        return search_dirs(self.opened.base_dir, pool.worker if pool is not None else None,
                           valid("plugins", ()), valid("pythonpath", ()))

    # -- pool and load -------------------------------------------------------------------------

    def _pool(self, path: Path, raw: Any) -> PoolSpec | Any:
        special: Special = {"worker": self._worker, "backend": self._backend}
        values = self.section(path, "pool", raw, special)
        if values is not INVALID and values["backend"] == "ray":
            values["ray"] = read_ray(self.reader, (*path, "ray"), values["ray"])
        elif values is not INVALID and values["ray"] is not None:
            self.reader.error((*path, "ray"), "ray settings need 'backend: ray'")
            return INVALID
        if not _all_valid(values):
            return INVALID
        return PoolSpec(**flatten(values))

    def _backend(self, path: Path, raw: Any) -> Any:
        backend = self.reader.leaf(path, "process | ray", raw)
        if backend == "ray":
            from chaospool._ray import require_ray
            from chaospool.errors import ChaospoolError

            try:
                require_ray()
            except ChaospoolError as exc:
                return self.reader.error(path, str(exc))
        return backend

    def _worker(self, path: Path, raw: Any) -> Any:
        worker = self.reader.leaf(path, "string", raw)
        if worker is not INVALID and not re.fullmatch(_WORKER_RE, worker):
            return self.reader.error(
                path, f"expected an importable module (or module:object), got {show(worker)}"
            )
        return worker

    def _load(self, path: Path, raw: Any) -> LoadSpec | Any:
        values = self.section(path, "load", raw, {"mix": self._mix})
        if values is INVALID or check_clients(self.reader, values["clients"]) is INVALID:
            return INVALID
        if not _all_valid(values):
            return INVALID
        return LoadSpec(**values)  # the section's keys are LoadSpec's fields

    def _mix(self, path: Path, raw: Any) -> Any:
        items = self.reader.sequence(path, raw)
        if items is None:
            return INVALID
        if not items:
            return self.reader.error(path, "the mix needs at least one command")
        entries = [self.section((*path, i), "load.mix[]", item) for i, item in enumerate(items)]
        if not _all_valid(entries) or not all([  # a list: every bad entry is reported
            check_args(self.reader, (*path, i, "args"), e["args"]) for i, e in enumerate(entries)
        ]):
            return INVALID
        return tuple(MixEntry(e["command"], e["weight"], e["args"]) for e in entries)

    # -- steady state and method ---------------------------------------------------------------

    def _steady_state(self, path: Path, raw: Any) -> Any:
        mapping = self.reader.mapping(
            path, {} if raw is None else raw, [*METRICS, *PHASES], what="metric"
        )
        if mapping is None:
            return INVALID
        checks: list[Any] = []
        for key, value in mapping.items():
            if key in PHASES:
                checks.extend(self._phase((*path, key), cast(Phase, key), value))
            elif key in METRICS:
                checks.append(read_tolerance(self.reader, (*path, key), key, "overall", value))
        return tuple(checks)

    def _phase(self, path: Path, phase: Phase, raw: Any) -> list[Tolerance | Any]:
        mapping = self.reader.mapping(path, {} if raw is None else raw, METRICS, what="metric")
        if mapping is None:
            return [INVALID]
        return [
            read_tolerance(self.reader, (*path, metric), metric, phase, value)
            for metric, value in mapping.items()
            if metric in METRICS
        ]

    def _method(self, path: Path, raw: Any, top: Mapping[str, Any]) -> Any:
        with on_sys_path(self._search_dirs(top)):  # module-name plugins import from there
            registry = self._registry(top["plugins"])
        self.faults = registry or {}
        pool = top["pool"] if isinstance(top["pool"], PoolSpec) else None
        reader = MethodReader(self.reader, registry, pool, top["duration"])
        return reader.read(path, [] if raw is None else raw)

    def _registry(self, plugins: Any) -> FaultRegistry | None:
        """The fault registry; None when it cannot be had (the error is recorded)."""
        if isinstance(self.registry, Mapping):
            return self.registry
        if plugins is INVALID:
            return None
        try:
            return self.registry(plugins, pathlib.Path(self.opened.base_dir))
        except Exception as error:  # any plugin failure is an input error
            self._plugin_error(plugins, error)
            return None

    def _plugin_error(self, plugins: tuple[str, ...], error: Exception) -> None:
        # PluginLoadError names the failing spec in ``.plugin``; locate the error at it.
        name = getattr(error, "plugin", None)
        path: Path = ("plugins", plugins.index(name)) if name in plugins else ("plugins",)
        message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
        label = f"plugin {name!r}" if name else "the plugins"
        self.reader.error(path, f"cannot load {label}: {message}")
