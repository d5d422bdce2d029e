"""Reporters selected by name on the command line, foreign journal files, and what the CLI
imports from the current directory (docs/reports.md, docs/getting-started.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.system, pytest.mark.timeout(90)]

CHAOSPOOL = Path(sys.executable).with_name("chaospool")

CSV_PLUGIN = '''
import csv
import chaospool

class CsvReporter:
    name = "csv"

    def write(self, journal, path):
        with open(path, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["metric", "phase", "expected", "observed", "ok"])
            for c in journal["checks"]:
                out.writerow([c["metric"], c["phase"], c["expected"], c["observed"], c["ok"]])

class Broken:
    name = "broken"

    def write(self, journal, path):
        raise RuntimeError("cannot draw this")

@chaospool.hookimpl
def chaospool_register_reporters():
    return [CsvReporter(), Broken()]
'''

# Would shadow an installed package if the CLI put the current directory first on sys.path.
HOSTILE = '''
import pathlib
pathlib.Path(__file__).with_name("HOSTILE_IMPORTED").write_text(__name__)
raise SystemExit("hostile module imported")
'''


def chaospool_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it (not ``python -m``, which adds cwd)."""
    return subprocess.run([str(CHAOSPOOL), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture
def journal_file(journal: dict[str, Any], tmp_path: Path) -> Path:
    path = tmp_path / "j.json"
    path.write_text(json.dumps(journal))
    return path


def test_report_writes_a_plugin_reporters_file_by_name(journal_file: Path) -> None:
    tmp = journal_file.parent
    (tmp / "csvrep.py").write_text(CSV_PLUGIN)
    out = chaospool_cli("report", str(journal_file), "--plugin", "csvrep.py",
                        "--report", "csv=checks.csv", "--report", "junit=r.xml", cwd=tmp)
    assert out.returncode == 0, out.stderr
    rows = (tmp / "checks.csv").read_text().splitlines()
    assert rows[0] == "metric,phase,expected,observed,ok"
    assert len(rows) == 1 + len(json.loads(journal_file.read_text())["checks"])
    assert ET.parse(tmp / "r.xml").getroot().tag == "testsuites"


def test_report_unknown_reporter_name_exit_2_with_did_you_mean(journal_file: Path) -> None:
    out = chaospool_cli("report", str(journal_file), "--report", "htm=x.html",
                        cwd=journal_file.parent)
    assert out.returncode == 2
    assert "no reporter named 'htm' (did you mean 'html'?)" in out.stderr
    assert not (journal_file.parent / "x.html").exists()


def test_report_option_without_equals_is_a_usage_error(journal_file: Path) -> None:
    out = chaospool_cli("report", str(journal_file), "--report", "html", cwd=journal_file.parent)
    assert out.returncode == 2
    assert "expected NAME=PATH" in out.stderr


@pytest.mark.parametrize(
    "content",
    ['{"metrics": ', "[]", '{"name": "x", "version": "1.0"}', '{"metrics": 3}',
     '{"metrics": {}, "checks": [1]}', "\xff\xfe not text"],
)
def test_report_on_a_foreign_or_broken_file_exit_2_one_line(content: str, tmp_path: Path) -> None:
    path = tmp_path / "foreign.json"
    path.write_bytes(content.encode("latin-1"))
    out = chaospool_cli("report", str(path), "--html", "r.html", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith(f"{path}:")
    assert "journal" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(
    ("content", "where"),
    [('{"metrics": {"total": "many"}}', "$.metrics.total"),
     ('{"metrics": {}, "faults": [{"name": "kill", "injected_at": "soon"}]}',
      "$.faults[0].injected_at"),
     ('{"metrics": {}, "checks": [{"metric": "total", "observed": [1]}]}',
      "$.checks[0].observed")],
)
def test_report_on_a_malformed_journal_names_the_bad_value(
    content: str, where: str, tmp_path: Path
) -> None:
    """0.1.0 drew these (a count of "many" operations) or died in a renderer; the typed model
    refuses them up front, naming the value."""
    path = tmp_path / "bad.json"
    path.write_text(content)
    out = chaospool_cli("report", str(path), "--html", "r.html", cwd=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.strip() == (
        f"{path}:1:1: not a chaospool journal: " + out.stderr.split("journal: ", 1)[1].strip())
    assert f"at `{where}`" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert not (tmp_path / "r.html").exists()


def _tiny_experiment(tmp: Path) -> Path:
    path = tmp / "exp.yaml"
    path.write_text(textwrap.dedent("""\
        version: 1
        seed: 3
        duration: 400ms
        pool: {worker: chaospool.workers.demo, size: 1}
        steady_state: {success_rate: ">= 0.5"}
        """))
    return path


def test_run_report_option_calls_a_plugin_reporter_and_names_a_broken_one(
    tmp_path: Path,
) -> None:
    exp = _tiny_experiment(tmp_path)
    (tmp_path / "csvrep.py").write_text(CSV_PLUGIN)
    out = chaospool_cli("run", str(exp), "--plugin", "csvrep", "-q", "--journal", "j.json",
                        "--report", "csv=c.csv", "--report", "broken=b.out", "--html", "r.html",
                        cwd=tmp_path)
    # the verdict held, but an output is missing: CI must not pass
    assert out.returncode == 3, out.stderr
    assert "reporter 'broken' failed to write b.out: RuntimeError: cannot draw this" in out.stderr
    assert "Traceback" not in out.stderr
    assert (tmp_path / "c.csv").read_text().startswith("metric,phase")
    assert (tmp_path / "r.html").is_file()
    assert (tmp_path / "j.json").is_file()


def test_run_unknown_reporter_refused_before_anything_starts(tmp_path: Path) -> None:
    exp = _tiny_experiment(tmp_path)
    out = chaospool_cli("run", str(exp), "--report", "junt=r.xml", "--journal", "j.json",
                        cwd=tmp_path)
    assert out.returncode == 2
    assert "did you mean 'junit'?" in out.stderr
    assert not (tmp_path / "j.json").exists()


@pytest.mark.parametrize("module", ["yaml", "pygal"])
def test_a_module_in_the_cwd_never_shadows_an_installed_package(
    module: str, journal_file: Path
) -> None:
    tmp = journal_file.parent
    (tmp / f"{module}.py").write_text(HOSTILE)
    exp = _tiny_experiment(tmp)
    validated = chaospool_cli("validate", str(exp), cwd=tmp)
    reported = chaospool_cli("report", str(journal_file), "--html", "r.html", cwd=tmp)
    assert not (tmp / "HOSTILE_IMPORTED").exists()
    assert validated.returncode == 0, validated.stderr
    assert reported.returncode == 0, reported.stderr
    assert "<svg" in (tmp / "r.html").read_text()


def test_a_plugin_module_in_the_cwd_is_still_found_by_name(tmp_path: Path) -> None:
    (tmp_path / "csvrep.py").write_text(CSV_PLUGIN)
    out = chaospool_cli("faults", "--json", "--plugin", "csvrep", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)


def test_an_unexpected_error_in_a_command_exits_3_not_1(
    journal_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from chaospool import cli
    from chaospool._report import console

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug in the summary")

    monkeypatch.setattr(console, "print_summary", broken)
    result = CliRunner().invoke(cli.main, ["report", str(journal_file)])
    assert result.exit_code == 3
    assert "chaospool: internal error: RuntimeError: a bug in the summary" in result.output


def test_a_worker_module_in_the_cwd_is_still_found_by_the_workers(tmp_path: Path) -> None:
    (tmp_path / "localworker.py").write_text(textwrap.dedent("""\
        from chaospool.worker import command

        @command
        def hello(args, ctx):
            return "hi"
        """))
    exp = tmp_path / "exp.yaml"
    exp.write_text(textwrap.dedent("""\
        version: 1
        seed: 3
        duration: 400ms
        pool: {worker: localworker, size: 1}
        load: {clients: 1, mix: [{command: hello}]}
        steady_state: {success_rate: ">= 0.9"}
        """))
    out = chaospool_cli("run", str(exp), "-q", "--journal", "j.json", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    journal = json.loads((tmp_path / "j.json").read_text())
    assert journal["metrics"]["succeeded"] > 0


def test_report_into_a_reader_that_leaves_early_still_exits_0(journal_path: Path) -> None:
    """`chaospool report j.json | head -1`: the pipe's reader leaving is not the report's error."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    try:
        done = subprocess.run([str(CHAOSPOOL), "report", str(journal_path)], stdout=write,
                              stderr=subprocess.PIPE, timeout=60, check=False)
    finally:
        os.close(write)
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr
