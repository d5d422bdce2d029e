"""Writing outputs safely: atomic files, JSON that always encodes, stdout that may close.

Every report file is written to a temporary file in the destination's directory and moved over
the destination with ``os.replace`` only once complete, so a failure half-way (a full disk, a
renderer that raises, a SIGKILL) leaves the earlier file whole. See docs/reports.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

__all__ = (
    "JournalFormatError",
    "json_safe",
    "print_stdout",
    "read_journal",
    "write_atomic",
    "write_journal",
    "write_text_atomic",
)

# A value a plugin recorded may contain itself; its copy stops there instead of recursing.
_CYCLE = "<cycle>"


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


def json_safe(value: Any) -> Any:
    """``value`` if strict JSON can hold it as it is, else a copy that it can.

    A set becomes a sorted list, bytes text (UTF-8, undecodable bytes escaped), NaN and the
    infinities ``null``, a tuple a list, a key text, an enum its value, a dataclass a dict and
    any other object its ``repr``. The common case -- nothing to convert -- costs one C-speed
    encode, not a walk in Python over a long run's timeline.
    """
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return _convert(value, set())
    return value


def _convert(value: Any, seen: set[int]) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if id(value) in seen:
        return _CYCLE
    seen.add(id(value))
    try:
        return _convert_container(value, seen)
    finally:
        seen.discard(id(value))


def _convert_container(value: Any, seen: set[int]) -> Any:
    if isinstance(value, Mapping):
        return {_key(k): _convert(v, seen) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_convert(v, seen) for v in value]
    if isinstance(value, set | frozenset):
        return [_convert(v, seen) for v in _sorted(value)]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, enum.Enum):
        return _convert(value.value, seen)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _convert(dataclasses.asdict(value), seen)
    return repr(value)


def _sorted(items: set[Any] | frozenset[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:  # mixed types: an order that is still the same on every run
        return sorted(items, key=repr)


def _key(key: Any) -> str:
    return key if isinstance(key, str) else str(_convert(key, set()))


class JournalFormatError(ValueError):
    """A file that is not a chaospool journal; ``str()`` is one line saying why, ``line`` and
    ``column`` (1-based) where, when the JSON itself is broken."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.line, self.column = line, column


# top-level key -> the JSON type a journal holds there (when the key is present)
_JOURNAL_SHAPE: dict[str, tuple[type, ...]] = {
    "metrics": (dict,), "phases": (dict,), "checks": (list,), "faults": (list,),
    "timeline": (list,), "status": (str,), "experiment": (dict, type(None)),
}
_LIST_OF_OBJECTS = ("checks", "faults", "timeline")


def read_journal(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a journal file written by ``chaospool run``; :class:`JournalFormatError` if the file
    is not JSON, or is JSON of another shape (another tool's, a history, a truncated copy)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise JournalFormatError(f"not a journal: not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise JournalFormatError(f"not a journal: invalid JSON: {exc.msg}", exc.lineno,
                                 exc.colno) from exc
    problem = _shape_problem(data)
    if problem:
        raise JournalFormatError(f"not a chaospool journal: {problem}")
    return dict(data)


def _shape_problem(data: Any) -> str | None:
    if not isinstance(data, dict):
        return f"the top level is a JSON {type(data).__name__}, not an object"
    if "metrics" not in data:
        return "it has no 'metrics'"
    for key, types in _JOURNAL_SHAPE.items():
        if key in data and not isinstance(data[key], types):
            return f"'{key}' is a JSON {type(data[key]).__name__}"
    for key in _LIST_OF_OBJECTS:
        if any(not isinstance(item, dict) for item in data.get(key, ())):
            return f"'{key}' holds something other than objects"
    return None


def print_stdout(text: str) -> None:
    """Print to stdout; a reader that closed the pipe early (``| head``) is not an error of
    the run, whose exit code still tells how it went."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # the interpreter flushes stdout again at exit: point it at /dev/null first
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
