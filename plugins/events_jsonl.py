"""A chaospool plugin you can copy: stream every pool event and fault as JSON lines.

A hook-only plugin (it adds no fault). During a run it appends one JSON object per line to
``$CHAOSPOOL_EVENTS_PATH`` (default ``chaospool-events.jsonl`` in the working directory):

    {"type": "experiment_start", "t": 0.0, "title": "...", "seed": 42}
    {"type": "pool_event", "t": 0.51, "kind": "checkout", "index": 0, "pid": 4242, "data": {}}
    {"type": "fault_start", "t": 1.0, "fault": "port_crash", "name": "kill-one",
     "targets": [{"index": 1, "pid": 4243}]}
    {"type": "fault_end", "t": 1.2, "fault": "port_crash", "name": "kill-one", "error": null,
     "injected_at": 1.0, "reverted_at": 1.19}
    {"type": "experiment_end", "t": 3.0, "status": "completed", "ok": true}

``t`` is seconds since the experiment started. Lines are appended, so one file can hold several
runs (each opens with ``experiment_start``); feed it to ``jq`` or load it with pandas.

Use it with ``plugins: [../plugins/events_jsonl.py]`` in an experiment or ``--plugin``.
The pool-event hook runs on the pool's request path: it only formats a line into a buffered
file, and the file is flushed at fault boundaries and at the end.
"""

from __future__ import annotations

import json
import os
import time
from typing import IO, Any

from chaospool.hookspecs import hookimpl

ENV_VAR = "CHAOSPOOL_EVENTS_PATH"
DEFAULT_PATH = "chaospool-events.jsonl"


class _Sink:
    """The open events file of the run in progress (one run at a time per process)."""

    def __init__(self) -> None:
        self.file: IO[str] | None = None
        self.t0 = 0.0

    def open(self) -> None:
        self.close()
        self.file = open(os.environ.get(ENV_VAR) or DEFAULT_PATH, "a", encoding="utf-8")  # noqa: SIM115 -- reason: stays open across hooks; closed in close()
        self.t0 = time.monotonic()

    def write(self, line_type: str, /, at: float | None = None, **fields: Any) -> None:
        if self.file is None:
            return  # a hook outside a run (e.g. the plugin loaded by `chaospool faults`)
        t = round((time.monotonic() if at is None else at) - self.t0, 6)
        self.file.write(json.dumps({"type": line_type, "t": t, **fields}, default=str) + "\n")

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


_sink = _Sink()


@hookimpl
def chaospool_experiment_start(experiment: Any, seed: int) -> None:
    _sink.open()
    _sink.write(
        "experiment_start", at=_sink.t0, title=getattr(experiment, "title", None), seed=seed
    )


@hookimpl
def chaospool_pool_event(event: Any) -> None:
    _sink.write(
        "pool_event",
        at=event.time,
        kind=event.kind,
        index=event.index,
        pid=event.pid,
        data=dict(event.data),
    )


@hookimpl
def chaospool_before_fault(step: Any, ctx: Any) -> None:
    targets = [{"index": h.index, "pid": h.pid} for h in ctx.targets]
    _sink.write("fault_start", fault=step.fault, name=step.name, targets=targets)
    _sink.flush()


@hookimpl
def chaospool_after_fault(step: Any, record: dict[str, Any]) -> None:
    _sink.write(
        "fault_end",
        fault=step.fault,
        name=step.name,
        error=record.get("error"),
        injected_at=record.get("injected_at"),
        reverted_at=record.get("reverted_at"),
    )
    _sink.flush()


@hookimpl
def chaospool_experiment_end(journal: dict[str, Any]) -> None:
    _sink.write("experiment_end", status=journal.get("status"), ok=journal.get("ok"))
    _sink.close()
