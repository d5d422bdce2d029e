"""A plugin in a temp dir, found all three ways -- entry point, --plugin, an experiment's
``plugins:`` -- through the real command line; and a broken plugin reported with its name."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.system, pytest.mark.timeout(60)]

CLI = str(Path(sys.executable).with_name("chaospool"))

PLUGIN = '''
import dataclasses
from chaospool.fault import Fault
from chaospool.hookspecs import hookimpl

class Hiccup(Fault):
    """Pauses the target worker briefly."""
    name = "hiccup"

    @dataclasses.dataclass
    class Params:
        pause: float = 0.25

    async def inject(self, ctx):
        ctx.record(paused=[t.pid for t in ctx.targets])

@hookimpl
def chaospool_register_faults():
    return [Hiccup]
'''

EXPERIMENT = """
version: 1
duration: 1s
plugins: [{spec}]
pool: {{worker: chaospool.workers.demo, size: 1}}
method:
  - {{fault: hiccup, at: 100ms, pause: 0.5}}
"""


def hiccup(result: pytest.RunResult) -> dict[str, object]:
    assert result.ret == 0, result.stderr.str()
    catalogue: list[dict[str, object]] = json.loads(result.stdout.str())
    [entry] = [f for f in catalogue if f["name"] == "hiccup"]
    return entry


def test_entry_point(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    site = pytester.mkdir("site")
    (site / "hiccup_faults.py").write_text(PLUGIN)
    info = site / "hiccup_dist-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hiccup-dist\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[chaospool]\nhiccup = hiccup_faults\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    entry = hiccup(pytester.run(CLI, "faults", "--json"))
    contract_keys = ("name", "description", "params", "source")  # the rest is additive
    assert {k: entry[k] for k in contract_keys} == {
        "name": "hiccup",
        "description": "Pauses the target worker briefly.",
        "params": {"pause": 0.25},
        "source": "hiccup_faults",
    }
    assert entry["types"] == {"pause": "number"}


def test_plugin_option_path_and_module(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.mkdir("lib")
    (pytester.path / "lib" / "hiccup_mod.py").write_text(PLUGIN)
    source = hiccup(pytester.run(CLI, "faults", "--json", "--plugin", "lib/hiccup_mod.py"))
    assert source["source"] == "chaospool_plugins.hiccup_mod"
    monkeypatch.setenv("PYTHONPATH", str(pytester.path / "lib"))
    assert hiccup(pytester.run(CLI, "faults", "--json", "--plugin", "hiccup_mod"))["source"] == (
        "hiccup_mod"
    )


def test_experiment_plugins_relative_to_the_file(pytester: pytest.Pytester) -> None:
    pytester.mkdir("exp")
    pytester.mkdir("plugins")
    (pytester.path / "plugins" / "hiccup.py").write_text(PLUGIN)
    experiment = pytester.path / "exp" / "hiccup.yaml"
    experiment.write_text(EXPERIMENT.format(spec="../plugins/hiccup.py"))
    result = pytester.run(CLI, "validate", str(experiment))
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    # without the plugin, the fault is unknown: the plugin really is what made it valid
    experiment.write_text(EXPERIMENT.format(spec="../plugins/hiccup.py").replace("plugins:", "#"))
    assert pytester.run(CLI, "validate", str(experiment)).ret == 2


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import chaospool\nraise RuntimeError('no licence server')\n", "failed to import: "),
        (
            "from chaospool.hookspecs import hookimpl\n\n@hookimpl\n"
            "def chaospool_register_fault():\n    return []\n",
            "unknown hook 'chaospool_register_fault' (did you mean 'chaospool_register_faults'?)",
        ),
    ],
    ids=["import", "registration"],
)
def test_broken_plugin_is_named(pytester: pytest.Pytester, source: str, expected: str) -> None:
    (pytester.path / "broken.py").write_text(textwrap.dedent(source))
    result = pytester.run(CLI, "faults", "--json", "--plugin", "broken.py")
    assert result.ret == 2
    assert "plugin '" in result.stderr.str()
    assert "broken" in result.stderr.str()
    assert expected in result.stderr.str()


def test_missing_experiment_plugin_is_named(pytester: pytest.Pytester) -> None:
    (pytester.path / "hiccups.py").write_text(PLUGIN)
    experiment = pytester.path / "exp.yaml"
    experiment.write_text(EXPERIMENT.format(spec="hiccup.py"))
    result = pytester.run(CLI, "validate", str(experiment))
    assert result.ret == 2
    result.stderr.fnmatch_lines(
        ["*plugin '*hiccup.py': no such file*(did you mean 'hiccups.py'?)*"]
    )
