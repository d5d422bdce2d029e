"""The pool's options, defined once: DSL key, field name, type, default, meaning.

Everything else is derived from :data:`POOL_OPTIONS`: the DSL's ``pool:`` keys, their
validation and the generated docs/dsl.md (``chaospool._dsl.model.KEYS``); the loader's
``PoolSpec``; ``PoolSpec.pool_kwargs()`` (the keyword arguments of ``chaospool.Pool``); and
``PoolConfig``'s defaults and ``build_config``'s unnesting of ``restart`` / ``health_check``.
An option is added here and in the typed field lists of ``PoolSpec``/``PoolConfig``
(a test checks that they agree). Stdlib and :mod:`chaospool._units` only: both the DSL and the
pool import it, and the pool must not import the DSL (docs/design.md, "Layers").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaospool import _units

__all__ = ("DEFAULTS", "GROUPS", "POOL_OPTIONS", "PoolOption", "flatten", "nest")


@dataclass(frozen=True)
class PoolOption:
    """One key of the ``pool:`` section.

    ``key`` is the path below ``pool`` (``restart.within``); ``field`` the flat attribute of
    ``PoolSpec``/``PoolConfig`` (``restart_within``), None for a group (``restart``); ``type``
    the DSL type text the reader validates with (``duration > 0``); ``default`` as written in
    YAML (``"10s"``), None when the key is absent by default.
    """

    key: str
    field: str | None
    type: str
    default: Any
    doc: str
    required: bool = False

    @property
    def group(self) -> str | None:
        """``restart`` for ``restart.within``; None for a top-level key."""
        return self.key.split(".")[0] if "." in self.key else None

    @property
    def name(self) -> str:
        """The key inside its group (``within``), or the key itself."""
        return self.key.rsplit(".", 1)[-1]


POOL_OPTIONS: tuple[PoolOption, ...] = (
    PoolOption("worker", "worker", "string", None,
               "Importable module (or module:object) holding the @command handlers.",
               required=True),
    PoolOption("size", "size", "int >= 1", 4, "Number of permanent workers."),
    PoolOption("max_overflow", "max_overflow", "int >= 0", 0,
               "Extra workers started under load beyond size."),
    PoolOption("strategy", "strategy", "lifo | fifo", "lifo",
               "Which idle worker is handed out next."),
    PoolOption("checkout_timeout", "checkout_timeout", "duration > 0", "5s",
               "How long a request may wait for a worker."),
    PoolOption("request_timeout", "request_timeout", "duration > 0", "30s",
               "How long a worker may take to answer."),
    PoolOption("max_queue", "max_queue", "int >= 0", 1000,
               "Waiting requests beyond this fail at once with a queue-full error."),
    PoolOption("restart", None, "mapping", {"max_restarts": 20, "within": "10s"},
               "Restart intensity, as in OTP supervisors: beyond max_restarts within the window "
               "the circuit opens."),
    PoolOption("restart.max_restarts", "max_restarts", "int >= 0", 20,
               "Restarts allowed within the window."),
    PoolOption("restart.within", "restart_within", "duration > 0", "10s",
               "The restart-intensity window."),
    PoolOption("max_memory", "max_memory", "size | null", None,
               "A worker whose RSS exceeds this is recycled (300MB = 300*10^6 bytes, "
               "300MiB = 300*2^20). Absent: unlimited."),
    PoolOption("max_requests", "max_requests", "int >= 1 | null", None,
               "A worker is recycled after this many requests. Absent: unlimited."),
    PoolOption("overflow_idle", "overflow_idle", "duration >= 0", "5s",
               "How long an idle overflow worker lingers before it retires."),
    PoolOption("lazy", "lazy", "bool", False, "true: start workers on first demand."),
    PoolOption("health_check", None, "mapping", {"interval": "1s", "timeout": "1s"},
               "Heartbeats on each worker's channel."),
    PoolOption("health_check.interval", "health_interval", "duration > 0", "1s",
               "Time between heartbeats."),
    PoolOption("health_check.timeout", "health_timeout", "duration > 0", "1s",
               "A heartbeat unanswered this long fails the health check."),
)


def _base_value(option: PoolOption) -> Any:
    """The default in base units: ``"10s"`` -> 10.0 (seconds)."""
    if option.type.startswith("duration") and option.default is not None:
        return _units.parse_duration(option.default)
    return option.default


# field -> default in base units (seconds, bytes), for every option that has a field
DEFAULTS: dict[str, Any] = {o.field: _base_value(o) for o in POOL_OPTIONS if o.field}
# group -> its options (``restart`` -> max_restarts, within)
GROUPS: dict[str, tuple[PoolOption, ...]] = {
    g.key: tuple(o for o in POOL_OPTIONS if o.group == g.key)
    for g in POOL_OPTIONS if g.field is None
}


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Flat fields -> ``chaospool.Pool`` keyword arguments (``restart={"within": ...}``)."""
    kwargs: dict[str, Any] = {}
    for option in POOL_OPTIONS:
        if option.field is None or option.field not in flat:
            continue
        target = kwargs.setdefault(option.group, {}) if option.group else kwargs
        target[option.name] = flat[option.field]
    return kwargs


def flatten(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``Pool``-style keyword arguments -> flat fields; a group's missing keys get defaults.

    A group given as None means its defaults; ``ValueError`` for a key a group does not have.
    Keys that are not pool options (``start_timeout``) pass through unchanged.
    """
    flat = {k: v for k, v in kwargs.items() if k not in GROUPS}
    for group, members in GROUPS.items():
        given: Mapping[str, Any] = kwargs.get(group) or {}
        names = [m.name for m in members]
        unknown = set(given) - set(names)
        if unknown:
            raise ValueError(f"unknown {group} keys {sorted(unknown)}; use {', '.join(names)}")
        for m in members:
            flat[str(m.field)] = _cast(m, given.get(m.name, DEFAULTS[str(m.field)]))
    return flat


def _cast(option: PoolOption, value: Any) -> Any:
    # a group's members are numbers; Pool(restart={"max_restarts": 5.0}) means 5
    return int(value) if option.type.startswith("int") else float(value)
