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
