"""The chaospool exception tree.

::

    ChaospoolError
     ├── PoolError                 the pool could not serve a request
     │    ├── CheckoutTimeout      no worker became free within checkout_timeout
     │    ├── QueueFull            max_queue waiters already; refused at once
     │    ├── RequestTimeout       the worker did not answer within the request timeout
     │    ├── WorkerCrashed        the worker died (or its link broke) holding the request
     │    ├── CircuitOpen          restart intensity exceeded: the pool stopped restarting
     │    ├── PoolClosed           the pool is closed (or closing)
     │    ├── WorkerStartError     a worker failed its start-up handshake (import error, early exit)
     │    └── ProtocolError        a malformed frame / unserialisable value crossed the channel
     ├── CommandError              a handler raised, or the command is unknown (remote type kept)
     ├── ExperimentError           an experiment file or mapping is invalid (.errors: every problem)
     ├── PluginLoadError           a plugin could not be imported, registered or validated
     └── FaultError                a fault's inject or revert raised

Each error carries ``kind``: the snake_case name the probe and the journal use
(``errors_by_kind``).  Messages are built from fields so they read the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = (
    "ChaospoolError",
    "CheckoutTimeout",
    "CircuitOpen",
    "CommandError",
    "ErrorLocation",
    "ExperimentError",
    "FaultError",
    "PluginLoadError",
    "PoolClosed",
    "PoolError",
    "ProtocolError",
    "QueueFull",
    "RequestTimeout",
    "WorkerCrashed",
    "WorkerStartError",
)


class ChaospoolError(Exception):
    """Root of every error chaospool raises on purpose."""

    kind: str = "error"


class PoolError(ChaospoolError):
    """The pool could not serve a request."""


class CheckoutTimeout(PoolError):
    kind = "checkout_timeout"


class QueueFull(PoolError):
    kind = "queue_full"


class RequestTimeout(PoolError):
    kind = "request_timeout"


class CircuitOpen(PoolError):
    kind = "circuit_open"


class PoolClosed(PoolError):
    kind = "pool_closed"


class WorkerCrashed(PoolError):
    """The worker holding the request died or its link broke.

    ``exitcode`` is the process exit status (None if it has not exited or is unknown);
    ``signal`` the number of the signal that killed it, if any.
    """

    kind = "worker_crashed"

    def __init__(
        self,
        message: str,
        *,
        pid: int | None = None,
        exitcode: int | None = None,
        signal: int | None = None,
    ) -> None:
        super().__init__(message)
        self.pid = pid
        self.exitcode = exitcode
        self.signal = signal


class WorkerStartError(WorkerCrashed):
    """A worker exited or failed to import its module during the start-up handshake."""


class ProtocolError(WorkerCrashed):
    """A malformed frame or an unserialisable value crossed the channel."""


class CommandError(ChaospoolError):
    """A handler raised in the worker, or the command is unknown.

    ``str()`` is ``"RemoteType: message"``; the remote traceback is kept as text.
    """

    kind = "command_error"

    def __init__(
        self, remote_type: str, remote_message: str, remote_traceback: str = ""
    ) -> None:
        super().__init__(f"{remote_type}: {remote_message}")
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> tuple[type[CommandError], tuple[str, str, str]]:
        return (type(self), (self.remote_type, self.remote_message, self.remote_traceback))


@dataclass(frozen=True)
class ErrorLocation:
    """One problem in an experiment: where it is and what is wrong (1-based line/column)."""

    path: str
    line: int
    column: int
    message: str
    file: str = "<experiment>"

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.column}: {where}{self.message}"


class ExperimentError(ChaospoolError):
    """An experiment is invalid. ``.errors`` lists every problem, each with its location."""

    kind = "experiment_error"

    def __init__(self, errors: list[ErrorLocation]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors) or "invalid experiment")


class FaultError(ChaospoolError):
    """A fault's inject or revert raised; ``fault`` names it, ``__cause__`` is the error."""

    kind = "fault_error"

    def __init__(self, fault: str, message: str) -> None:
        super().__init__(f"fault {fault!r}: {message}")
        self.fault = fault


class PluginLoadError(ChaospoolError):
    """A plugin could not be imported, registered or validated.

    ``str()`` is ``"plugin 'NAME': MESSAGE"``; ``.plugin`` is the plugin's name (module name,
    file spec or entry-point name) and ``.message`` what went wrong and how to fix it.
    """

    kind = "plugin_error"

    def __init__(self, plugin: str, message: str) -> None:
        super().__init__(f"plugin {plugin!r}: {message}")
        self.plugin = plugin
        self.message = message

    def __reduce__(self) -> tuple[type[PluginLoadError], tuple[str, str]]:
        return (type(self), (self.plugin, self.message))
