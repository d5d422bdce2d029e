"""The steady-state probe: load generation, outcome recording, metrics (internal-api §5)."""

from __future__ import annotations

from chaospool._probe.load import DEFAULT_MAX_IN_FLIGHT, LoadLike, MixLike, PoolLike, Probe
from chaospool._probe.recorder import ERROR_KINDS, OUTCOME_KINDS, Outcome, Recorder
from chaospool._probe.summary import PHASES, FaultWindow, bucket_width, recovery_time, summarize

__all__ = (
    "DEFAULT_MAX_IN_FLIGHT",
    "ERROR_KINDS",
    "OUTCOME_KINDS",
    "PHASES",
    "FaultWindow",
    "LoadLike",
    "MixLike",
    "Outcome",
    "PoolLike",
    "Probe",
    "Recorder",
    "bucket_width",
    "recovery_time",
    "summarize",
)
