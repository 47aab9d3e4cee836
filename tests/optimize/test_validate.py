"""The one input check of the optimization stage, and the deprecated ``budget=`` keyword."""

import numpy as np
import pytest

from convexsched import (
    CostCurves,
    InfeasibleError,
    InvalidInputError,
    Objective,
    build_problem,
    check_kkt,
    solve,
)
from convexsched.optimize.validate import Order, check_total, validate

CURVES = CostCurves(np.tile([0.01, 0.02], (4, 1)), 100.0)  # capacity 800


def test_validate_returns_the_checked_order():
    order = validate(CURVES, 500, None, "le")
    assert order == Order(CURVES, 500.0, Objective(), "le")
    assert isinstance(order.total, float) and order.share_unit == 500.0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (([[0.01]], 1.0), "curves must be a CostCurves, got list"),
        ((CURVES, 1.0, "A"), "objective must be an Objective or a Term, got str"),
        ((CURVES, 1.0, Objective(psi=1e-6, weights=np.ones(3))), "the weight array has length 3, the problem has 4 buckets"),
        ((CURVES, "many"), "S must be a number, got 'many'"),
        ((CURVES, np.nan), "S must be finite"),
        ((CURVES, -1.0), "S must be >= 0, got -1.0"),
        ((CURVES, 1.0, None, "<="), "sense must be 'eq' or 'le', got '<='"),
    ],
)
def test_bad_input_is_named(arguments, message):
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(*arguments)


def test_above_capacity_names_the_maximum_only_under_eq():
    with pytest.raises(InfeasibleError, match="the maximum executable is 800") as error:
        validate(CURVES, 801.0)
    assert error.value.max_executable == 800.0
    assert validate(CURVES, 801.0, sense="le").total == 801.0


def test_positive_rejects_an_empty_order():
    assert check_total(0.0) == 0.0
    with pytest.raises(InvalidInputError, match="S must be > 0, got 0.0"):
        check_total(0.0, positive=True)


def test_the_budget_keyword_of_0_2_still_works_with_a_warning():
    with pytest.warns(FutureWarning, match=r"solve\(budget=...\) is deprecated; use sense="):
        schedule = solve(CURVES, 300.0, budget="le")
    assert schedule.sense == "le"
    with pytest.warns(FutureWarning, match="Schedule.budget is deprecated"):
        assert schedule.budget == "le"
    with pytest.warns(FutureWarning, match=r"check_kkt\(budget=...\)"):
        assert check_kkt(CURVES, 300.0, Objective(), schedule.x, budget="le").ok
    with pytest.warns(FutureWarning, match=r"build_problem\(budget=...\)"):
        assert build_problem(CURVES, 300.0, budget="le").spec["sense"] == "le"
