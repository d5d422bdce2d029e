"""Writing outputs safely: atomic files, JSON that always encodes, stdout that may close.

Every report file is written to a temporary file in the destination's directory and moved over
the destination with ``os.replace`` only once complete, so a failure half-way (a full disk, a
renderer that raises, a SIGKILL) leaves the earlier file whole. See docs/reports.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from chaospool._journal import Journal, JournalShapeError, as_journal, json_safe

__all__ = (
    "JournalFormatError",
    "json_safe",
    "print_stdout",
    "read_journal",
    "write_atomic",
    "write_journal",
    "write_text_atomic",
)

def write_atomic(path: str | os.PathLike[str], render: Callable[[TextIO], None]) -> None:
    """Call ``render(file)`` on a temporary file next to ``path``, then move it onto ``path``.

    Same directory: ``os.replace`` is atomic only within one file system. On any error the
    temporary file is removed and the error raised; ``path`` keeps its earlier content.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            render(f)
        _keep_mode(target, tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`write_atomic`)."""

    def render(f: TextIO) -> None:
        f.write(text)

    write_atomic(path, render)


def _keep_mode(target: Path, tmp: str) -> None:
    # mkstemp creates the file 0600; a report is read by CI and colleagues like any file
    try:
        mode = target.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp, mode)


def write_journal(journal: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write the journal as JSON (``-`` = stdout), atomically; any value JSON cannot hold is
    converted first (see :func:`json_safe`)."""
    safe = json_safe(journal)
    if str(path) == "-":
        print_stdout(json.dumps(safe, indent=2, allow_nan=False))
        return

    def render(f: TextIO) -> None:
        json.dump(safe, f, indent=2, allow_nan=False)
        f.write("\n")

    write_atomic(path, render)


class JournalFormatError(ValueError):
    """A file that is not a chaospool journal; ``str()`` is one line saying why, ``line`` and
    ``column`` (1-based) where, when the JSON itself is broken."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.line, self.column = line, column


def read_journal(path: str | os.PathLike[str]) -> Journal:
    """Read a journal file written by ``chaospool run`` into the typed model;
    :class:`JournalFormatError` if the file is not JSON, or is JSON of another shape (another
    tool's, a history, a truncated copy): msgspec names the first wrong value by its path."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise JournalFormatError(f"not a journal: not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise JournalFormatError(f"not a journal: invalid JSON: {exc.msg}", exc.lineno,
                                 exc.colno) from exc
    try:
        return as_journal(data)
    except JournalShapeError as exc:
        raise JournalFormatError(f"not a chaospool journal: {exc}") from None


def print_stdout(text: str) -> None:
    """Print to stdout; a reader that closed the pipe early (``| head``) is not an error of
    the run, whose exit code still tells how it went."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # the interpreter flushes stdout again at exit: point it at /dev/null first
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
