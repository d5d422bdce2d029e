"""One operator table: a tolerance means the same thing in the DSL model and in the checks the
journal holds; ``==`` and ``!=`` compare within a relative 1e-9 (docs/dsl.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from chaospool import load_experiment
from chaospool._journal import Metrics, Phases, evaluate_checks

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


@dataclass(frozen=True)
class Plain:
    """A tolerance without ``holds``: the way a journal's checks are re-evaluated."""

    metric: str
    phase: str
    op: str
    value: float
    text: str


def _tolerance(expected: str) -> Any:
    experiment = load_experiment({"version": 1, "pool": {"worker": "chaospool.workers.demo"},
                       "steady_state": {"throughput": expected}})
    (tolerance,) = experiment.steady_state
    return tolerance


@pytest.mark.parametrize(
    ("expected", "observed", "holds"),
    [
        ("== 0.3", 0.1 + 0.2, True),
        ("!= 0.3", 0.1 + 0.2, False),
        ("== 0.3", 0.3000001, False),
        ("== 0", 0.0, True),
        ("== 0", 1e-13, True),
        ("== 0", 1e-9, False),
        (">= 0.3", 0.1 + 0.2, True),
        ("< 0.3", 0.29, True),
        ("<= 500/s", 500.0, True),
    ],
)
def test_model_and_checks_agree(expected: str, observed: float, holds: bool) -> None:
    tol = _tolerance(expected)
    assert tol.holds(observed) is holds
    plain = Plain(tol.metric, tol.phase, tol.op, tol.value, tol.text)
    (check,) = evaluate_checks([plain], Metrics(throughput=observed), Phases())
    assert check.ok is holds


def test_there_is_one_operator_table() -> None:
    """The DSL and the journal's checks compare through the very same table."""
    from chaospool import _journal, _units
    from chaospool._dsl import model, units

    assert _journal.OPERATORS is _units.OPERATORS is model.OPERATORS is units.OPERATORS
