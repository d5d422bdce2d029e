"""``chaospool report HISTORY.jsonl``: a journal rebuilt from a history (docs/reports.md).

A history (``--history``) holds every operation; this reads it twice, streaming, so memory stays
flat however long it is: once for the fault windows (the ``nemesis`` lines fix the phases), then
for the operations, paired by process and fed to the same aggregator and consistency checker
the live probe uses. The result is a journal the HTML and terminal reports draw like any other
(no seed, no checks: a history records what happened, not what was expected).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chaospool._journal import ExperimentInfo, Journal, assemble
from chaospool._probe import Aggregator, Checker, PhaseClock, bucket_width, summarize
from chaospool._probe.recorder import OUTCOME_KINDS, kind_index
from chaospool._probe.summary import LATENCY_BAND_EDGES, fault_bounds, fault_windows
from chaospool._version import __version__

__all__ = ("HistoryError", "is_history", "journal_from_history")

_TYPES = {"ok": 0, "fail": 1, "info": 2}


class HistoryError(ValueError):
    """A malformed history line: ``FILE:LINE:COL: message``."""


def is_history(path: str) -> bool:
    """A ``.jsonl`` file, or one whose first line is a history object on its own."""
    if path.endswith(".jsonl"):
        return True
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
        obj = json.loads(first)
    except (OSError, ValueError):
        return False
    return isinstance(obj, dict) and "process" in obj and "type" in obj


def _lines(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as f:
        for number, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except ValueError as exc:
                raise HistoryError(f"{path}:{number}:1: not a history line: {exc}") from None
            if not isinstance(obj, dict) or not {"process", "type", "time"} <= obj.keys():
                raise HistoryError(f"{path}:{number}:1: not a history line "
                                   "(needs process, type and time)")
            yield number, obj


def _seconds(obj: dict[str, Any]) -> float:
    return float(obj["time"]) / 1e9


def _windows(path: str) -> tuple[list[dict[str, Any]], set[str], float]:
    """Pass 1: the fault windows, the checked sessions and the last time."""
    faults: list[dict[str, Any]] = []
    open_faults: dict[str, dict[str, Any]] = {}
    sessions: set[str] = set()
    last = 0.0
    for _, obj in _lines(path):
        last = max(last, _seconds(obj))
        if obj["process"] == "nemesis":
            _nemesis(obj, faults, open_faults)
        elif str(obj.get("f", "")).startswith("chaospool.") and obj.get("session"):
            sessions.add(str(obj["session"]))
    return faults, sessions, last


def _nemesis(obj: dict[str, Any], faults: list[dict[str, Any]],
             open_faults: dict[str, dict[str, Any]]) -> None:
    raw = obj.get("value")
    value: dict[str, Any] = raw if isinstance(raw, dict) else {}
    name = str(value.get("name") or value.get("fault") or "fault")
    if obj.get("f") == "start":
        entry: dict[str, Any] = {"fault": value.get("fault") or name, "name": name,
                 "targets": value.get("targets") or [], "injected_at": _seconds(obj),
                 "reverted_at": None, "effect": {}, "error": None}
        faults.append(entry)
        open_faults[name] = entry
    elif obj.get("f") == "stop" and name in open_faults:
        open_faults.pop(name)["reverted_at"] = _seconds(obj)


def journal_from_history(path: str) -> Journal:
    """The journal of the run a history records. Raises ``HistoryError`` (located)."""
    faults, sessions, end = _windows(path)
    first, last = fault_bounds(fault_windows(faults), None, None)
    aggregator = Aggregator(bucket_width(end), PhaseClock.fixed(first, last))
    checker = _checker(sessions)
    _replay(path, aggregator, checker)
    summary = summarize(aggregator, end=end, faults=faults,
                        consistency=None if checker is None else checker.to_dict())
    recorded = {"consistency": summary["consistency"]} if "consistency" in summary else {}
    return assemble(
        chaospool_version=__version__, seed=None, started_at=None, ended_at=None,
        experiment=ExperimentInfo(title=f"history {Path(path).name}", path=path),
        status="completed", summary=summary, checks=[], faults=faults,
        # "history": no seed and no experiment, so the reports print no reproduce line
        source="history", elapsed=end,
        # the edges of each bucket's latency_bands, for the heat map (as a live journal)
        latency_band_edges=list(LATENCY_BAND_EDGES), **recorded,
    )


def _checker(sessions: set[str]) -> Checker | None:
    if not sessions:
        return None
    checker = Checker(len(sessions))
    checker.names = tuple(sorted(sessions))
    return checker


def _replay(path: str, aggregator: Aggregator, checker: Checker | None) -> None:
    """Pass 2: each operation, its invoke paired with its completion, into the aggregator
    and (a checked session's) the consistency checker."""
    index = {name: i for i, name in enumerate(checker.names)} if checker is not None else {}
    open_ops: dict[Any, tuple[float, str]] = {}
    for number, obj in _lines(path):
        if obj["process"] == "nemesis":
            continue
        if obj["type"] == "invoke":
            _invoke(path, number, obj, open_ops)
            continue
        start, f, outcome = _completion(path, number, obj, open_ops)
        _aggregate(aggregator, obj, start, outcome)
        if checker is not None and obj.get("session") in index:
            checker.complete(index[obj["session"]], f, start, _seconds(obj), outcome,
                             int(obj.get("attempts", 1)), _value(f, outcome, obj))


def _invoke(path: str, number: int, obj: dict[str, Any],
            open_ops: dict[Any, tuple[float, str]]) -> None:
    process = obj["process"]
    if process in open_ops:
        raise HistoryError(f"{path}:{number}:1: process {process!r} invokes while "
                           "its previous operation is open")
    open_ops[process] = (_seconds(obj), str(obj.get("f")))


def _completion(path: str, number: int, obj: dict[str, Any],
                open_ops: dict[Any, tuple[float, str]]) -> tuple[float, str, int]:
    """(start, f, outcome) of the operation this line completes."""
    outcome = _TYPES.get(obj["type"])
    if outcome is None or obj["process"] not in open_ops:
        raise HistoryError(f"{path}:{number}:1: {obj['type']!r} without an open invoke")
    start, f = open_ops.pop(obj["process"])
    return start, f, outcome


def _aggregate(aggregator: Aggregator, obj: dict[str, Any], start: float,
               outcome: int) -> None:
    error = obj.get("error")
    if error == "abandoned":
        aggregator.cancelled += 1
        return
    code = kind_index(error) if error in OUTCOME_KINDS else 0
    aggregator.add(start, _seconds(obj), code, int(obj.get("attempts", 1)), outcome)


def _value(f: str, outcome: int, obj: dict[str, Any]) -> tuple[int, int | None] | None:
    """A read's observed counter (an increment's line carries its delta, not the counter)."""
    value = obj.get("value")
    if f != "chaospool.read" or outcome != 0 or not isinstance(value, int):
        return None
    pid = obj.get("pid")
    return value, pid if isinstance(pid, int) else None
