"""Shared by the Ray tests: the pool's Ray settings (the session's one local cluster)."""

from __future__ import annotations

RAY = {"address": "local", "nodes": 3}
