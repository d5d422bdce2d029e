"""The steady-state probe: load generation, outcome recording, metrics (internal-api §5)."""

from __future__ import annotations

from chaospool._probe.aggregate import Aggregator
from chaospool._probe.consistency import Checker
from chaospool._probe.history import HistoryWriter
from chaospool._probe.load import DEFAULT_MAX_IN_FLIGHT, LoadLike, MixLike, PoolLike, Probe
from chaospool._probe.phases import PhaseClock
from chaospool._probe.recorder import ERROR_KINDS, OUTCOME_KINDS, Outcome, Recorder
from chaospool._probe.summary import (
    PHASES,
    FaultWindow,
    bucket_width,
    recovery_time,
    replay,
    summarize,
)

__all__ = (
    "DEFAULT_MAX_IN_FLIGHT",
    "ERROR_KINDS",
    "OUTCOME_KINDS",
    "PHASES",
    "Aggregator",
    "Checker",
    "FaultWindow",
    "HistoryWriter",
    "LoadLike",
    "MixLike",
    "Outcome",
    "PhaseClock",
    "PoolLike",
    "Probe",
    "Recorder",
    "bucket_width",
    "recovery_time",
    "replay",
    "summarize",
)
