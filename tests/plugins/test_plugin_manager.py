"""Plugin discovery and registration: the three ways in, and every way to fail."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from chaospool._plugins import (
    PluginLoadError,
    describe_faults,
    fault_registry,
    load_plugins,
    plugin_manager,
)

WritePlugin = Callable[..., Path]

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


def test_no_specs_gives_a_working_manager() -> None:
    pm = plugin_manager()
    assert isinstance(fault_registry(pm), dict)
    assert pm.hook.chaospool_pool_event is not None


def test_file_spec_relative_to_base_dir(write_plugin: WritePlugin, tmp_path: Path) -> None:
    write_plugin("plugins/freezer.py")
    pm = plugin_manager(["plugins/freezer.py"], base_dir=tmp_path)
    registry = fault_registry(pm)
    assert registry["freeze"].name == "freeze"
    [entry] = [d for d in describe_faults(pm) if d["name"] == "freeze"]
    assert entry == {
        "name": "freeze",
        "description": "Stops the target worker for a while.",
        "params": {"duration": 1.0, "how": "stop"},
        "source": "chaospool_plugins.freezer",
    }


def test_file_spec_relative_to_cwd(
    write_plugin: WritePlugin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_plugin("freezer.py")
    monkeypatch.chdir(tmp_path)
    assert "freeze" in fault_registry(plugin_manager(["freezer.py"]))


def test_absolute_file_spec(write_plugin: WritePlugin) -> None:
    path = write_plugin("freezer.py")
    assert "freeze" in fault_registry(plugin_manager([str(path)], base_dir=Path("/nonexistent")))


def test_module_spec(
    write_plugin: WritePlugin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_plugin("freeze_faults.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = plugin_manager(["freeze_faults"])
    [entry] = [d for d in describe_faults(pm) if d["name"] == "freeze"]
    assert entry["source"] == "freeze_faults"


def test_entry_point(
    install_entry_point: Callable[[str, str, str], None], fault_plugin_source: str
) -> None:
    install_entry_point(
        "freezing", "ep_freeze_plugin", fault_plugin_source.format(name="ep_freeze")
    )
    pm = plugin_manager()
    assert pm.has_plugin("freezing")
    [entry] = [d for d in describe_faults(pm) if d["name"] == "ep_freeze"]
    assert entry["source"] == "ep_freeze_plugin"


def test_entry_point_import_failure_names_it(
    install_entry_point: Callable[[str, str, str], None],
) -> None:
    install_entry_point("broken", "ep_broken_plugin", "raise RuntimeError('no database')\n")
    with pytest.raises(PluginLoadError, match=r"plugin 'broken': entry point .*no database"):
        plugin_manager()


def test_same_file_twice_is_one_plugin(write_plugin: WritePlugin, tmp_path: Path) -> None:
    path = write_plugin("freezer.py")
    pm = plugin_manager(["freezer.py", str(path)], base_dir=tmp_path)
    names = load_plugins(pm, ["./freezer.py"], base_dir=tmp_path)
    assert names == ["chaospool_plugins.freezer"]
    assert list(fault_registry(pm)).count("freeze") == 1


def test_two_files_with_one_stem_are_two_plugins(write_plugin: WritePlugin, tmp_path: Path) -> None:
    write_plugin("a/faults.py", fault="one")
    write_plugin("b/faults.py", fault="two")
    names = load_plugins(plugin_manager(), ["a/faults.py", "b/faults.py"], base_dir=tmp_path)
    assert names[0] == "chaospool_plugins.faults"
    assert names[1].startswith("chaospool_plugins.faults_")


def test_missing_file_suggests_a_close_name(write_plugin: WritePlugin, tmp_path: Path) -> None:
    write_plugin("byzantine.py")
    with pytest.raises(PluginLoadError) as info:
        plugin_manager(["byzantin.py"], base_dir=tmp_path)
    assert info.value.plugin == "byzantin.py"
    assert "no such file" in str(info.value)
    assert "did you mean 'byzantine.py'?" in str(info.value)


def test_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(PluginLoadError, match=r"directory .*nope is missing"):
        plugin_manager(["nope/x.py"], base_dir=tmp_path)


def test_missing_module(write_plugin: WritePlugin, tmp_path: Path) -> None:
    write_plugin("freezer.py")
    with pytest.raises(PluginLoadError) as info:
        plugin_manager(["freezr"], base_dir=tmp_path)
    assert str(info.value).startswith("plugin 'freezr': no module named 'freezr'")
    assert "did you mean 'freezer.py'?" in str(info.value)


def test_module_name_found_in_the_experiments_directory_first(
    write_plugin: WritePlugin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plugins by module name resolve as pool.worker does (docs/plugins.md)."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # the experiment's directory goes first
    write_plugin("freezer_here.py")
    pm = plugin_manager(["freezer_here"], base_dir=tmp_path)
    assert "freeze" in fault_registry(pm)


def test_empty_spec() -> None:
    with pytest.raises(PluginLoadError, match="empty plugin spec"):
        plugin_manager([""])


def test_import_failure_names_plugin_and_line(write_plugin: WritePlugin, tmp_path: Path) -> None:
    write_plugin("boom.py", "import chaospool\n\nx = 1 / 0\n")
    with pytest.raises(PluginLoadError) as info:
        plugin_manager(["boom.py"], base_dir=tmp_path)
    assert info.value.plugin == "boom.py"
    assert "ZeroDivisionError: division by zero" in info.value.message
    assert f"{tmp_path / 'boom.py'}:3" in info.value.message


def test_syntax_error(write_plugin: WritePlugin, tmp_path: Path) -> None:
    write_plugin("bad.py", "def (:\n")
    with pytest.raises(PluginLoadError, match=r"plugin 'bad.py': failed to import: SyntaxError"):
        plugin_manager(["bad.py"], base_dir=tmp_path)


def test_failed_import_can_be_retried(write_plugin: WritePlugin, tmp_path: Path) -> None:
    path = write_plugin("flaky.py", "raise ImportError('not yet')\n")
    with pytest.raises(PluginLoadError):
        plugin_manager(["flaky.py"], base_dir=tmp_path)
    path.write_text("X = 1\n")
    assert load_plugins(plugin_manager(), ["flaky.py"], base_dir=tmp_path)


def test_unknown_hook_suggests_the_real_one(write_plugin: WritePlugin, tmp_path: Path) -> None:
    write_plugin(
        "typo.py",
        """
        import chaospool

        @chaospool.hookimpl
        def chaospool_regster_faults():
            return []
        """,
    )
    with pytest.raises(PluginLoadError) as info:
        plugin_manager(["typo.py"], base_dir=tmp_path)
    assert "unknown hook 'chaospool_regster_faults'" in str(info.value)
    assert "did you mean 'chaospool_register_faults'?" in str(info.value)


def test_wrong_hook_arguments_are_a_registration_error(
    write_plugin: WritePlugin, tmp_path: Path
) -> None:
    write_plugin(
        "args.py",
        """
        import chaospool

        @chaospool.hookimpl
        def chaospool_experiment_start(experiment, seed, colour):
            pass
        """,
    )
    with pytest.raises(PluginLoadError, match=r"plugin 'chaospool_plugins.args': invalid hook"):
        plugin_manager(["args.py"], base_dir=tmp_path)


def test_unmarked_hook_function_is_refused(write_plugin: WritePlugin, tmp_path: Path) -> None:
    write_plugin("unmarked.py", "def chaospool_register_faults():\n    return []\n")
    with pytest.raises(PluginLoadError, match=r"not marked with @chaospool\.hookimpl"):
        plugin_manager(["unmarked.py"], base_dir=tmp_path)


def test_wrapper_on_a_notification_hook_is_refused(
    write_plugin: WritePlugin, tmp_path: Path
) -> None:
    write_plugin(
        "wrap.py",
        """
        import chaospool

        @chaospool.hookimpl(wrapper=True)
        def chaospool_pool_event(event):
            return (yield)
        """,
    )
    with pytest.raises(PluginLoadError, match="wrappers are not supported"):
        plugin_manager(["wrap.py"], base_dir=tmp_path)


def test_a_refused_plugin_is_not_left_registered(write_plugin: WritePlugin, tmp_path: Path) -> None:
    write_plugin(
        "typo2.py",
        """
        import chaospool

        @chaospool.hookimpl
        def chaospool_pool_evnt(event):
            pass
        """,
    )
    pm = plugin_manager()
    with pytest.raises(PluginLoadError):
        load_plugins(pm, ["typo2.py"], base_dir=tmp_path)
    assert not pm.has_plugin("chaospool_plugins.typo2")


def test_builtins_register_through_the_same_hooks() -> None:
    pm = plugin_manager()
    assert pm.has_plugin("chaospool._faults")
    builtin = {d["name"] for d in describe_faults(pm) if d["source"] == "builtin"}
    assert builtin >= {
        "port_crash",
        "timeout",
        "network_partition",
        "resource_exhaustion",
        "thundering_herd",
        "slow_worker",
        "memory_leak",
    }


def test_a_plugin_cannot_take_a_builtin_fault_name(
    write_plugin: WritePlugin, tmp_path: Path
) -> None:
    write_plugin("impostor.py", fault="port_crash")
    with pytest.raises(PluginLoadError) as info:
        fault_registry(plugin_manager(["impostor.py"], base_dir=tmp_path))
    assert info.value.plugin == "chaospool_plugins.impostor"
    assert "'port_crash' is already provided by builtin" in info.value.message
