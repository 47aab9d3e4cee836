"""Impact oracle, baselines and state forecast on a small synthetic impact table."""

import pickle
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from convexsched import (
    CostCurves,
    DataError,
    HalfSpreadImpact,
    ImpactOracle,
    InvalidInputError,
    SquareRootImpact,
    StateForecast,
    synthetic_book,
)
from convexsched import impact_table as walk_table

SIZES = np.array([100.0, 300, 1000, 3000, 10000])
FAST = dict(max_iter=40, learning_rate=0.2, min_samples_leaf=10, random_state=0)


def impact_table(n_times=240, seed=0, c=0.8):
    """impact-table rows: per timestamp a book state and several sizes; cost grows beyond the spread.

    ``g(x) = spread/2 x + c sigma mid x sqrt(x/depth) + spread x (x/depth)^2 (1 + imbalance)``
    plus noise: the square-root law plus a convex term it cannot represent.
    """
    rng = np.random.default_rng(seed)
    times = pd.date_range("2022-06-01 09:30", periods=n_times, freq="1min")
    state = pd.DataFrame(
        {
            "timestamp": times,
            "spread": 0.01 * rng.integers(1, 4, n_times),
            "depth": rng.uniform(5e3, 5e4, n_times),
            "imbalance": rng.uniform(-1, 1, n_times),
            "volatility": rng.uniform(2e-4, 1e-3, n_times),
            "hour_of_day": times.hour,
            "mid": rng.uniform(19, 21, n_times),
        }
    )
    table = state.loc[state.index.repeat(len(SIZES))].reset_index(drop=True)
    table.insert(1, "size", np.tile(SIZES, n_times))
    x, depth = table["size"], table["depth"]
    table["vol_ratio"] = x / depth
    cost = (
        0.5 * table["spread"] * x
        + c * table["volatility"] * table["mid"] * x * np.sqrt(x / depth)
        + table["spread"] * x * (x / depth) ** 2 * (1 + table["imbalance"])
    )
    table["slippage"] = cost * (1 + 0.02 * rng.standard_normal(len(table)))
    return table


@pytest.fixture(scope="module")
def table():
    return impact_table()


@pytest.fixture(scope="module")
def oracle(table):
    return ImpactOracle(**FAST).fit(table, table["slippage"])


def states_of(table):
    return table.drop_duplicates("timestamp").set_index("timestamp")[
        ["spread", "depth", "imbalance", "volatility", "hour_of_day", "mid"]
    ]


# ---------------------------------------------------------------- sklearn contract
def test_fit_returns_self_and_sets_trailing_underscore_attributes(table):
    oracle = ImpactOracle(**FAST)
    assert oracle.fit(table, table["slippage"]) is oracle
    assert oracle.features_ == ("vol_ratio", "spread_bps", "depth", "imbalance", "volatility", "hour_of_day")
    assert 1 <= oracle.n_iter_ <= FAST["max_iter"]
    assert len(oracle.validation_curve_) == FAST["max_iter"]
    assert oracle.n_iter_ == np.argmin(oracle.validation_curve_) + 1


def test_clone_and_params_round_trip(oracle):
    params = oracle.get_params()
    twin = clone(oracle)
    assert twin.get_params() == params
    assert not hasattr(twin, "model_")
    assert ImpactOracle().set_params(**params).get_params() == params
    with pytest.raises(NotFittedError):
        twin.predict(impact_table(n_times=2))


def test_init_only_stores_parameters():
    # sklearn's contract: even invalid values are accepted until fit.
    oracle = ImpactOracle(target="cubic", size_feature="notional")
    assert oracle.target == "cubic"
    with pytest.raises(InvalidInputError, match="size_feature"):
        oracle.fit(impact_table(n_times=5), np.ones(25))


# ---------------------------------------------------------------- monotone predictions
@pytest.mark.parametrize("size_feature", ["vol_ratio", "size"])
@pytest.mark.parametrize("target", ["bps", "per_share", "log", None])
def test_predictions_are_monotone_in_size(table, size_feature, target):
    oracle = ImpactOracle(size_feature=size_feature, target=target, **FAST)
    oracle.fit(table, table["slippage"])
    grid = np.linspace(0, 20000, 41)
    values = oracle.predict_grid(states_of(table).iloc[::7], grid)
    assert values.shape == (len(states_of(table).iloc[::7]), 41)
    assert (values[:, 0] == 0).all()
    assert (np.diff(values, axis=1) >= 0).all()
    assert (values[:, -1] > 0).all()


def test_time_ordered_validation_ignores_row_order(table):
    # The split is by timestamp, so shuffling rows changes neither the cut nor the iterations.
    ordered = ImpactOracle(**FAST).fit(table, table["slippage"])
    shuffled_table = table.sample(frac=1.0, random_state=1)
    shuffled = ImpactOracle(**FAST).fit(shuffled_table, shuffled_table["slippage"])
    times = np.sort(table["timestamp"].unique())
    assert ordered.validation_start_ == shuffled.validation_start_ == pd.Timestamp(times[int(0.8 * len(times))])
    assert ordered.n_iter_ == shuffled.n_iter_


def test_validation_can_be_switched_off(table):
    oracle = ImpactOracle(validation_fraction=None, **FAST).fit(table.drop(columns="timestamp"), table["slippage"])
    assert oracle.n_iter_ == FAST["max_iter"] and oracle.validation_curve_ is None


def test_oracle_beats_both_baselines_out_of_sample(table):
    train, test = table, impact_table(seed=1)
    models = {
        "oracle": ImpactOracle(max_iter=150, learning_rate=0.1, random_state=0),
        "half_spread": HalfSpreadImpact(),
        "sqrt": SquareRootImpact(),
    }
    mae = {}
    for name, model in models.items():
        model.fit(train, train["slippage"])
        mae[name] = np.abs(model.predict(test) - test["slippage"]).mean()
    assert mae["oracle"] < mae["sqrt"] < mae["half_spread"]


# ---------------------------------------------------------------- curves
def test_cost_curves_are_indexed_like_states_and_report_deviation(oracle, table):
    states = states_of(table).iloc[:30]
    grid = np.arange(0, 10001, 500.0)
    curves = oracle.cost_curves(states, grid)
    assert isinstance(curves, CostCurves)
    assert curves.index.equals(states.index)
    curves2, report = oracle.cost_curves(states, grid, convexify="convex-regression", return_report=True)
    raw = oracle.predict_grid(states, grid)
    np.testing.assert_allclose(report.per_bucket["max"], np.abs(curves2.breakpoint_values - raw).max(axis=1))
    assert report.per_bucket.index.equals(states.index)


def test_cost_curves_reject_bad_states(oracle, table):
    states = states_of(table).iloc[:3]
    with pytest.raises(InvalidInputError, match="missing column"):
        oracle.cost_curves(states.drop(columns="depth"), [0, 100])
    with pytest.raises(InvalidInputError, match="start at 0"):
        oracle.cost_curves(states, [100, 200])
    with pytest.raises(InvalidInputError, match="unknown convexify method"):
        oracle.cost_curves(states, [0, 100], convexify="nope")


# ---------------------------------------------------------------- baselines
def test_half_spread_baseline_is_exact(table):
    model = HalfSpreadImpact().fit(table, table["slippage"])
    np.testing.assert_allclose(model.predict(table), 0.5 * table["spread"] * table["size"])


def test_square_root_baseline_recovers_c_by_least_squares():
    table = impact_table(c=1.7)
    crossing = 0.5 * table["spread"] * table["size"]
    impact = table["volatility"] * table["mid"] * table["size"] * np.sqrt(table["size"] / table["depth"])
    exact = crossing + 1.7 * impact
    model = SquareRootImpact().fit(table, exact)
    assert model.coef_ == pytest.approx(1.7, rel=1e-9)
    literal = SquareRootImpact(price=None).fit(table, exact)
    assert clone(literal).get_params() == {"price": None}
    with pytest.raises(InvalidInputError, match="missing column"):
        SquareRootImpact().fit(table.drop(columns="mid"), exact)


# ---------------------------------------------------------------- persistence
def test_save_load_round_trip(oracle, table, tmp_path):
    path = tmp_path / "oracle.skops"
    oracle.save(path)
    loaded = ImpactOracle.load(path)
    np.testing.assert_array_equal(loaded.predict(table), oracle.predict(table))
    assert loaded.schema_ == oracle.schema_ and loaded.get_params() == oracle.get_params()
    assert loaded.validation_start_ == oracle.validation_start_ and loaded.n_iter_ == oracle.n_iter_


def test_load_checks_schema_and_format(oracle, tmp_path):
    import skops.io

    path = tmp_path / "oracle.skops"
    oracle.save(path)
    payload = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))

    tampered = dict(payload, schema=dict(payload["schema"], features=("size", "spread")))
    skops.io.dump(tampered, path)
    with pytest.raises(DataError, match="feature schema"):
        ImpactOracle.load(path)

    skops.io.dump(dict(payload, sklearn_version="0.1"), path)
    with pytest.raises(DataError, match="scikit-learn 0.1"):
        ImpactOracle.load(path)

    skops.io.dump(dict(payload, format_version=2), path)
    with pytest.raises(DataError, match="oracle format 2, expected 3; refit"):
        ImpactOracle.load(path)

    skops.io.dump({"weights": [1, 2]}, path)
    with pytest.raises(DataError, match="not a saved"):
        ImpactOracle.load(path)

    (tmp_path / "junk").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="junk is not a saved oracle"):
        ImpactOracle.load(tmp_path / "junk")
    (tmp_path / "cut.skops").write_bytes((tmp_path / "oracle.skops").read_bytes()[:200])
    with pytest.raises(DataError, match="cannot read an oracle"):
        ImpactOracle.load(tmp_path / "cut.skops")
    assert payload["sklearn_version"] == sklearn.__version__


class _RunsCode:
    """A pickle that, when loaded, runs ``marker.touch()``: what a crafted model file does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_model_file_runs_no_code(oracle, tmp_path):
    import skops.io

    marker = tmp_path / "code-ran"
    for name, write in (("model.joblib", lambda p: joblib.dump({"format": "convexsched.ImpactOracle",
                                                                "estimator": _RunsCode(marker)}, p)),
                        ("model.pkl", lambda p: p.write_bytes(pickle.dumps(_RunsCode(marker)))),
                        ("model.gz", lambda p: joblib.dump(_RunsCode(marker), p, compress=3))):  # fmt: skip
        write(tmp_path / name)
        with pytest.raises(DataError, match="is a pickle \\(joblib\\) file: convexsched loads oracles only in skops"):
            ImpactOracle.load(tmp_path / name)
        assert not marker.exists()
    # A skops file with a type outside the trusted ones is refused before anything is built.
    skops.io.dump({"format": "convexsched.ImpactOracle", "thing": _Stranger()}, tmp_path / "stranger.skops")
    with pytest.raises(DataError, match="holds types convexsched does not trust, refused unbuilt: .*_Stranger"):
        ImpactOracle.load(tmp_path / "stranger.skops")
    assert not _Stranger.built


def test_a_saved_oracle_needs_no_other_trusted_type(oracle, tmp_path):
    import skops.io

    from convexsched.model.oracle import TRUSTED_TYPES

    oracle.save(tmp_path / "o.skops")
    assert set(skops.io.get_untrusted_types(file=tmp_path / "o.skops")) <= set(TRUSTED_TYPES)


class _Stranger:
    built = False

    def __setstate__(self, state):
        _Stranger.built = True
        self.__dict__.update(state)


# ---------------------------------------------------------------- bad input
def test_bad_training_input_is_rejected(table):
    y = table["slippage"]
    with pytest.raises(InvalidInputError, match="missing column"):
        ImpactOracle(**FAST).fit(table.drop(columns="volatility"), y)
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        ImpactOracle(**FAST).fit(table.assign(spread=np.nan), y)
    with pytest.raises(InvalidInputError, match="one value per row"):
        ImpactOracle(**FAST).fit(table, y[:-1])
    with pytest.raises(InvalidInputError, match="y > 0"):
        ImpactOracle(target="log", **FAST).fit(table, -y)
    with pytest.raises(InvalidInputError, match="sizes > 0"):
        ImpactOracle(**FAST).fit(table.assign(size=0.0), y)
    with pytest.raises(InvalidInputError, match="'timestamp' column"):
        ImpactOracle(**FAST).fit(table.drop(columns="timestamp"), y)
    with pytest.raises(InvalidInputError, match="target must be"):
        ImpactOracle(target="sqrt", **FAST).fit(table, y)
    with pytest.raises(InvalidInputError, match="requires y"):
        ImpactOracle(**FAST).fit(table, None)
    with pytest.raises(InvalidInputError, match="Negative values"):
        ImpactOracle(**FAST).fit(table.assign(size=-table["size"]), y)


def test_the_documented_recipe_fits_a_walked_table_with_missing_volatility():
    # A book's first snapshots have no volatility yet (NaN): the trees take NaN as "missing",
    # so fit(table, table["slippage"]) works as documented; arithmetic inputs must stay finite.
    table = walk_table(synthetic_book(seed=3), [100.0, 1000.0, 5000.0])
    assert table["volatility"].isna().any()
    oracle = ImpactOracle(max_iter=20, random_state=0).fit(table, table["slippage"])
    gaps = table[table["volatility"].isna()]
    predicted = oracle.predict(gaps)
    assert np.isfinite(predicted).all() and (predicted >= 0).all()
    states = gaps.drop_duplicates("timestamp").set_index("timestamp")
    assert np.isfinite(oracle.predict_grid(states, [0.0, 500.0, 2000.0])).all()
    for column in ("size", "spread", "depth", "mid"):
        with pytest.raises(InvalidInputError, match=f"NaN or inf in column '{column}'"):
            ImpactOracle(**FAST).fit(table.assign(**{column: np.nan}), table["slippage"])
    with pytest.raises(InvalidInputError, match="NaN or inf in column 'volatility'"):
        ImpactOracle(**FAST).fit(table.assign(volatility=np.inf), table["slippage"])
    # The baselines compute with the volatility: it must be there.
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        SquareRootImpact().fit(table, table["slippage"])


# ---------------------------------------------------------------- state forecast
def seasonal_states(days=3, phi=0.8, seed=0):
    """Per-minute states: a U-shaped spread profile plus AR(1) anomalies with persistence phi."""
    rng = np.random.default_rng(seed)
    frames = []
    for day in range(days):
        times = pd.date_range(f"2022-06-0{day + 1} 09:30", periods=120, freq="1min")
        minute = np.arange(120)
        anomaly = np.zeros(120)
        for t in range(1, 120):
            anomaly[t] = phi * anomaly[t - 1] + rng.normal(0, 0.002)
        frames.append(
            pd.DataFrame(
                {
                    "spread": 0.02 + 1e-5 * (minute - 60) ** 2 + anomaly,
                    "depth": 1e4 + 50 * minute,
                    "imbalance": 0.0 * minute,
                    "volatility": 5e-4 + 0 * minute,
                    "mid": 20.0 + 0 * minute,
                },
                index=times,
            )
        )
    return pd.concat(frames)


def test_forecast_without_live_state_is_the_seasonal_profile():
    forecast = StateForecast(freq="1min").fit(seasonal_states())
    buckets = pd.date_range("2022-06-09 09:30", periods=120, freq="1min")
    predicted = forecast.predict(buckets)
    np.testing.assert_allclose(predicted["depth"], 1e4 + 50 * np.arange(120))
    assert np.abs(predicted["spread"] - (0.02 + 1e-5 * (np.arange(120) - 60) ** 2)).max() < 0.006
    assert (predicted["hour_of_day"] == buckets.hour).all()
    assert list(predicted.columns) == ["spread", "depth", "imbalance", "volatility", "mid", "hour_of_day"]


def test_forecast_blends_live_state_with_geometric_decay():
    forecast = StateForecast(freq="1min").fit(seasonal_states(phi=0.8))
    assert 0.6 < forecast.decay_["spread"] < 0.95
    last = pd.Series(
        {"spread": 0.5, "depth": 2e4, "imbalance": 0.4, "volatility": 1e-3, "mid": 21.0}, name=pd.Timestamp("2022-06-09 10:00")
    )
    buckets = pd.date_range("2022-06-09 10:01", periods=5, freq="1min")
    profile = forecast.predict(buckets)
    at_last = forecast.profile_at(pd.DatetimeIndex([last.name])).iloc[0]
    blended = forecast.predict(buckets, last_state=last, decay=0.5)
    expected = profile["depth"] + (2e4 - at_last["depth"]) * 0.5 ** np.arange(1, 6)
    np.testing.assert_allclose(blended["depth"], expected)
    np.testing.assert_allclose(blended["mid"], 21.0)  # the price level persists (phi = 1)
    without_anomaly = forecast.predict(buckets, last_state=last, decay=0.0)
    pd.testing.assert_frame_equal(without_anomaly.drop(columns="mid"), profile.drop(columns="mid"))
    fitted = forecast.predict(buckets, last_state=last)
    assert fitted["spread"].iloc[0] > profile["spread"].iloc[0]


def test_forecast_rejects_bad_input():
    forecast = StateForecast().fit(seasonal_states(days=1))
    buckets = pd.date_range("2022-06-09 10:01", periods=3, freq="1min")
    last = pd.Series(
        {"spread": 0.1, "depth": 1e4, "imbalance": 0.0, "volatility": 1e-3, "mid": 20.0}, name=pd.Timestamp("2022-06-09 10:00")
    )
    with pytest.raises(InvalidInputError, match="decay must be in"):
        forecast.predict(buckets, last_state=last, decay=1.5)
    with pytest.raises(InvalidInputError, match="DatetimeIndex"):
        forecast.predict([1, 2, 3])
    with pytest.raises(InvalidInputError, match="timestamp of the observation"):
        forecast.predict(buckets, last_state=last.rename("latest"))
    with pytest.raises(InvalidInputError, match="missing state column"):
        StateForecast().fit(seasonal_states(days=1).drop(columns="depth"))
    with pytest.raises(NotFittedError):
        StateForecast().predict(buckets)


def test_book_features_oracle_learns_from_the_traded_side():
    """On real-shaped tables the side features enter the design, monotone in size."""
    table = walk_table(synthetic_book(4), [100, 1000, 3000, 8000]).dropna(subset=["volatility"])
    table = table[~table["beyond_depth"]]
    oracle = ImpactOracle(features="book", **FAST).fit(table, table["slippage"])
    assert {"touch", "side_depth_3", "side_depth_5", "spread_ticks", "side_fill"} <= set(oracle.features_)
    grid = table.iloc[[0] * 6].assign(size=[0, 100, 500, 1000, 3000, 8000])
    assert (np.diff(oracle.predict(grid)) >= 0).all()
    with pytest.raises(InvalidInputError, match="touch"):
        oracle.predict(table.drop(columns="touch"))
    with pytest.raises(InvalidInputError, match="features must be"):
        ImpactOracle(features="magic").fit(table, table["slippage"])


@pytest.mark.parametrize("features", ["state", "book"])
def test_the_array_path_predicts_what_predict_does(features):
    table = walk_table(synthetic_book(5), [100, 1000, 3000]).dropna(subset=["volatility"])
    table = table[~table["beyond_depth"]]
    oracle = ImpactOracle(features=features, **FAST).fit(table, table["slippage"])
    columns = {name: table[name].to_numpy() for name in table.columns if name != "timestamp"}
    np.testing.assert_array_equal(oracle.predict_columns(columns), oracle.predict(table))


def test_the_seed_feature_set_of_0_2_still_fits_with_a_warning():
    table = walk_table(synthetic_book(5), [100, 1000]).dropna(subset=["volatility"])
    with pytest.warns(FutureWarning, match='features="seed"\\) is deprecated; use features="state"'):
        old = ImpactOracle(features="seed", max_iter=5, random_state=0).fit(table, table["slippage"])
    new = ImpactOracle(features="state", max_iter=5, random_state=0).fit(table, table["slippage"])
    np.testing.assert_array_equal(old.predict(table), new.predict(table))
