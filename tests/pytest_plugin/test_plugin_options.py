"""The pytest plugin's surface: marker, option, header, and an import that costs nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = [pytest.mark.system, pytest.mark.timeout(60)]


def test_markers_show_chaos(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.chaos(seed=None): a chaos-engineering test*"])
    assert result.ret == 0


def test_help_shows_chaos_seed(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["chaospool: chaos experiments on worker pools:", "*--chaos-seed=N*"]
    )


def test_header_shows_the_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--chaos-seed", "1234")
    result.stdout.fnmatch_lines(["chaospool: --chaos-seed=1234"])
    result.assert_outcomes(passed=1)


def test_chaos_seed_must_be_an_integer(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--chaos-seed", "abc")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--chaos-seed*invalid int value*"])


def test_chaos_marker_is_accepted_under_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.chaos
        def test_plain():
            pass

        @pytest.mark.chaos(seed=3)
        def test_seeded():
            pass
        """
    )
    pytester.runpytest("--strict-markers").assert_outcomes(passed=2)


@pytest.mark.unit
def test_import_is_light() -> None:
    code = (
        "import sys, chaospool.pytest_plugin\n"
        "heavy = {'yaml', 'anyio', 'psutil', 'chaospool._engine', 'chaospool.experiment',"
        " 'chaospool.pool', 'chaospool._plugins'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
