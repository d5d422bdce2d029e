"""The named backends of ``Pool(backend=NAME)``: a new kind of worker is one module (a
``Backend`` and its ``Link``, ``backend.py``) and one entry in :data:`BACKENDS`.

Each factory imports its module when it is chosen: the pool imports neither Ray nor the
fork server's machinery until a pool of that kind is made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chaospool._pool.backend import Backend
from chaospool._pool.config import PoolConfig

# (the pool's config, the ``ray={...}`` settings or None) -> a Backend not started yet
BackendFactory = Callable[[PoolConfig, Mapping[str, Any] | None], Backend]


def _process(config: PoolConfig, settings: Mapping[str, Any] | None) -> Backend:
    from chaospool._pool.process import ProcessBackend

    return ProcessBackend(config.worker, start_timeout=config.start_timeout)


def _memory(config: PoolConfig, settings: Mapping[str, Any] | None) -> Backend:
    from chaospool._pool.memory import MemoryBackend

    return MemoryBackend(config.worker)


def _ray(config: PoolConfig, settings: Mapping[str, Any] | None) -> Backend:
    from chaospool._ray import make_backend  # Ray itself is imported only when it starts

    return make_backend(config.worker, settings, start_timeout=config.start_timeout)


BACKENDS: dict[str, BackendFactory] = {"process": _process, "memory": _memory, "ray": _ray}
# the backends whose factory reads the ``ray=`` settings (any other refuses them)
TAKES_SETTINGS = frozenset({"ray"})


def make_backend(
    spec: str | Backend, config: PoolConfig, settings: Mapping[str, Any] | None = None
) -> Backend:
    """The backend ``Pool(backend=spec, ray=settings)`` runs on; ValueError if unknown."""
    if settings is not None and spec not in TAKES_SETTINGS:
        raise ValueError("ray settings need backend='ray'")
    if not isinstance(spec, str):
        return spec
    factory = BACKENDS.get(spec)
    if factory is None:
        names = ", ".join(repr(name) for name in BACKENDS)
        raise ValueError(f"backend must be {names} or a Backend, not {spec!r}")
    return factory(config, settings)
