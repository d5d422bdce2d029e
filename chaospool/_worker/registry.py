"""Command registration (``@chaospool.worker.command``) and loading a worker module."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

Handler = Callable[[Any, Any], Any]
F = TypeVar("F", bound=Handler)

# module name -> command name -> handler: kept per module so several worker modules can live
# in one process (the memory backend runs them all in the pool's process).
_COMMANDS: dict[str, dict[str, Handler]] = {}


def _register(fn: F, name: str | None) -> F:
    if inspect.iscoroutinefunction(fn):
        raise TypeError(f"@command {fn.__qualname__}: handlers run in a worker thread and must "
                        "be plain functions, not async def")
    _COMMANDS.setdefault(fn.__module__, {})[name or fn.__name__] = fn
    return fn


@overload
def command(fn: F, /) -> F: ...
@overload
def command(name: str | None = None, /) -> Callable[[F], F]: ...
def command(arg: Any = None, /) -> Any:
    """Register a handler ``(args, ctx)``; ``@command`` or ``@command("name")``."""
    if callable(arg):
        return _register(arg, None)

    def decorate(fn: F) -> F:
        return _register(fn, arg)

    return decorate


def _held_by(module: Any) -> dict[str, Handler]:
    """The handlers a module registered, plus those it imported from elsewhere: a worker
    module that does ``from myapp.handlers import *`` holds those handlers too."""
    commands = dict(_COMMANDS.get(module.__name__, {}))
    registered = {id(fn): name for handlers in _COMMANDS.values() for name, fn in handlers.items()}
    for value in vars(module).values():
        name = registered.get(id(value))
        if name is not None:
            commands.setdefault(name, value)
    return commands


def load_commands(spec: str) -> dict[str, Handler]:
    """Import ``module`` (or ``module:object``) and return its commands by name.

    ``module`` gives the ``@command`` handlers that module holds (its own and those it
    imported); ``module:object`` names a mapping of name -> handler (or a callable returning one).
    """
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    if not attr:
        commands = _held_by(module)
        if not commands:
            raise LookupError(f"worker module {module_name!r} registers no @command handlers")
        return commands
    target = getattr(module, attr)
    if callable(target) and not isinstance(target, Mapping):
        target = target()
    if not isinstance(target, Mapping):
        raise TypeError(f"{spec!r} is not a mapping of command name -> handler")
    return dict(target)
