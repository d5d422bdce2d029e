"""The fault registry validates what plugins return and names the plugin at fault."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from chaospool._plugins import PluginLoadError, fault_registry, plugin_manager, reporters

WritePlugin = Callable[..., Path]

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

HEADER = """
import dataclasses
import chaospool

"""


def registry_error(write_plugin: WritePlugin, tmp_path: Path, body: str) -> PluginLoadError:
    write_plugin("bad_faults.py", HEADER + body)
    pm = plugin_manager(["bad_faults.py"], base_dir=tmp_path)
    with pytest.raises(PluginLoadError) as info:
        fault_registry(pm)
    assert info.value.plugin == "chaospool_plugins.bad_faults"
    return info.value


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "@chaospool.hookimpl\ndef chaospool_register_faults():\n    return [42]\n",
            "42 is not a subclass of chaospool.Fault",
        ),
        (
            "@chaospool.hookimpl\ndef chaospool_register_faults():\n    return 'freeze'\n",
            "must return a list of Fault classes",
        ),
        (
            "@chaospool.hookimpl\ndef chaospool_register_faults():\n    raise KeyError('x')\n",
            "chaospool_register_faults raised KeyError: 'x'",
        ),
        (
            "class F(chaospool.Fault):\n    async def inject(self, ctx): pass\n"
            "@chaospool.hookimpl\ndef chaospool_register_faults():\n    return [F]\n",
            "fault class F needs a name",
        ),
        (
            "class F(chaospool.Fault):\n    name = 'has space'\n"
            "    async def inject(self, ctx): pass\n"
            "@chaospool.hookimpl\ndef chaospool_register_faults():\n    return [F]\n",
            "needs a name",
        ),
        (
            "class F(chaospool.Fault):\n    name = 'f'\n    class Params: pass\n"
            "    async def inject(self, ctx): pass\n"
            "@chaospool.hookimpl\ndef chaospool_register_faults():\n    return [F]\n",
            "Params must be a @dataclasses.dataclass class",
        ),
        (
            "class F(chaospool.Fault):\n    name = 'f'\n"
            "    @dataclasses.dataclass\n    class Params:\n        target: int = 0\n"
            "    async def inject(self, ctx): pass\n"
            "@chaospool.hookimpl\ndef chaospool_register_faults():\n    return [F]\n",
            "clash with a fault step's common keys",
        ),
        (
            "class F(chaospool.Fault):\n    name = 'f'\n    def inject(self, ctx): pass\n"
            "@chaospool.hookimpl\ndef chaospool_register_faults():\n    return [F]\n",
            "inject must be an async def method",
        ),
        (
            "class F(chaospool.Fault):\n    name = 'f'\n"
            "@chaospool.hookimpl\ndef chaospool_register_faults():\n    return [F]\n",
            "does not implement inject",
        ),
    ],
    ids=[
        "not-a-class",
        "not-a-list",
        "hook-raises",
        "no-name",
        "bad-name",
        "params-not-dataclass",
        "params-clash",
        "sync-inject",
        "no-inject",
    ],
)
def test_bad_fault_is_refused(
    write_plugin: WritePlugin, tmp_path: Path, body: str, expected: str
) -> None:
    assert expected in registry_error(write_plugin, tmp_path, body).message


def test_duplicate_fault_name_names_both_sides(write_plugin: WritePlugin, tmp_path: Path) -> None:
    write_plugin("first.py", fault="freeze")
    write_plugin("second.py", fault="freeze")
    pm = plugin_manager(["first.py", "second.py"], base_dir=tmp_path)
    with pytest.raises(PluginLoadError) as info:
        fault_registry(pm)
    assert info.value.plugin == "chaospool_plugins.second"
    assert "already provided by chaospool_plugins.first" in info.value.message


def test_a_duration_param_is_allowed(write_plugin: WritePlugin, tmp_path: Path) -> None:
    write_plugin("ok.py")  # the standard test plugin has Params.duration
    assert "freeze" in fault_registry(plugin_manager(["ok.py"], base_dir=tmp_path))


def test_none_means_no_faults(write_plugin: WritePlugin, tmp_path: Path) -> None:
    write_plugin(
        "none.py",
        HEADER + "@chaospool.hookimpl\ndef chaospool_register_faults():\n    return None\n",
    )
    pm = plugin_manager(["none.py"], base_dir=tmp_path)
    assert fault_registry(pm) == fault_registry(plugin_manager())


def test_required_param_has_null_default(write_plugin: WritePlugin, tmp_path: Path) -> None:
    from chaospool._plugins import describe_faults

    write_plugin(
        "req.py",
        HEADER + "class F(chaospool.Fault):\n    name = 'req'\n"
        "    @dataclasses.dataclass\n    class Params:\n        level: int\n"
        "        tags: list = dataclasses.field(default_factory=lambda: ['a'])\n"
        "    async def inject(self, ctx): pass\n"
        "@chaospool.hookimpl\ndef chaospool_register_faults():\n    return [F]\n",
    )
    [entry] = [
        d
        for d in describe_faults(plugin_manager(["req.py"], base_dir=tmp_path))
        if d["name"] == "req"
    ]
    assert entry["params"] == {"level": None, "tags": ["a"]}
    assert entry["description"] == "req"  # no docstring: the name


def test_reporters_are_collected_and_validated(write_plugin: WritePlugin, tmp_path: Path) -> None:
    write_plugin(
        "rep.py",
        """
        import chaospool

        class Csv:
            name = "csv"
            def write(self, journal, path):
                pass

        @chaospool.hookimpl
        def chaospool_register_reporters():
            return [Csv()]
        """,
    )
    write_plugin(
        "badrep.py",
        "import chaospool\n\n@chaospool.hookimpl\n"
        "def chaospool_register_reporters():\n    return [object()]\n",
    )
    assert "csv" in reporters(plugin_manager(["rep.py"], base_dir=tmp_path))
    with pytest.raises(PluginLoadError, match="is not a reporter"):
        reporters(plugin_manager(["badrep.py"], base_dir=tmp_path))


def test_fault_source(write_plugin: WritePlugin, tmp_path: Path) -> None:
    from chaospool._plugins import fault_source

    write_plugin("src.py")
    pm = plugin_manager(["src.py"], base_dir=tmp_path)
    registry = fault_registry(pm)
    assert fault_source(pm, registry["freeze"]) == "chaospool_plugins.src"
    with pytest.raises(KeyError):
        fault_source(pm, type("Other", (registry["freeze"],), {}))


def test_a_reporter_name_is_taken_once(write_plugin: WritePlugin, tmp_path: Path) -> None:
    write_plugin(
        "html_again.py",
        """
        import chaospool

        class Html:
            name = "html"
            def write(self, journal, path):
                pass

        @chaospool.hookimpl
        def chaospool_register_reporters():
            return [Html()]
        """,
    )
    with pytest.raises(PluginLoadError, match="reporter 'html' is already registered"):
        reporters(plugin_manager(["html_again.py"], base_dir=tmp_path))
