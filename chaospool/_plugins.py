"""The plugin manager: discovery, the fault registry and fault-tolerant hook calls.

Plugins come from four places, registered in this order (so built-ins win a name clash and a
plugin that repeats a built-in fault's name is the one reported):

1. the built-ins -- ``chaospool._faults`` (the seven faults) and ``chaospool._report.builtin``
   (the reporters), registered through the very hooks a third-party plugin uses;
2. the ``chaospool`` entry-point group of installed distributions;
3. ``--plugin SPEC`` and an experiment's ``plugins:`` list: a module name, or a path to a ``.py``
   file (relative to ``base_dir``: the experiment's directory, else the working directory).

Every failure -- an import error, pluggy refusing a hook implementation, an unknown ``chaospool_``
hook (a typo), a spec that does not exist, a bad fault class -- raises :class:`PluginLoadError`
naming the plugin.  At run time the engine calls hooks through :class:`Hooks`, which runs each
implementation on its own and *collects* a plugin's exception instead of raising it: a broken
observer must never stop an experiment half-way or keep a fault from being reverted.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from chaospool import hookspecs
from chaospool._dsl.search_path import module_dirs, on_sys_path
from chaospool.errors import PluginLoadError
from chaospool.fault import Fault
from chaospool.hookspecs import Reporter

__all__ = (
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "FaultInfo",
    "HookError",
    "Hooks",
    "PluginLoadError",
    "describe_faults",
    "fault_infos",
    "fault_registry",
    "fault_source",
    "load_plugin",
    "load_plugins",
    "plugin_manager",
    "reporters",
)

BUILTIN_PLUGINS = ("chaospool._faults", "chaospool._report.builtin")
ENTRY_POINT_GROUP = hookspecs.PROJECT
# File plugins are imported under this prefix so that they never shadow a real top-level module.
FILE_MODULE_PREFIX = "chaospool_plugins"
# Keys a fault step owns; a Params field with one of these names could never be set.
_COMMON_KEYS = frozenset({"fault", "name", "at", "repeat", "every", "target"})
# Notification hooks: called one implementation at a time, errors collected (see Hooks).
_NOTIFY_HOOKS = frozenset(
    {
        "chaospool_experiment_start",
        "chaospool_experiment_end",
        "chaospool_before_fault",
        "chaospool_after_fault",
        "chaospool_pool_event",
    }
)
_FAULT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


# --------------------------------------------------------------------------------- manager


def plugin_manager(specs: Sequence[str] = (), base_dir: Path | None = None) -> pluggy.PluginManager:
    """A plugin manager with the built-ins, the entry-point plugins and ``specs`` loaded."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    _register_builtins(pm)
    _load_entry_points(pm)
    load_plugins(pm, specs, base_dir)
    return pm


def load_plugins(
    pm: pluggy.PluginManager, specs: Iterable[str], base_dir: Path | str | None = None
) -> list[str]:
    """Load each spec into ``pm``; return the names they are registered under, in order.

    Loading the same module or file twice is a no-op (the first registration stands).
    """
    return [load_plugin(pm, spec, base_dir) for spec in specs]


def load_plugin(pm: pluggy.PluginManager, spec: str, base_dir: Path | str | None = None) -> str:
    """Import one plugin (module name or ``.py`` path) and register it; return its name."""
    if not spec or not spec.strip():
        raise PluginLoadError(spec, "empty plugin spec: give a module name or a path to a .py file")
    if _is_module_name(spec):
        return _register(pm, _import_module(spec, base_dir), spec)
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = Path(base_dir or Path.cwd()) / path
    module = _import_file(spec, path.resolve())
    return _register(pm, module, module.__name__)


def _is_module_name(spec: str) -> bool:
    return not spec.endswith(".py") and all(part.isidentifier() for part in spec.split("."))


def _register_builtins(pm: pluggy.PluginManager) -> None:
    for name in BUILTIN_PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # Tolerated only while the built-in is absent from this tree; a built-in that exists
            # but fails to import is a bug and must be loud.
            if exc.name is not None and name.startswith(exc.name):
                continue
            raise PluginLoadError(name, f"built-in failed to import: {_describe(exc)}") from exc
        if getattr(module, "__file__", None) is None:
            continue  # an empty directory (namespace package): the built-in is not written yet
        _register(pm, module, name)


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    # Our own loop instead of pm.load_setuptools_entrypoints: a failure must name its plugin.
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # reason: any import-time error of third-party code
            raise PluginLoadError(
                ep.name, f"entry point {ep.value!r} failed to import: {_describe(exc)}"
            ) from exc
        _register(pm, plugin, ep.name)


def _import_module(spec: str, base_dir: Path | str | None) -> ModuleType:
    try:  # the experiment's directory first, as for pool.worker, only for the import
        with on_sys_path(module_dirs(spec, base_dir)):
            return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (spec == exc.name or spec.startswith(exc.name + ".")):
            hint = _did_you_mean(spec + ".py", Path(base_dir or Path.cwd()))
            raise PluginLoadError(
                spec, f"no module named {exc.name!r}{hint} (a file spec must end in .py)"
            ) from exc
        raise PluginLoadError(spec, f"failed to import: {_describe(exc)}") from exc
    except Exception as exc:  # reason: any import-time error of third-party code
        raise PluginLoadError(spec, f"failed to import: {_describe(exc)}") from exc


def _import_file(spec: str, path: Path) -> ModuleType:
    if not path.is_file():
        if not path.parent.is_dir():
            raise PluginLoadError(
                spec, f"no such file: {path} (directory {path.parent} is missing)"
            )
        raise PluginLoadError(spec, f"no such file: {path}{_did_you_mean(path.name, path.parent)}")
    name = _file_module_name(path)
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise PluginLoadError(spec, f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    # Registered before executing: dataclasses and pickling look the module up by name.
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # reason: any import-time error of third-party code
        del sys.modules[name]
        raise PluginLoadError(spec, f"failed to import: {_describe(exc)}") from exc
    return module


def _file_module_name(path: Path) -> str:
    """``chaospool_plugins.<stem>``; a different file with the same stem gets a path hash."""
    stem = re.sub(r"\W", "_", path.stem)
    name = f"{FILE_MODULE_PREFIX}.{stem}"
    existing = sys.modules.get(name)
    if existing is None or getattr(existing, "__file__", None) == str(path):
        return name
    return f"{name}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"


def _did_you_mean(name: str, directory: Path) -> str:
    try:
        candidates = sorted(p.name for p in directory.glob("*.py"))
    except OSError:
        return ""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe(exc: BaseException) -> str:
    """``"Type: message (at file:line)"`` -- where in the plugin it went wrong."""
    text = f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "importlib" not in f.filename and "pluggy" not in f.filename]
    if own and not isinstance(exc, SyntaxError):  # a SyntaxError already names its line
        text += f" (at {own[-1].filename}:{own[-1].lineno})"
    return text


# ------------------------------------------------------------------------ registration


def _register(pm: pluggy.PluginManager, plugin: Any, name: str) -> str:
    if pm.is_registered(plugin):
        return pm.get_name(plugin) or name
    if pm.has_plugin(name):
        raise PluginLoadError(name, "another plugin is already registered under this name")
    _check_unmarked(plugin, name)
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginLoadError(name, f"invalid hook implementation: {exc}") from exc
    except ValueError as exc:
        raise PluginLoadError(name, f"cannot register: {exc}") from exc
    try:
        _check_impls(pm, plugin, name)
    except PluginLoadError:
        pm.unregister(plugin)
        raise
    return name


def _hook_names() -> list[str]:
    return sorted(n for n in dir(hookspecs) if n.startswith("chaospool_"))


def _check_unmarked(plugin: Any, name: str) -> None:
    """A function named like a hook but lacking ``@hookimpl`` is silently ignored by pluggy."""
    for hook in _hook_names():
        fn = getattr(plugin, hook, None)
        if callable(fn) and not hasattr(fn, f"{hookspecs.PROJECT}_impl"):
            raise PluginLoadError(
                name, f"{hook} is not marked with @chaospool.hookimpl, so it would never be called"
            )


def _check_impls(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    for caller in pm.get_hookcallers(plugin) or []:
        impls = [i for i in caller.get_hookimpls() if i.plugin is plugin]
        if not caller.has_spec() and not all(i.optionalhook for i in impls):
            close = difflib.get_close_matches(caller.name, _hook_names(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise PluginLoadError(name, f"unknown hook {caller.name!r}{hint}")
        if caller.name in _NOTIFY_HOOKS and any(i.wrapper or i.hookwrapper for i in impls):
            raise PluginLoadError(
                name, f"{caller.name} is a notification hook: wrappers are not supported"
            )


# ------------------------------------------------------------------------ fault registry


@dataclass(frozen=True)
class FaultInfo:
    """A registered fault class and where it came from (``"builtin"`` or a module name)."""

    cls: type[Fault]
    source: str

    @property
    def name(self) -> str:
        return self.cls.name

    def describe(self) -> dict[str, Any]:
        """The ``chaospool faults --json`` entry: name, description, params, source."""
        return {
            "name": self.cls.name,
            "description": self.cls.description(),
            "params": {f.name: _jsonable(_default(f)) for f in dataclasses.fields(self.cls.Params)},
            "source": self.source,
        }


def fault_infos(pm: pluggy.PluginManager) -> dict[str, FaultInfo]:
    """Every fault, validated, by name, in registration order (built-ins first)."""
    infos: dict[str, FaultInfo] = {}
    for impl in pm.hook.chaospool_register_faults.get_hookimpls():
        source = _source(impl)
        for cls in _call_register(impl, "chaospool_register_faults", "Fault classes"):
            _validate_fault(cls, impl.plugin_name)
            clash = infos.get(cls.name)
            if clash is not None:
                raise PluginLoadError(
                    impl.plugin_name,
                    f"fault {cls.name!r} is already provided by {clash.source}; rename it",
                )
            infos[cls.name] = FaultInfo(cls, source)
    return infos


def fault_registry(pm: pluggy.PluginManager) -> dict[str, type[Fault]]:
    """Fault name -> fault class, for the DSL loader and the engine."""
    return {name: info.cls for name, info in fault_infos(pm).items()}


def fault_source(pm: pluggy.PluginManager, cls: type[Fault]) -> str:
    """Where a registered fault class came from: ``"builtin"`` or its plugin's module name."""
    info = fault_infos(pm).get(cls.name)
    if info is None or info.cls is not cls:
        raise KeyError(f"fault class {cls.__qualname__} is not registered with this manager")
    return info.source


def describe_faults(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """The ``chaospool faults --json`` array, sorted by fault name."""
    return [info.describe() for _, info in sorted(fault_infos(pm).items())]


def _source(impl: pluggy.HookImpl) -> str:
    if impl.plugin_name in BUILTIN_PLUGINS:
        return "builtin"
    module = getattr(impl.plugin, "__name__", None)
    return module if isinstance(impl.plugin, ModuleType) and module else impl.plugin_name


def _call_register(impl: pluggy.HookImpl, hook: str, what: str) -> list[Any]:
    try:
        result = impl.function()
    except Exception as exc:  # reason: third-party code; reported with the plugin's name
        raise PluginLoadError(impl.plugin_name, f"{hook} raised {_describe(exc)}") from exc
    if result is None:
        return []
    if isinstance(result, (str, bytes)) or not isinstance(result, Iterable):
        raise PluginLoadError(
            impl.plugin_name, f"{hook} must return a list of {what}, not {result!r}"
        )
    return list(result)


def _validate_fault(cls: Any, plugin: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Fault)):
        raise PluginLoadError(plugin, f"{cls!r} is not a subclass of chaospool.Fault")
    where = f"fault class {cls.__qualname__}"
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _FAULT_NAME.fullmatch(name):
        raise PluginLoadError(
            plugin, f"{where} needs a name (letters, digits, _ . -), got {name!r}"
        )
    params = getattr(cls, "Params", None)
    if not (isinstance(params, type) and dataclasses.is_dataclass(params)):
        raise PluginLoadError(plugin, f"{where}: Params must be a @dataclasses.dataclass class")
    clashes = sorted(_COMMON_KEYS & {f.name for f in dataclasses.fields(params)})
    if clashes:
        raise PluginLoadError(
            plugin, f"{where}: Params field(s) {clashes} clash with a fault step's common keys"
        )
    for method in ("inject", "revert"):
        if not inspect.iscoroutinefunction(getattr(cls, method)):
            raise PluginLoadError(plugin, f"{where}: {method} must be an async def method")
    if cls.inject is Fault.inject:
        raise PluginLoadError(plugin, f"{where} does not implement inject")


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None  # a required parameter


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


# ----------------------------------------------------------------------------- reporters


def reporters(pm: pluggy.PluginManager) -> dict[str, Reporter]:
    """Reporter name -> reporter, validated, in registration order (built-ins first).

    A reporter needs a ``name`` (text) and a callable ``write``; a name already taken (by a
    built-in or another plugin) is refused like a fault's, so ``--report NAME`` is never
    ambiguous.
    """
    found: dict[str, Reporter] = {}
    for impl in pm.hook.chaospool_register_reporters.get_hookimpls():
        for reporter in _call_register(impl, "chaospool_register_reporters", "reporters"):
            _add_reporter(found, reporter, impl.plugin_name)
    return found


def _add_reporter(found: dict[str, Reporter], reporter: Any, plugin: str) -> None:
    name = getattr(reporter, "name", None)
    if not isinstance(name, str) or not name or not callable(getattr(reporter, "write", None)):
        raise PluginLoadError(
            plugin, f"{reporter!r} is not a reporter (needs a name and write(journal, path))"
        )
    if name in found:
        raise PluginLoadError(plugin, f"reporter {name!r} is already registered; rename it")
    found[name] = reporter


# -------------------------------------------------------------------------- hook calls


@dataclass
class HookError:
    """A plugin raised inside a notification hook. ``count``: how often (same plugin, hook)."""

    plugin: str
    hook: str
    error: str  # "Type: message"
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        times = f" ({self.count} times)" if self.count > 1 else ""
        return f"plugin {self.plugin!r} raised in {self.hook}: {self.error}{times}"


class Hooks:
    """Calls the notification hooks for the engine; never raises a plugin's ``Exception``.

    Each implementation runs on its own (in pluggy's call order), so one failing plugin neither
    hides the others nor interrupts the engine; its error lands in :attr:`errors` (one entry per
    plugin and hook, with a count) for the engine to put in the journal.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm
        self._errors: dict[tuple[str, str], HookError] = {}

    @property
    def errors(self) -> list[HookError]:
        return list(self._errors.values())

    def experiment_start(self, experiment: Any, seed: int) -> None:
        self._notify("chaospool_experiment_start", experiment=experiment, seed=seed)

    def experiment_end(self, experiment: Any, journal: dict[str, Any]) -> None:
        self._notify("chaospool_experiment_end", experiment=experiment, journal=journal)

    def before_fault(self, step: Any, ctx: Any) -> None:
        self._notify("chaospool_before_fault", step=step, ctx=ctx)

    def after_fault(self, step: Any, ctx: Any, record: dict[str, Any]) -> None:
        self._notify("chaospool_after_fault", step=step, ctx=ctx, record=record)

    def pool_event_callback(self) -> Callable[[Any], None] | None:
        """A callback for ``pool.subscribe``, or None when no plugin listens (the hot path)."""
        impls = self._impls("chaospool_pool_event")
        if not impls:
            return None

        def on_event(event: Any) -> None:
            for impl in impls:
                self._call(impl, "chaospool_pool_event", {"event": event})

        return on_event

    def subscribe_pool(self, pool: Any) -> Callable[[], None]:
        """Subscribe the pool-event hook to ``pool`` if a plugin listens; return unsubscribe."""
        callback = self.pool_event_callback()
        if callback is None:
            return _nothing
        unsubscribe: Callable[[], None] = pool.subscribe(callback)
        return unsubscribe

    def _impls(self, hook: str) -> list[pluggy.HookImpl]:
        caller: pluggy.HookCaller = getattr(self._pm.hook, hook)
        return list(reversed(caller.get_hookimpls()))  # pluggy calls the list back to front

    def _notify(self, hook: str, **kwargs: Any) -> None:
        for impl in self._impls(hook):
            self._call(impl, hook, kwargs)

    def _call(self, impl: pluggy.HookImpl, hook: str, kwargs: dict[str, Any]) -> None:
        try:
            impl.function(*(kwargs[name] for name in impl.argnames))
        except Exception as exc:  # reason: a plugin must never break the run or its rollback
            self._record(impl.plugin_name, hook, exc)

    def _record(self, plugin: str, hook: str, exc: Exception) -> None:
        known = self._errors.get((plugin, hook))
        if known is not None:
            known.count += 1
            return
        self._errors[(plugin, hook)] = HookError(plugin, hook, f"{type(exc).__name__}: {exc}")


def _nothing() -> None:
    return None
