"""JUnit XML from a journal: one ``<testcase>`` per tolerance check, for CI dashboards.

A failed check is a ``<failure>`` whose message says what was expected and what was observed.
A run whose status is ``failed`` or ``aborted`` adds one ``<testcase name="run">`` carrying an
``<error>``, so a CI that only counts failures still sees a broken run with no failed check.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chaospool._journal import Check, Journal, as_journal
from chaospool._report._format import (
    check_name,
    experiment_title,
    fmt_metric,
    problems,
    reproduce_command,
)
from chaospool._report.files import write_text_atomic

__all__ = ("junit_element", "render_junit", "write_junit", "xml_text")

# ANSI escape sequences (colours from worker logs, cursor moves): CSI, OSC and two-byte forms.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
# What XML 1.0 cannot hold at all, even escaped: most C0 controls, surrogates, U+FFFE/U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _classname(journal: Journal) -> str:
    return f"chaospool.{experiment_title(journal)}"


def _check_case(suite: ET.Element, check: Check, classname: str) -> bool:
    """Add one check's testcase; True when it failed."""
    case = ET.SubElement(suite, "testcase", name=check_name(check), classname=classname,
                         time="0")
    if check.ok:
        return False
    observed = fmt_metric(check.metric, check.observed)
    message = f"expected {check.metric} {check.expected}, observed {observed}"
    failure = ET.SubElement(case, "failure", message=message, type="ToleranceFailed")
    failure.text = (
        f"check:    {check_name(check)}\nphase:    {check.phase}\n"
        f"expected: {check.expected}\nobserved: {check.observed!r} ({observed})\n"
    )
    return True


def _run_error(journal: Journal) -> str:
    return "; ".join([f"the run {journal.status}", *problems(journal)])


def _error_case(suite: ET.Element, journal: Journal, classname: str) -> None:
    case = ET.SubElement(suite, "testcase", name="run", classname=classname, time="0")
    error = ET.SubElement(case, "error", message=_run_error(journal),
                          type=f"Run{journal.status.capitalize()}")
    error.text = f"status: {journal.status}\nreproduce: {reproduce_command(journal)}\n"


def _properties(suite: ET.Element, journal: Journal) -> None:
    props = ET.SubElement(suite, "properties")
    exp = journal.experiment
    for name, value in (("seed", journal.seed), ("status", journal.status),
                        ("experiment", exp.path), ("sha256", exp.sha256),
                        ("reproduce", reproduce_command(journal))):
        if value is not None:
            ET.SubElement(props, "property", name=name, value=str(value))


def _duration(journal: Journal) -> float:
    if isinstance(journal.elapsed, int | float):
        return float(journal.elapsed)
    timeline = journal.timeline
    if len(timeline) < 2:
        return 0.0
    width = timeline[1].t - timeline[0].t
    return float(timeline[-1].t + width)


def junit_element(journal: Journal | Mapping[str, Any]) -> ET.Element:
    """Build the ``<testsuites>`` element (one ``<testsuite>``) of a journal."""
    journal = as_journal(journal)
    classname = _classname(journal)
    root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", name=classname,
                          timestamp=str(journal.started_at or ""))
    _properties(suite, journal)
    checks = journal.checks
    failures = sum(_check_case(suite, c, classname) for c in checks)
    errors = 0
    if journal.status in ("failed", "aborted"):
        _error_case(suite, journal, classname)
        errors = 1
    counts = {"tests": len(checks) + errors, "failures": failures, "errors": errors,
              "skipped": 0, "time": f"{_duration(journal):.3f}"}
    suite.attrib.update({k: str(v) for k, v in counts.items()})
    root.attrib.update({k: str(v) for k, v in counts.items() if k != "skipped"})
    return root


def xml_text(text: str) -> str:
    """``text`` with ANSI codes removed and every character XML 1.0 forbids shown as ``\\xNN``.

    ElementTree escapes ``<``, ``&`` and ``>`` (so ``]]>`` is harmless) but writes a control
    character as it is, which makes the whole document unreadable to a CI server -- on the
    failing run, exactly when it matters.
    """
    return _NOT_XML.sub(_escape_char, _ANSI.sub("", text))


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _clean_tree(root: ET.Element) -> None:
    for element in root.iter():
        if element.text:
            element.text = xml_text(element.text)
        if element.tail:
            element.tail = xml_text(element.tail)
        for key, value in element.attrib.items():
            element.attrib[key] = xml_text(value)


def render_junit(journal: Journal | Mapping[str, Any]) -> str:
    """The JUnit XML document as text (UTF-8, with an XML declaration); always well-formed."""
    root = junit_element(journal)
    _clean_tree(root)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(journal: Journal | Mapping[str, Any], path: str | Path) -> None:
    """Write :func:`render_junit` to ``path`` atomically (the earlier file stays whole on error)."""
    write_text_atomic(path, render_junit(journal))
