"""The generated reference pages match the code (``python -m chaospool._docgen --check``)."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


def _require(*modules: str) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            pytest.skip(f"{name} is not importable yet ({exc}): the docs are generated from it")


@pytest.fixture
def docgen() -> Any:
    _require("chaospool._plugins", "chaospool._faults", "chaospool._dsl.model")
    return importlib.import_module("chaospool._docgen")


def test_committed_docs_are_current(docgen: Any) -> None:
    stale = docgen.stale_pages()
    assert not stale, "docs out of date; run `python -m chaospool._docgen`:\n" + "\n".join(
        stale.values())


def test_check_exits_nonzero_on_a_stale_page(docgen: Any, tmp_path: Path) -> None:
    runner = CliRunner()
    written = runner.invoke(docgen.main, ["--docs-dir", str(tmp_path)])
    assert written.exit_code == 0, written.output
    assert runner.invoke(docgen.main, ["--check", "--docs-dir", str(tmp_path)]).exit_code == 0
    page = tmp_path / "faults.md"
    page.write_text(page.read_text().replace("port_crash", "port_krash", 1))
    stale = runner.invoke(docgen.main, ["--check", "--docs-dir", str(tmp_path)])
    assert stale.exit_code == 1
    assert "docs/faults.md is out of date" in stale.output


def test_every_builtin_fault_is_documented_with_its_params(docgen: Any) -> None:
    page = docgen.faults_page()
    for cls in docgen.builtin_faults():
        assert f"## `{cls.name}`" in page
        for name, _annotation, _default in docgen._params(cls):
            assert f"| `{name}` |" in page
    assert "| `latency` | `duration` | `200ms` |" in page  # units printed as a user writes them


def test_every_dsl_key_is_documented(docgen: Any) -> None:
    page = docgen.dsl_page()
    for doc in docgen._describe_model():
        assert f"| `{doc.path}` |" in page


def test_fault_examples_are_valid_steps(docgen: Any) -> None:
    """Each page's example step passes the real loader."""
    _require("chaospool._dsl.loader")
    from chaospool._dsl.loader import load
    from chaospool._plugins import fault_registry, plugin_manager

    registry = fault_registry(plugin_manager())
    # each on a pool it can act on: the node faults need Ray (Fault.backends)
    with_ray = importlib.util.find_spec("ray") is not None
    for backend in ("process", "ray") if with_ray else ("process",):
        mine = [cls for cls in docgen.builtin_faults() if backend in (cls.backends or (backend,))]
        method = [docgen.example_step(cls) for cls in mine]
        experiment = load({"version": 1, "method": method, "pool": {
            "worker": "chaospool.workers.demo", "backend": backend}}, registry=registry)
        assert [s.fault for s in experiment.method] == [cls.name for cls in mine]
