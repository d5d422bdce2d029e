"""Outputs are always well-formed and never half-written (docs/reports.md).

JUnit XML parses whatever text a run carries; every built-in reporter writes atomically, so a
failure half-way leaves the earlier file whole; a journal holding values JSON cannot encode is
converted, never refused; ``read_journal`` says in one line why a file is not a journal.
"""

from __future__ import annotations

import copy
import errno
import json
import math
import os
import random
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chaospool._plugins import plugin_manager, reporters
from chaospool._report import files
from chaospool._report.files import JournalFormatError, json_safe, read_journal, write_atomic
from chaospool._report.junit import render_junit

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

# What a worker log or a plugin's error may carry into a report.
NASTY = (
    "\x1b[31mred\x1b[0m", "bell\x07", "nul\x00", "esc\x1b", "]]>", "<![CDATA[x]]>", "\ud800",
    "\ufffe", "tab\tnew\nline\r", "&amp; <b>", "\x1b]0;title\x07", "\x7f\x80\x9f", "emoji 😀",
)


def _nasty_text(rng: random.Random) -> str:
    return "".join(rng.choice((*NASTY, "plain")) for _ in range(rng.randint(1, 6)))


def _inject(journal: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    j = copy.deepcopy(journal)
    j["experiment"]["title"] = _nasty_text(rng)
    j["experiment"]["path"] = _nasty_text(rng)
    j["status"] = "failed"
    j["error"] = _nasty_text(rng)
    j["reproduce"] = _nasty_text(rng)
    for check in j["checks"]:
        check["expected"] = _nasty_text(rng)
        check["observed"] = rng.choice((None, 0, 0.97, 1e300))  # a number: the model says so
        check["ok"] = rng.random() < 0.5
    for fault in j["faults"]:
        fault["error"] = _nasty_text(rng)
        fault["name"] = _nasty_text(rng)
    return j


def test_junit_parses_with_control_chars_ansi_and_cdata_end(journal: dict[str, Any]) -> None:
    rng = random.Random(1234)
    for _ in range(200):
        text = render_junit(_inject(journal, rng))
        root = ET.fromstring(text.encode("utf-8"))  # raises on any ill-formed byte
        assert root.tag == "testsuites"
        assert "\x1b" not in text
        assert "\x00" not in text


def test_junit_keeps_the_readable_part_of_nasty_text(journal: dict[str, Any]) -> None:
    j = copy.deepcopy(journal)
    j["status"], j["error"] = "failed", "\x1b[31mWorkerCrashed\x1b[0m: bell\x07 ]]>"
    root = ET.fromstring(render_junit(j).encode("utf-8"))
    error = root.find(".//testcase[@name='run']/error")
    assert error is not None
    assert "WorkerCrashed: bell\\x07 ]]>" in error.get("message", "")


def test_write_atomic_failure_midway_keeps_the_earlier_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("earlier, complete\n")

    def render(f: Any) -> None:
        f.write("x" * 100_000)
        f.flush()
        raise RuntimeError("renderer broke half-way")

    with pytest.raises(RuntimeError):
        write_atomic(target, render)
    assert target.read_text() == "earlier, complete\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no temp file left


class _DiskFullAfter:
    """A file whose writes fail with ENOSPC once ``limit`` characters are written."""

    def __init__(self, f: Any, limit: int) -> None:
        self._f, self._left = f, limit

    def write(self, text: str) -> int:
        if len(text) > self._left:
            self._f.write(text[: self._left])
            self._f.flush()
            raise OSError(errno.ENOSPC, "No space left on device")
        self._left -= len(text)
        return int(self._f.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> _DiskFullAfter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


@pytest.mark.parametrize("name", ["journal", "html", "junit", "terminal"])
def test_builtin_reporter_failing_midway_never_truncates_the_earlier_file(
    name: str, journal: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reporter = reporters(plugin_manager())[name]
    target = tmp_path / f"report.{name}"
    reporter.write(journal, str(target))
    earlier = target.read_bytes()
    assert len(earlier) > 200
    real_fdopen = os.fdopen
    monkeypatch.setattr(files.os, "fdopen",
                        lambda *a, **k: _DiskFullAfter(real_fdopen(*a, **k), 150))
    with pytest.raises(OSError, match="No space"):
        reporter.write({**journal, "seed": 99}, str(target))
    assert target.read_bytes() == earlier
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


class _Opaque:
    def __repr__(self) -> str:
        return "<Opaque>"


def test_json_safe_converts_what_json_cannot_hold() -> None:
    looped: list[Any] = [1]
    looped.append(looped)
    value = {
        "set": {3, 1, 2}, "mixed": {1, "a"}, "bytes": b"ab\xff", "nan": math.nan,
        "inf": [math.inf, -math.inf], "obj": _Opaque(), "tuple": (1, 2), 7: "int key",
        "loop": looped,
    }
    safe = json_safe(value)
    assert safe["set"] == [1, 2, 3]
    assert safe["mixed"] == sorted([1, "a"], key=repr)
    assert safe["bytes"] == "ab\\xff"
    assert safe["nan"] is None
    assert safe["inf"] == [None, None]
    assert safe["obj"] == "<Opaque>"
    assert safe["tuple"] == [1, 2]
    assert safe["7"] == "int key"
    assert safe["loop"] == [1, "<cycle>"]
    json.dumps(safe, allow_nan=False)


def test_json_safe_leaves_a_clean_journal_as_it_is(journal: dict[str, Any]) -> None:
    assert json_safe(journal) is journal


_ODD: tuple[Callable[[random.Random], Any], ...] = (
    lambda r: {r.randint(0, 9), r.randint(0, 9)}, lambda r: bytes([r.randint(0, 255)] * 3),
    lambda r: math.nan, lambda r: -math.inf, lambda r: _Opaque(), lambda r: (r.random(),),
    lambda r: frozenset({"x"}), lambda r: r.random(), lambda r: "text", lambda r: None,
)


def _odd_tree(rng: random.Random, depth: int) -> Any:
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(_ODD)(rng)
    if rng.random() < 0.5:
        return [_odd_tree(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["a", 1, 2.5, None, True]): _odd_tree(rng, depth - 1) for _ in range(3)}


def test_json_safe_always_yields_strict_json_seeded_mix() -> None:
    rng = random.Random(20261202)
    for _ in range(500):
        json.dumps(json_safe(_odd_tree(rng, 4)), allow_nan=False)


def test_journal_writer_converts_a_plugins_odd_effect(
    journal: dict[str, Any], tmp_path: Path
) -> None:
    j = copy.deepcopy(journal)
    j["faults"][0]["effect"] = {"pids": {3, 1}, "raw": b"\x00\x01", "ratio": math.nan,
                                "handle": _Opaque()}
    files.write_journal(j, tmp_path / "j.json")
    effect = json.loads((tmp_path / "j.json").read_text())["faults"][0]["effect"]
    assert effect == {"pids": [1, 3], "raw": "\x00\x01", "ratio": None, "handle": "<Opaque>"}


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2, 3]", "top level is a JSON array"),
        ('{"name": "package.json"}', "no 'metrics'"),
        ('{"metrics": [1]}', r"Expected `object`, got `array` - at `\$.metrics`"),
        ('{"metrics": {}, "checks": "none"}', r"Expected `array`, got `str` - at `\$.checks`"),
        ('{"metrics": {}, "timeline": [1, 2]}', r"got `int` - at `\$.timeline\[0\]`"),
        ('{"metrics": {"total": "many"}}', r"Expected `int`, got `str` - at `\$.metrics.total`"),
        ('{"metrics": {}, "faults": [{"targets": [{"pid": "x"}]}]}',
         r"at `\$.faults\[0\].targets\[0\].pid`"),
        ('{"process": 0, "type": "invoke"}\n{"process": 0, "type": "ok"}', "invalid JSON"),
    ],
)
def test_read_journal_refuses_foreign_files_in_one_line(
    content: str, why: str, tmp_path: Path
) -> None:
    path = tmp_path / "j.json"
    path.write_text(content)
    with pytest.raises(JournalFormatError, match=why) as info:
        read_journal(path)
    assert "\n" not in str(info.value)


def test_read_journal_locates_broken_json(tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    path.write_text('{\n  "metrics": {,\n}')
    with pytest.raises(JournalFormatError) as info:
        read_journal(path)
    assert (info.value.line, info.value.column) == (2, 15)
