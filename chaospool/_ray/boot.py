"""Loading Ray so that a local cluster keeps all of its traffic on loopback (docs/ray.md).

A default Ray start reaches beyond the machine in three ways, each stopped here:

1. the node address: Ray "connects" a UDP socket to a public resolver to learn the host's main
   IP and rewrites even ``127.0.0.1`` to it. ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes it
   answer 127.0.0.1 without probing -- but Ray reads it once, at import, so it is set before;
2. usage statistics: off, and the report URL points at a dead loopback port (even disabled,
   the head posts a "disabled" report otherwise);
3. the head's API server (dashboard process) probes cloud metadata endpoints; no setting stops
   it, so ``Node.start_api_server`` is replaced by the outcome of a failed, non-fatal start.
   That is a private API: the ``ray`` extra pins Ray's version and a test fails if the
   replacement stops applying.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from chaospool.errors import ChaospoolError

__all__ = (
    "INSTALL_HINT",
    "LOOPBACK_ENV",
    "RayUnavailable",
    "import_ray",
    "keep_signal_handlers",
    "patch_api_server",
)

INSTALL_HINT = "pip install 'chaospool[ray]'"
LOOPBACK_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_USAGE_STATS_PROMPT_ENABLED": "0",
    "RAY_USAGE_STATS_REPORT_URL": "http://127.0.0.1:9/",
}
_REMOTE_ENV = {k: v for k, v in LOOPBACK_ENV.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}


class RayUnavailable(ChaospoolError, ImportError):
    """The Ray backend was asked for, but Ray is not installed (or cannot be kept local)."""

    kind = "ray_unavailable"


def _no_api_server(self: Any, *, include_dashboard: bool | None, raise_on_failure: bool) -> None:
    # the same state Ray leaves after a failed, non-fatal dashboard start
    self._webui_url = None


_no_api_server.chaospool_patch = True  # type: ignore[attr-defined]
ORIGINAL_START_API_SERVER: Any = None  # what was replaced (a test checks its signature)


def patch_api_server(ray_module: ModuleType) -> None:
    """Replace ``Node.start_api_server`` (idempotent); RuntimeError if it no longer exists."""
    node_cls = ray_module._private.node.Node
    current = getattr(node_cls, "start_api_server", None)
    if current is None:
        raise RuntimeError(
            f"Ray {ray_module.__version__} has no Node.start_api_server: chaospool cannot keep "
            "the head's API server from probing cloud metadata; install the pinned version "
            f"({INSTALL_HINT})"
        )
    if not getattr(current, "chaospool_patch", False):
        global ORIGINAL_START_API_SERVER
        ORIGINAL_START_API_SERVER = current
    node_cls.start_api_server = _no_api_server


def _missing(exc: ImportError) -> RayUnavailable:
    return RayUnavailable(
        f"the Ray backend needs Ray, which is not installed ({exc}); install it with: "
        f"{INSTALL_HINT}"
    )


def import_ray(*, local: bool) -> ModuleType:
    """Ray, loaded on loopback for a local cluster (env set before its first import)."""
    if "ray" not in sys.modules:
        env = LOOPBACK_ENV if local else _REMOTE_ENV
        for key, value in env.items():
            os.environ[key] = value
    if local:
        os.environ.pop("RAY_ADDRESS", None)  # an inherited address would connect elsewhere
    try:
        import ray
        import ray._private.node
        import ray._private.ray_constants as constants
    except ImportError as exc:
        raise _missing(exc) from exc
    if local and constants.ENABLE_RAY_CLUSTER:
        raise RayUnavailable(
            "Ray was imported before chaospool could keep a local cluster on loopback; import "
            "chaospool's Ray backend first, or set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before "
            "Ray is imported"
        )
    patch_api_server(ray)
    return ray


@contextlib.contextmanager
def keep_signal_handlers(ray_module: ModuleType) -> Iterator[None]:
    """Starting a node (and ``ray.init``) installs a SIGTERM handler that exits the process --
    and refuses to run off the main thread. The host (the CLI's clean abort on SIGTERM, the
    pool's own teardown) keeps its handlers: the cluster is started with that step skipped."""
    utils = ray_module._private.utils
    original = utils.set_sigterm_handler
    utils.set_sigterm_handler = lambda handler: None
    try:
        yield
    finally:
        utils.set_sigterm_handler = original
