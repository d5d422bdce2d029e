"""Helpers for the plugin tests: write plugin files and fake installed distributions."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

FAULT_PLUGIN = '''
import dataclasses
import chaospool

class Freeze(chaospool.Fault):
    """Stops the target worker for a while."""
    name = "{name}"

    @dataclasses.dataclass
    class Params:
        duration: float = 1.0
        how: str = "stop"

    async def inject(self, ctx):
        ctx.record(frozen=[t.pid for t in ctx.targets])

    async def revert(self, ctx):
        ctx.record(thawed=True)

@chaospool.hookimpl
def chaospool_register_faults():
    return [Freeze]
'''


@pytest.fixture(autouse=True)
def _forget_plugin_modules() -> Iterator[None]:
    """Plugin modules imported by a test must not leak into the next one."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


WritePlugin = Callable[..., Path]


@pytest.fixture
def fault_plugin_source() -> str:
    """A plugin with one fault; ``.format(name=...)`` names the fault."""
    return FAULT_PLUGIN


@pytest.fixture
def write_plugin(tmp_path: Path) -> WritePlugin:
    """``write_plugin("name.py", source=None, fault="freeze")`` -> the file's path."""

    def write(filename: str, source: str | None = None, fault: str = "freeze") -> Path:
        path = tmp_path / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        text = FAULT_PLUGIN.format(name=fault) if source is None else textwrap.dedent(source)
        path.write_text(text)
        return path

    return write


@pytest.fixture
def install_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, str, str], None]:
    """Install a fake distribution whose ``chaospool`` entry point ``name`` is ``module``."""

    def install(name: str, module: str, source: str) -> None:
        site = tmp_path / "site"
        (site / f"{module}.py").parent.mkdir(parents=True, exist_ok=True)
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{module}_dist-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {module}-dist\nVersion: 1.0\n"
        )
        (info / "entry_points.txt").write_text(f"[chaospool]\n{name} = {module}\n")
        monkeypatch.syspath_prepend(str(site))

    return install
