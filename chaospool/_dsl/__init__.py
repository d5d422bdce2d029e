"""The experiment DSL: YAML (or a mapping) -> a typed, frozen ``Experiment``, once, at the edge.

``load(source, overrides=..., registry=...)`` reads, overrides and validates; every problem is
reported at once in ``ExperimentError.errors`` (each an ``ErrorLocation`` with file, 1-based
line and column, the key path and a message). ``describe_model()`` lists every DSL key with its
type, default and description (the source of docs/dsl.md). ``units`` parses and prints
durations, sizes, rates, percentages and tolerances.
"""

from __future__ import annotations

from chaospool._dsl import units
from chaospool._dsl.loader import Registry, RegistryFactory, load
from chaospool._dsl.methods import COMMON_KEYS
from chaospool._dsl.model import (
    KEYS,
    METRICS,
    PHASES,
    Experiment,
    FaultStep,
    KeyDoc,
    LoadSpec,
    MixEntry,
    PoolSpec,
    Target,
    Tolerance,
    describe_model,
)
from chaospool._dsl.overrides import SET_FILE
from chaospool._dsl.source import MAPPING_FILE

__all__ = (
    "COMMON_KEYS",
    "KEYS",
    "MAPPING_FILE",
    "METRICS",
    "PHASES",
    "SET_FILE",
    "Experiment",
    "FaultStep",
    "KeyDoc",
    "LoadSpec",
    "MixEntry",
    "PoolSpec",
    "Registry",
    "RegistryFactory",
    "Target",
    "Tolerance",
    "describe_model",
    "load",
    "units",
)
