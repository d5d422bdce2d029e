"""The built-in reporters, registered through the same hook a third-party plugin uses.

A reporter is a :class:`chaospool.hookspecs.Reporter`: a ``name`` and
``write(journal: dict, path: str) -> None``. The CLI finds every one, built-in or plugin, with
``chaospool._plugins.reporters(pm)`` and calls it for ``--report NAME=PATH`` (``--journal``,
``--html`` and ``--junit`` are shorthands). A new format is one module with a render function
and one line in :data:`BUILTIN_REPORTERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chaospool.hookspecs import Reporter, hookimpl

__all__ = (
    "BUILTIN_REPORTERS",
    "HTML",
    "JOURNAL",
    "JUNIT",
    "TERMINAL",
    "FileReporter",
    "chaospool_register_reporters",
)


@dataclass(frozen=True)
class FileReporter:
    """Writes one output from a journal with ``render(journal, path)``: reporters receive the
    JSON-able dict (the plugin boundary, docs/plugins.md); each built-in renderer converts it
    to the typed journal of :mod:`chaospool._journal` and reads records from there on."""

    name: str
    description: str
    render: Callable[[Mapping[str, Any], str], None]

    def write(self, journal: dict[str, Any], path: str) -> None:
        self.render(journal, path)


# Each writer is imported on use: pygal, rich and the XML writer cost start-up time that a run
# asking only for the journal should not pay.
def _write_journal(journal: Mapping[str, Any], path: str) -> None:
    from chaospool._report.files import write_journal

    write_journal(journal, path)


def _write_html(journal: Mapping[str, Any], path: str) -> None:
    from chaospool._report.html import write_html

    write_html(journal, path)


def _write_junit(journal: Mapping[str, Any], path: str) -> None:
    from chaospool._report.junit import write_junit

    write_junit(journal, path)


def _write_terminal(journal: Mapping[str, Any], path: str) -> None:
    from chaospool._report.console import write_summary

    write_summary(journal, path)


JOURNAL = FileReporter("journal", "the JSON journal ('-' = stdout)", _write_journal)
HTML = FileReporter("html", "self-contained HTML report with timeline charts", _write_html)
JUNIT = FileReporter("junit", "JUnit XML, one testcase per tolerance check", _write_junit)
TERMINAL = FileReporter("terminal", "the run's summary as plain text ('-' = stdout)",
                        _write_terminal)
BUILTIN_REPORTERS: tuple[Reporter, ...] = (JOURNAL, HTML, JUNIT, TERMINAL)


@hookimpl
def chaospool_register_reporters() -> list[Reporter]:
    return list(BUILTIN_REPORTERS)
