"""``--history PATH``: the run's operations as a Jepsen-style history, streamed to disk.

One JSON object a line (docs/reports.md, "Histories"): ``{"process", "type", "f", "value",
"time", "pid"}`` with ``type`` one of ``invoke``/``ok``/``fail``/``info`` and ``time`` in
nanoseconds since the run's start. Each operation has one ``invoke`` line and one completion
line (its retries inside it); a process never holds two open operations, and -- as Knossos
expects -- a process whose operation ended ``info`` never invokes again (the probe's client
takes a fresh process number). Fault windows are ``"process": "nemesis"`` lines (``f`` start /
stop, ``value`` the step's name and fault). Lines are written as they happen through a buffered
file: memory stays flat whatever the run's length.
"""

from __future__ import annotations

import json
import os
from typing import IO, Any

__all__ = ("TYPES", "HistoryWriter")

TYPES = ("ok", "fail", "info")  # completion type, index = outcome
_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=repr).encode


class HistoryWriter:
    """Writes history lines to ``path`` (``close`` flushes; safe to call twice)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._file: IO[str] | None = open(path, "w", encoding="utf-8", buffering=1 << 16)  # noqa: SIM115  reason: closed by close()
        self._write = self._file.write

    def invoke(self, process: int, f: str, value: Any, t: float,
               session: str | None) -> None:
        self._line({"process": process, "type": "invoke", "f": f, "value": value,
                    "time": int(t * 1e9), "pid": None, "session": session})

    def complete(self, process: int, outcome: int, f: str, value: Any, t: float,
                 pid: int | None, session: str | None, error: str | None,
                 attempts: int = 1) -> None:
        """A completion; ``error`` the kind of a failed one, ``attempts`` when retried."""
        line = {"process": process, "type": TYPES[outcome], "f": f, "value": value,
                "time": int(t * 1e9), "pid": pid, "session": session}
        if error is not None:
            line["error"] = error
        if attempts > 1:
            line["attempts"] = attempts
        self._line(line)

    def nemesis(self, f: str, value: Any, t: float) -> None:
        self._line({"process": "nemesis", "type": "info", "f": f, "value": value,
                    "time": int(t * 1e9), "pid": None})

    def _line(self, obj: dict[str, Any]) -> None:
        if self._file is not None:
            self._write(_dumps(obj) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
