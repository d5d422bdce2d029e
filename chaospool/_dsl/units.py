"""The DSL's units: parsed and printed by :mod:`chaospool._units`, a module below both the DSL
and the pool (the pool reads ``"300MB"`` and ``"2s"`` too, and must not import the DSL)."""

from __future__ import annotations

from chaospool._units import *  # noqa: F403 -- one name, one definition: a re-export
from chaospool._units import __all__ as __all__
