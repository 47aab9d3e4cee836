import numpy as np
import pytest

from convexsched import CostCurves, InvalidInputError, Objective


def test_named_constructors_and_kinds():
    assert Objective.cost_only().kind == "A"
    assert Objective.smoothed(0.5).kind == "B"
    assert Objective.inventory_risk(0.1).kind == "C"
    assert Objective(rho=1, psi=1).kind == "B+C"


def test_weights():
    assert Objective(psi=1).weight_vector(4).tolist() == [0.25, 0.5, 0.75, 1.0]
    assert Objective(psi=1, weights=("power", 2)).weight_vector(2).tolist() == [0.25, 1.0]
    assert Objective(psi=1, weights=[3, 2, 1]).weight_vector(3).tolist() == [3, 2, 1]
    with pytest.raises(InvalidInputError, match="length 3"):
        Objective(psi=1, weights=[3, 2, 1]).weight_vector(4)


@pytest.mark.parametrize("kwargs", [{"rho": -1}, {"psi": np.nan}, {"weights": ("power", 3)}, {"weights": "cubic"}])
def test_bad_parameters(kwargs):
    with pytest.raises(InvalidInputError):
        Objective(**kwargs)


def test_value_by_hand():
    curves = CostCurves([[1.0], [2.0]], 10.0)
    objective = Objective(rho=2.0, psi=4.0, weights="constant")
    # x = (3, 1), S = 4: cost 3 + 2, smoothing (9 + 1), risk 2 * (1^2 + 0^2).
    assert objective.value(curves, 4.0, [3.0, 1.0]) == pytest.approx(5 + 10 + 2)


def test_almgren_chriss_mapping():
    objective = Objective.almgren_chriss(eta_tilde=0.5, tau=2.0, risk_aversion=1e-3, sigma=2.0)
    assert objective.rho == pytest.approx(0.5)
    assert objective.psi == pytest.approx(2 * 1e-3 * 4 * 2)
    assert objective.weight_vector(3).tolist() == [1, 1, 1]


@pytest.mark.parametrize(
    "parameters, fragment",
    [
        ({"tau": 0.0}, "tau"),
        ({"tau": -1.0}, "tau"),
        ({"tau": float("nan")}, "tau"),
        ({"eta_tilde": -1e-6}, "eta_tilde"),
        ({"sigma": float("inf")}, "sigma"),
        ({"risk_aversion": -1.0}, "risk_aversion"),
    ],
)
def test_bad_almgren_chriss_parameters_are_typed_errors(parameters, fragment):
    arguments = dict(eta_tilde=1e-6, tau=1.0, risk_aversion=1e-6, sigma=0.02) | parameters
    with pytest.raises(InvalidInputError, match=f"Almgren-Chriss {fragment}"):
        Objective.almgren_chriss(**arguments)


# ---------------------------------------------------------------- pandas inputs by label


def test_series_weights_are_aligned_on_the_curves_index_not_taken_by_position():
    import pandas as pd

    import convexsched as cs

    labels = pd.date_range("2024-03-04 09:30", periods=6, freq="1min", tz="America/New_York")
    curves = cs.CostCurves(np.tile([0.01, 0.03], (6, 1)), 500.0, index=labels)
    weights = pd.Series([1.0, 2.0, 3.0, 5.0, 8.0, 13.0], index=labels)
    by_label = cs.solve(curves, 2_000.0, cs.Objective(psi=1e-4, weights=weights.iloc[::-1]))
    by_array = cs.solve(curves, 2_000.0, cs.Objective(psi=1e-4, weights=weights.to_numpy()))
    np.testing.assert_allclose(by_label.x.to_numpy(), by_array.x.to_numpy(), atol=1e-9)
    assert by_label.kkt.ok
    # Labels the curves do not have, or curves without labels: refused, not used by position.
    with pytest.raises(cs.InvalidInputError, match="no entry for bucket"):
        cs.solve(curves, 2_000.0, cs.Objective(psi=1e-4, weights=weights.iloc[:5]))
    with pytest.raises(cs.InvalidInputError, match="no bucket labels to align them on"):
        cs.solve(curves.with_index(None), 2_000.0, cs.Objective(psi=1e-4, weights=weights))


def test_a_frame_keeps_its_datetime_index_in_the_schedule():
    import pandas as pd

    import convexsched as cs

    labels = pd.date_range("2024-03-04 09:30", periods=4, freq="5min", tz="America/New_York")
    slopes = pd.DataFrame(np.tile([0.01, 0.02], (4, 1)), index=labels)
    curves = cs.CostCurves(slopes, 100.0)
    assert curves.index.equals(labels)
    schedule = cs.solve(curves, 300.0)
    assert schedule.x.index.equals(labels)
    grid = cs.CostCurves.from_grid([0, 100, 200], pd.DataFrame(np.tile([0.0, 1.0, 3.0], (4, 1)), index=labels))
    assert grid.index.equals(labels)
    with pytest.raises(cs.InvalidInputError, match="different indexes"):
        cs.CostCurves(slopes, pd.Series(100.0, index=labels[::-1]))
