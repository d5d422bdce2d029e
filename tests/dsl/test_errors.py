"""Invalid experiments: every problem at once, each located (FILE:LINE:COL) and explained."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from dsl_fakes import REGISTRY, experiment

from chaospool._dsl import MAPPING_FILE, load
from chaospool.errors import ErrorLocation, ExperimentError

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

HEAD = "version: 1\npool:\n  worker: chaospool.workers.demo\n"


def errors_of(tmp_path: pathlib.Path, text: str, **kwargs: Any) -> list[ErrorLocation]:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    with pytest.raises(ExperimentError) as info:
        load(path, registry=kwargs.pop("registry", REGISTRY), **kwargs)
    assert str(info.value) == "\n".join(str(e) for e in info.value.errors)
    return info.value.errors


def mapping_errors(source: dict[str, Any], **kwargs: Any) -> list[ErrorLocation]:
    with pytest.raises(ExperimentError) as info:
        load(source, registry=REGISTRY, **kwargs)
    return info.value.errors


def only(errors: list[ErrorLocation]) -> ErrorLocation:
    assert len(errors) == 1, errors
    return errors[0]


def where(error: ErrorLocation) -> tuple[int, int]:
    return error.line, error.column


# -- YAML itself ------------------------------------------------------------------------------


def test_bad_yaml_syntax_is_one_located_error(tmp_path: pathlib.Path) -> None:
    error = only(errors_of(tmp_path, HEAD + "load: {clients: 4\nmethod: []\n"))
    assert error.file == str(tmp_path / "exp.yaml")
    assert error.line >= 4
    assert error.message.startswith("invalid YAML")


def test_bad_indentation(tmp_path: pathlib.Path) -> None:
    error = only(errors_of(tmp_path, "version: 1\npool:\n  worker: x\n size: 3\n"))
    assert error.line == 4
    assert "invalid YAML" in error.message


@pytest.mark.parametrize(
    "tag",
    ["!!python/object:os.system", "!!python/object/apply:os.system", "!!python/name:os.system",
     "!custom"],
)  # fmt: skip
def test_object_tags_are_refused(tmp_path: pathlib.Path, tag: str) -> None:
    error = only(errors_of(tmp_path, HEAD + f"title: {tag} ['echo hi']\n"))
    assert where(error) == (4, 8)
    assert error.path == "title"
    assert "not allowed" in error.message
    assert "plain data" in error.message


def test_every_unsafe_tag_is_reported(tmp_path: pathlib.Path) -> None:
    text = HEAD + "title: !!python/object:a.b x\ndescription: !!python/name:os.system ''\n"
    assert [where(e) for e in errors_of(tmp_path, text)] == [(4, 8), (5, 14)]


def test_duplicate_keys(tmp_path: pathlib.Path) -> None:
    error = only(errors_of(tmp_path, HEAD + "  size: 2\n  size: 3\n"))
    assert where(error) == (5, 3)
    assert "duplicate key 'size' (first at line 4)" in error.message


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_file(tmp_path: pathlib.Path, text: str) -> None:
    error = only(errors_of(tmp_path, text))
    assert where(error) == (1, 1)
    assert "empty" in error.message


def test_top_level_must_be_a_mapping(tmp_path: pathlib.Path) -> None:
    error = only(errors_of(tmp_path, "- version: 1\n"))
    assert "expected a mapping" in error.message


def test_missing_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ExperimentError) as info:
        load(tmp_path / "nope.yaml", registry=REGISTRY)
    error = only(info.value.errors)
    assert error.file == str(tmp_path / "nope.yaml")
    assert "cannot read" in error.message


def test_not_utf8(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_bytes(b"version: 1\ntitle: \xff\xfe\n")
    with pytest.raises(ExperimentError, match="UTF-8"):
        load(path, registry=REGISTRY)


def test_str_is_file_line_col_path_message(tmp_path: pathlib.Path) -> None:
    error = only(errors_of(tmp_path, HEAD + "  sise: 3\n"))
    assert str(error) == (
        f"{tmp_path / 'exp.yaml'}:4:3: pool.sise: unknown key 'sise' (did you mean 'size'?)"
    )


# -- keys and values --------------------------------------------------------------------------


def test_every_problem_at_once_sorted_by_place(tmp_path: pathlib.Path) -> None:
    text = """\
version: 2
duraton: 5s
pool:
  worker: chaospool.workers.demo
  size: 0
  strategy: lifu
  max_memory: -5MB
load:
  clients: many
steady_state:
  sucess_rate: ">= 0.95"
method:
  - fault: crsh
  - fault: slow
    latncy: 1s
"""
    errors = errors_of(tmp_path, text)
    assert [(e.line, e.path) for e in errors] == [
        (1, "version"),
        (2, "duraton"),
        (5, "pool.size"),
        (6, "pool.strategy"),
        (7, "pool.max_memory"),
        (9, "load.clients"),
        (11, "steady_state.sucess_rate"),
        (13, "method[0].fault"),
        (15, "method[1].latncy"),
    ]
    messages = [e.message for e in errors]
    assert "unsupported version 2" in messages[0]
    assert "did you mean 'duration'?" in messages[1]
    assert "expected int >= 1, got 0" in messages[2]
    assert "did you mean 'lifo'?" in messages[3]
    assert "'-5MB'" in messages[4]
    assert "expected an integer, got 'many'" in messages[5]
    assert "unknown metric 'sucess_rate' (did you mean 'success_rate'?)" in messages[6]
    assert "unknown fault 'crsh' (did you mean 'crash'?)" in messages[7]
    assert "unknown parameter 'latncy' of fault 'slow' (did you mean 'latency'?)" in messages[8]


def test_unknown_key_without_a_close_match_lists_the_keys(tmp_path: pathlib.Path) -> None:
    error = only(errors_of(tmp_path, HEAD + "load:\n  zzz: 1\n"))
    assert where(error) == (5, 3)
    assert "expected one of:" in error.message
    assert "clients" in error.message


def test_missing_required_keys() -> None:
    errors = mapping_errors({"pool": {"size": 2}})
    assert {e.message for e in errors} == {
        "missing required key 'version'",
        "missing required key 'worker'",
    }
    assert all((e.file, e.line, e.column) == (MAPPING_FILE, 1, 1) for e in errors)


def test_missing_pool(tmp_path: pathlib.Path) -> None:
    error = only(errors_of(tmp_path, "version: 1\n"))
    assert error.message == "missing required key 'pool'"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"pool": {"size": "four"}}, "expected an integer, got 'four'"),
        ({"pool": {"size": -1}}, "expected int >= 1, got -1"),
        ({"pool": {"size": True}}, "expected an integer, got true"),
        ({"pool": {"max_overflow": -1}}, "expected int >= 0, got -1"),
        ({"pool": {"worker": 3}}, "expected a string, got 3"),
        ({"pool": {"worker": "not a module"}}, "importable module"),
        ({"pool": {"checkout_timeout": "0s"}}, "expected duration > 0"),
        ({"pool": {"request_timeout": "soon"}}, "bad duration 'soon'"),
        ({"pool": {"max_memory": "lots"}}, "bad size 'lots'"),
        ({"pool": {"max_memory": -300}}, "expected a size"),
        ({"pool": {"max_requests": 0}}, "expected int >= 1"),
        ({"pool": {"lazy": "maybe"}}, "expected true or false, got 'maybe'"),
        ({"pool": {"restart": {"within": "-1s"}}}, "bad duration '-1s'"),
        ({"pool": {"restart": {"max_restart": 3}}}, "did you mean 'max_restarts'?"),
        ({"pool": {"health_check": 5}}, "expected a mapping, got 5"),
        ({"duration": "0s"}, "expected duration > 0"),
        ({"seed": "abc"}, "expected an integer"),
        ({"plugins": "x.py"}, "expected a list of strings"),
        ({"title": ["a"]}, "expected a string"),
        ({"load": {"rate": "fast"}}, "bad rate 'fast'"),
        ({"load": {"rate": 0}}, "expected rate > 0"),
        ({"load": {"retries": -1}}, "expected int >= 0"),
        ({"load": {"sessions": 0}}, "expected int >= 1"),
        ({"load": {"mix": []}}, "at least one command"),
        ({"load": {"mix": {"command": "ping"}}}, "expected a list"),
        ({"load": {"mix": [{"weight": 1}]}}, "missing required key 'command'"),
        ({"load": {"mix": [{"command": "ping", "weight": 0}]}}, "expected number > 0"),
        ({"load": {"mix": [{"command": "ping", "wieght": 2}]}}, "did you mean 'weight'?"),
        ({"steady_state": ["success_rate >= 1"]}, "expected a mapping"),
        ({"method": {"fault": "crash"}}, "expected a list"),
    ],
)
def test_bad_values(section: dict[str, Any], message: str) -> None:
    error = only(mapping_errors(experiment(**section)))
    assert message in error.message


@pytest.mark.parametrize(
    ("tolerance", "message"),
    [
        ({"success_rate": 0.95}, "an operator and a value"),
        ({"success_rate": "0.95"}, "expected an operator"),
        ({"success_rate": "=> 0.95"}, "expected an operator"),
        ({"success_rate": ">= 95"}, "did you mean '>= 95%'?"),
        ({"success_rate": "> 1s"}, "success_rate is a fraction"),
        ({"p99_latency": "< 95%"}, "p99_latency is a time"),
        ({"recovered": "> 1s"}, "recovered is a count"),
        ({"throughput": "> 5ms"}, "throughput is a rate"),
        ({"after": {"p99_latncy": "< 1s"}}, "did you mean 'p99_latency'?"),
        ({"durng": {"errors": "< 1"}}, "did you mean 'during'?"),
        ({"after": ">= 0.99"}, "expected a mapping"),
    ],
)
def test_bad_tolerances(tolerance: dict[str, Any], message: str) -> None:
    error = only(mapping_errors(experiment(steady_state=tolerance)))
    assert message in error.message


# -- method -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"at": "1s"}, "missing required key 'fault'"),
        ({"fault": 3}, "expected a fault name"),
        ({"fault": "nothing_like_it"}, "expected one of: crash, herd, leak, slow"),
        ({"fault": "crash", "at": "-1s"}, "bad duration '-1s'"),
        ({"fault": "crash", "at": "31s"}, "starts at 31s, not before the end of the run"),
        ({"fault": "crash", "at": "20s", "repeat": 3, "every": "5s"}, "last time at 30s"),
        ({"fault": "crash", "repeat": 0}, "expected int >= 1, got 0"),
        ({"fault": "crash", "repeat": 3}, "'every' (the time between repetitions) is required"),
        ({"fault": "crash", "repeat": 2, "every": "0s"}, "expected duration > 0"),
        ({"fault": "crash", "name": ""}, "cannot be empty"),
        ({"fault": "crash", "evry": "1s"}, "did you mean 'every'?"),
        ({"fault": "crash", "mode": "klil"}, "expected one of 'kill', 'close', got 'klil'"),
        ({"fault": "crash", "mode": "klil"}, "did you mean 'kill'?"),
        ({"fault": "crash", "signal": 1.5}, "expected a string or an integer, got 1.5"),
        ({"fault": "slow", "latency": "quick"}, "bad duration 'quick'"),
        ({"fault": "slow", "latency": True}, "expected a duration, got true"),
        ({"fault": "slow", "latency": "10ms", "jitter": "20ms"}, "jitter must not exceed"),
        ({"fault": "slow", "duration": "forever"}, "bad duration 'forever'"),
        ({"fault": "leak", "limit": "1.5B"}, "not a whole number of bytes"),
        ({"fault": "leak", "rate": "5MB"}, "bad rate '5MB'"),
        ({"fault": "herd"}, "missing parameter 'command' of fault 'herd'"),
        ({"fault": "herd", "command": "x", "requests": "many"}, "expected an integer"),
        ({"fault": "herd", "command": "x", "args": [1]}, "expected a mapping"),
        ({"fault": "herd", "command": "x", "tags": [1]}, "expected a string, got 1"),
        ({"fault": "herd", "command": "x", "window": "1"}, "expected a list"),
        ({"fault": "herd", "command": "x", "loud": 1}, "expected true or false"),
        ({"fault": "crash", "target": "al"}, "did you mean 'all'?"),
        ({"fault": "crash", "target": 3}, "expected 'all' or a mapping"),
        ({"fault": "crash", "target": {"worker": 7}}, "worker 7 does not exist"),
        ({"fault": "crash", "target": {"worker": -1}}, "expected int >= 0"),
        ({"fault": "crash", "target": {"workers": [0, 9]}}, "worker 9 does not exist"),
        ({"fault": "crash", "target": {"workers": [1, 1]}}, "repeat"),
        ({"fault": "crash", "target": {"workers": []}}, "non-empty list"),
        ({"fault": "crash", "target": {"count": 0}}, "expected int >= 1, got 0"),
        ({"fault": "crash", "target": {"count": 8}}, "count 8 exceeds the pool's 7 slot(s)"),
        ({"fault": "crash", "target": {"fraction": 0}}, "expected a fraction in (0, 1]"),
        ({"fault": "crash", "target": {"fraction": 1.5}}, "expected a fraction in (0, 1]"),
        ({"fault": "crash", "target": {"session": None}}, "expected a session id"),
        ({"fault": "crash", "target": {"worker": 0, "count": 1}}, "exactly one of"),
        ({"fault": "crash", "target": {"wroker": 0}}, "did you mean 'worker'?"),
        ("crash", "expected a fault step"),
    ],
)
def test_bad_steps(step: Any, message: str) -> None:
    errors = mapping_errors(experiment(pool={"size": 5, "max_overflow": 2}, method=[step]))
    assert message in only(errors).message


def test_duplicate_step_names() -> None:
    method = [{"fault": "crash", "name": "x"}, {"fault": "slow", "name": "x"}]
    error = only(mapping_errors(experiment(method=method)))
    assert error.path == "method[1].name"
    assert "already used by method[0]" in error.message


def test_step_errors_are_located(tmp_path: pathlib.Path) -> None:
    text = (
        HEAD
        + """\
method:
  - fault: slow
    at: 2s
    latency: fast
    target: {worker: 4}
"""
    )
    errors = errors_of(tmp_path, text)
    assert [(e.path, where(e)) for e in errors] == [
        ("method[0].latency", (7, 14)),
        ("method[0].target.worker", (8, 22)),
    ]


def test_a_broken_pool_does_not_hide_method_errors() -> None:
    source = experiment(pool={"size": "x"}, method=[{"fault": "crash", "mode": "no"}])
    assert [e.path for e in mapping_errors(source)] == ["pool.size", "method[0].mode"]


def test_registry_factory_failure_is_located_at_the_plugin(tmp_path: pathlib.Path) -> None:
    class PluginLoadError(Exception):
        def __init__(self, plugin: str, message: str) -> None:
            super().__init__(f"plugin {plugin!r}: {message}")
            self.plugin, self.message = plugin, message

    def factory(plugins: tuple[str, ...], base_dir: pathlib.Path) -> Any:
        raise PluginLoadError("b.py", "no such file")

    text = "version: 1\nplugins: [a, b.py]\npool: {worker: w}\nmethod: [{fault: crash}]\n"
    error = only(errors_of(tmp_path, text, registry=factory))
    assert (error.path, where(error)) == ("plugins[1]", (2, 14))
    assert error.message == "cannot load plugin 'b.py': no such file"


def test_alias_bombs_are_refused_quickly(tmp_path: pathlib.Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    error = only(errors_of(tmp_path, HEAD + "\n".join(lines) + "\n"))
    assert "too large" in error.message
