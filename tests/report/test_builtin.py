"""The built-in reporters are registered through the plugin hook and write real files."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from chaospool._plugins import plugin_manager, reporters

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


def test_html_and_junit_reporters_are_registered() -> None:
    found = reporters(plugin_manager())
    assert {"html", "junit"} <= set(found)


def test_registered_reporters_write_their_files(journal: dict[str, Any], tmp_path: Path) -> None:
    found = reporters(plugin_manager())
    found["html"].write(journal, str(tmp_path / "r.html"))
    found["junit"].write(journal, str(tmp_path / "r.xml"))
    assert "<svg" in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert ET.parse(tmp_path / "r.xml").getroot().get("tests") == "5"


def test_every_builtin_output_is_a_reporter_registered_through_the_hook() -> None:
    from chaospool._report.builtin import BUILTIN_REPORTERS
    from chaospool.hookspecs import Reporter

    pm = plugin_manager()
    impls = pm.hook.chaospool_register_reporters.get_hookimpls()
    assert [i.plugin_name for i in impls] == ["chaospool._report.builtin"]
    found = reporters(pm)
    assert list(found) == ["journal", "html", "junit", "terminal"]
    assert all(isinstance(r, Reporter) for r in found.values())
    assert tuple(found.values()) == BUILTIN_REPORTERS


def test_terminal_reporter_writes_the_plain_summary(
    journal: dict[str, Any], tmp_path: Path
) -> None:
    reporters(plugin_manager())["terminal"].write(journal, str(tmp_path / "summary.txt"))
    text = (tmp_path / "summary.txt").read_text(encoding="utf-8")
    assert "\x1b[" not in text
    assert "chaospool run experiments/cascade.yaml --seed 42" in text
