"""The layers of docs/design.md hold: the import-linter contracts in pyproject.toml are kept.

The same check runs in CI (``lint-imports`` in .ci/run); this test makes a broken layer fail
the suite where a developer sees it first.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]


def test_import_contracts_are_kept() -> None:
    if not LINT_IMPORTS.exists():
        pytest.fail("lint-imports is missing: pip install -e '.[test]' installs import-linter")
    out = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True,
                         text=True, timeout=110, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout
    # every contract is one the design names: none was dropped to make the check pass
    for contract in ("the pool knows nothing of the DSL", "the DSL knows nothing of the engine",
                     "the engine does not import the package facade",
                     "no import cycle inside the pool", "the worker runtime imports nothing",
                     "the journal model sits below the engine"):
        assert f"{contract}" in out.stdout.replace("\n", " ")
