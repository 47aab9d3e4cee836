"""Lot rounding: whole lots, the budget kept, capacities respected, the cost reported honestly."""

import itertools

import numpy as np
import pytest

from convexsched import CostCurves, InfeasibleError, Objective, solve
from convexsched.optimize.lots import round_to_lots


def test_rounding_keeps_the_budget_and_capacities_and_prices_itself():
    rng = np.random.default_rng(3)
    curves = CostCurves(np.sort(rng.uniform(0.01, 0.05, (60, 4)), axis=1), widths=250)
    objective = Objective(rho=1e-5)
    schedule = solve(curves, 12_345, objective)
    rounding = round_to_lots(curves, 12_345, objective, schedule.x, 100)
    x = rounding.x.to_numpy()
    assert x.sum() == pytest.approx(12_345) and rounding.odd_lot == pytest.approx(45)
    assert np.count_nonzero(x % 100) == 1 and (x <= curves.capacity + 1e-9).all()
    assert rounding.extra_cost >= -1e-9
    assert rounding.rounded_value == pytest.approx(objective.value(curves, 12_345, x))
    assert "rounding costs" in str(rounding)


def test_separable_rounding_is_the_best_whole_lot_schedule_on_a_small_case():
    curves = CostCurves([[0.01, 0.04], [0.02, 0.03], [0.015, 0.05]], widths=150)
    objective = Objective()
    schedule = solve(curves, 500, objective)
    rounding = round_to_lots(curves, 500, objective, schedule.x, 100)
    best = min(
        objective.value(curves, 500, np.array(lots, float) * 100)
        for lots in itertools.product(range(4), repeat=3)
        if sum(lots) == 5
    )
    assert rounding.rounded_value == pytest.approx(best)


def test_too_few_whole_lots_is_infeasible():
    curves = CostCurves([[0.01], [0.02]], widths=150)  # 1.5 lots each: 2 whole lots in all
    with pytest.raises(InfeasibleError, match="2 whole lots of 100 shares, 3 are needed"):
        round_to_lots(curves, 300, Objective(), [150, 150], 100)
