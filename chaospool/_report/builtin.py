"""The built-in reporters, registered through the same hook a third-party plugin uses.

A reporter is an object with a ``name`` and ``write(journal: dict, path: str) -> None``; the CLI
finds them with ``chaospool._plugins.reporters(pm)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chaospool.hookspecs import hookimpl

__all__ = ("HTML", "JUNIT", "FileReporter", "chaospool_register_reporters")


@dataclass(frozen=True)
class FileReporter:
    """Writes one report file from a journal dict."""

    name: str
    description: str
    render: Callable[[Mapping[str, Any], str], None]

    def write(self, journal: Mapping[str, Any], path: str) -> None:
        self.render(journal, path)


def _write_html(journal: Mapping[str, Any], path: str) -> None:
    # Imported on use: pygal is only needed when an HTML report is asked for.
    from chaospool._report.html import write_html

    write_html(journal, path)


def _write_junit(journal: Mapping[str, Any], path: str) -> None:
    from chaospool._report.junit import write_junit

    write_junit(journal, path)


HTML = FileReporter("html", "self-contained HTML report with timeline charts", _write_html)
JUNIT = FileReporter("junit", "JUnit XML, one testcase per tolerance check", _write_junit)


@hookimpl
def chaospool_register_reporters() -> list[Any]:
    return [HTML, JUNIT]
