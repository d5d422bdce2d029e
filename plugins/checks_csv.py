"""A chaospool plugin you can copy: a report format in one module and one registration.

It adds the reporter ``csv``: one row per tolerance check (metric, phase, expected, observed,
ok), for a spreadsheet or a dashboard that reads CSV.

    chaospool run experiments/cascade.yaml --plugin plugins/checks_csv.py --report csv=checks.csv
    chaospool report chaospool-journal.json --plugin plugins/checks_csv.py --report csv=-

A reporter sees only the finished journal (a dict, see docs/reports.md), so ``chaospool report``
re-renders any journal file with it. It writes to a temporary file and renames it over the
target, so a failure half-way never leaves a truncated file where an earlier one was.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import tempfile
from typing import Any

from chaospool.hookspecs import Reporter, hookimpl

COLUMNS = ("metric", "phase", "expected", "observed", "ok")


class ChecksCsv:
    """The ``csv`` reporter: the journal's checks as CSV (``-`` = stdout)."""

    name = "csv"

    def write(self, journal: dict[str, Any], path: str) -> None:
        text = render(journal)
        if path == "-":
            sys.stdout.write(text)
            return
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".checks.", suffix=".csv")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise


def render(journal: dict[str, Any]) -> str:
    buffer = io.StringIO()
    out = csv.writer(buffer)
    out.writerow(COLUMNS)
    for check in journal.get("checks") or []:
        out.writerow([check.get(column) for column in COLUMNS])
    return buffer.getvalue()


@hookimpl
def chaospool_register_reporters() -> list[Reporter]:
    return [ChecksCsv()]
