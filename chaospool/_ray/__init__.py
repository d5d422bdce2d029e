"""The Ray backend: pool workers as Ray actors across a cluster (docs/ray.md).

Nothing here imports Ray at module import time: a user who never asks for ``backend: ray``
does not need it installed. ``settings`` is Ray-free (the DSL and ``Pool`` validate with it);
``boot`` loads Ray on loopback; ``cluster`` owns the connection and the local cluster;
``actors`` holds the code that runs inside Ray workers; ``backend`` is the pool's seam.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaospool._ray.backend import RayBackend

__all__ = ("make_backend", "require_ray")


def require_ray() -> None:
    """RayUnavailable (naming the extra to install) if Ray cannot be imported."""
    from chaospool._ray.boot import INSTALL_HINT, RayUnavailable

    try:
        found = importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise RayUnavailable(
            f"the Ray backend needs Ray, which is not installed; install it with: {INSTALL_HINT}"
        )


def make_backend(
    worker: str, ray: Mapping[str, Any] | None, *, start_timeout: float
) -> RayBackend:
    """The pool's Ray backend; ValueError for bad settings, RayUnavailable without Ray."""
    from chaospool._ray.settings import parse_settings

    settings = parse_settings(ray)
    require_ray()
    from chaospool._ray.backend import RayBackend

    return RayBackend(worker, settings, start_timeout=start_timeout)
