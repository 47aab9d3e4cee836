"""The oracle's trees walked run by run (model/_trees.py) give scikit-learn's predictions bit for bit."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.ensemble import HistGradientBoostingRegressor

from convexsched import ImpactOracle, synthetic_book
from convexsched import impact_table as walk_table
from convexsched.model import _trees
from convexsched.model import oracle as oracle_module
from convexsched.model._trees import forest, predict_runs, run_starts

WIDTH = 4


def training(seed, nan):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((400, WIDTH))
    X[:, 1] = np.round(X[:, 1])  # ties at the thresholds
    if nan:
        # Missing values in training give nodes that send NaN left and nodes that send it right.
        X[rng.random(X.shape) < 0.1] = np.nan
    y = np.nan_to_num(X[:, 0] ** 2 + X[:, 1] - X[:, 2] * X[:, 3]) + 0.1 * rng.standard_normal(len(X))
    return X, y


MODELS = {
    (nan, leaves): HistGradientBoostingRegressor(
        max_iter=25, max_leaf_nodes=leaves, learning_rate=0.3, early_stopping=False, random_state=0
    ).fit(*training(leaves, nan))
    for nan in (False, True)
    for leaves in (2, 7, 31)
}


@st.composite
def designs(draw):
    """(model, X, run starts): runs of rows sharing some columns, in order or shuffled, maybe with NaN."""
    model = MODELS[draw(st.sampled_from(sorted(MODELS)))]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    runs, length = draw(st.integers(1, 12)), draw(st.integers(1, 40))
    X = np.repeat(rng.standard_normal((runs, WIDTH)), length, axis=0)
    varying = draw(st.lists(st.integers(0, WIDTH - 1), max_size=WIDTH, unique=True))
    for k in varying:
        column = rng.standard_normal((runs, length))
        if draw(st.booleans()):
            column = np.sort(column, axis=1)  # a rising column (the size on a grid)
        if draw(st.booleans()):
            column = np.round(column)  # ties, and values on the thresholds' side
        X[:, k] = column.ravel()
    if draw(st.booleans()):
        X[rng.random(X.shape) < 0.15] = np.nan
    if draw(st.booleans()):
        X = X[rng.permutation(len(X))]
    split = draw(st.sampled_from(["state", "one", "rows", "random"]))
    n = len(X)
    if split == "state":
        starts = run_starts(X, np.array([k not in varying for k in range(WIDTH)]))
    elif split == "one":
        starts = np.array([0, n])
    elif split == "rows":
        starts = np.arange(n + 1)
    else:
        cuts = np.sort(rng.choice(np.arange(1, n), size=min(n - 1, draw(st.integers(0, 10))), replace=False)) if n > 1 else []
        starts = np.concatenate([[0], cuts, [n]]).astype(int)
    return model, X, starts


@given(data=designs())
def test_runs_predict_what_scikit_learn_predicts(data):
    model, X, starts = data
    expected = model.predict(X)
    got = predict_runs(forest(model), X, starts)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    # Same leaves, added in the same order: not merely close.
    np.testing.assert_array_equal(got, expected)


def test_run_starts_cut_where_the_state_changes():
    X = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 6.0], [4.0, 6.0], [5.0, np.nan], [6.0, np.nan]])
    # NaN != NaN: each NaN row is its own run (a split of the rows, so still exact).
    np.testing.assert_array_equal(run_starts(X, np.array([False, True])), [0, 2, 4, 5, 6])


def test_models_the_walk_cannot_reproduce_are_left_to_scikit_learn():
    X, y = training(0, False)
    assert forest(HistGradientBoostingRegressor(max_iter=3, loss="poisson").fit(X, np.abs(y))) is None
    categorical = np.column_stack([np.arange(len(X)) % 3, X[:, 1:]])
    assert forest(HistGradientBoostingRegressor(max_iter=3, categorical_features=[0]).fit(categorical, y)) is None
    assert forest(HistGradientBoostingRegressor()) is None  # not fitted
    with pytest.raises(ValueError, match="features"):
        predict_runs(forest(MODELS[(False, 7)]), X[:, :2], np.array([0, len(X)]))


@pytest.mark.parametrize("features", ["state", "book"])
def test_the_oracle_grid_path_is_the_booster_bit_for_bit(features, monkeypatch):
    table = walk_table(synthetic_book(5), [100, 1000, 3000]).dropna(subset=["volatility"])
    table = table[~table["beyond_depth"]]
    oracle = ImpactOracle(features=features, max_iter=40, learning_rate=0.2, min_samples_leaf=10, random_state=0).fit(
        table, table["slippage"]
    )
    states = table.drop_duplicates("timestamp").iloc[:50]
    grid = states.loc[states.index.repeat(33)].reset_index(drop=True)
    grid["size"] = np.tile(np.linspace(0, 8000, 33), len(states))
    columns = {name: grid[name].to_numpy(dtype=float) for name in oracle._columns()}
    _, design = oracle._design_matrix(columns)
    oracle._raw_predict(design[:33])  # builds the walk and checks it once against predict
    calls = []
    monkeypatch.setattr(oracle_module, "predict_runs", lambda *a: calls.append(a) or _trees.predict_runs(*a))
    np.testing.assert_array_equal(oracle._raw_predict(design), oracle.model_.predict(design))
    assert len(calls) == 1 and len(calls[0][2]) == len(states) + 1  # one run per state
    # predict_columns goes through it; rows without shared states go to scikit-learn.
    raw = oracle.model_.predict(design)
    cost = grid["size"] * grid["mid"] * np.maximum(raw, 0) / 1e4
    np.testing.assert_array_equal(oracle.predict_columns(columns), np.where(grid["size"] > 0, cost, 0.0))
    single = design[::33]
    np.testing.assert_array_equal(oracle._raw_predict(single), oracle.model_.predict(single))
    assert len(calls) == 2


def test_a_booster_refitted_in_place_is_walked_afresh():
    table = walk_table(synthetic_book(5), [100, 1000, 3000]).dropna(subset=["volatility"])
    table = table[~table["beyond_depth"]]
    oracle = ImpactOracle(validation_fraction=None, max_iter=5, random_state=0).fit(table, table["slippage"])
    columns = {name: table[name].to_numpy(dtype=float) for name in oracle._columns()}
    _, design = oracle._design_matrix(columns)
    design = np.repeat(design[:40], 8, axis=0)
    design[:, 0] = np.tile(np.linspace(0.0, 0.5, 8), 40)  # runs of 8: the walk's path
    first = oracle._raw_predict(design)
    np.testing.assert_array_equal(first, oracle.model_.predict(design))
    oracle.model_.set_params(warm_start=True, max_iter=10)
    oracle.model_.fit(design, first + design[:, 0])
    assert not np.array_equal(oracle.model_.predict(design), first)
    np.testing.assert_array_equal(oracle._raw_predict(design), oracle.model_.predict(design))


def test_a_walk_that_disagrees_with_scikit_learn_is_not_used(monkeypatch):
    # The walk reads scikit-learn's private node arrays; another layout must fall back to
    # predict with a warning, never answer wrongly. A shifted leaf value stands in for it.
    table = walk_table(synthetic_book(5), [100, 1000, 3000]).dropna(subset=["volatility"])
    table = table[~table["beyond_depth"]]
    oracle = ImpactOracle(max_iter=5, random_state=0).fit(table, table["slippage"])
    columns = {name: table[name].to_numpy(dtype=float) for name in oracle._columns()}
    _, design = oracle._design_matrix(columns)
    design = np.repeat(design[:40], 8, axis=0)
    design[:, 0] = np.tile(np.linspace(0.0, 0.5, 8), 40)
    monkeypatch.setattr(oracle_module, "forest", lambda model: dataclasses.replace(forest(model), baseline=1.0))
    with pytest.warns(RuntimeWarning, match="disagrees with scikit-learn's predict"):
        np.testing.assert_array_equal(oracle._raw_predict(design), oracle.model_.predict(design))
    calls = []
    monkeypatch.setattr(oracle_module, "predict_runs", lambda *a: calls.append(a) or _trees.predict_runs(*a))
    np.testing.assert_array_equal(oracle._raw_predict(design), oracle.model_.predict(design))
    assert calls == []  # the verdict is kept for the booster


@pytest.mark.parametrize("key", sorted(MODELS))
def test_runs_on_the_thresholds_take_scikit_learns_side_of_every_split(key):
    # The masks' path (one rising column, the others constant) decides x <= threshold without
    # walking: rows exactly on the thresholds, and a hair either side, must land where the walk
    # sends them. States sit on thresholds too.
    model = MODELS[key]
    trees = forest(model)
    assert trees.masks is not None
    rng = np.random.default_rng(0)
    on = {k: np.unique(trees.threshold[~trees.leaf & (trees.feature == k)]) for k in range(WIDTH)}
    blocks = []
    for rising in range(WIDTH):
        grid = np.sort(
            np.concatenate(
                [on[rising], np.nextafter(on[rising], np.inf), np.nextafter(on[rising], -np.inf), rng.standard_normal(20)]
            )
        )
        for _ in range(6):
            state = np.array(
                [rng.choice(on[k]) if len(on[k]) and rng.random() < 0.7 else rng.standard_normal() for k in range(WIDTH)]
            )
            block = np.repeat(state[None, :], len(grid), axis=0)
            block[:, rising] = grid
            blocks.append(block)
    X = np.vstack(blocks)
    starts = np.concatenate([[0], np.cumsum([len(b) for b in blocks])])
    np.testing.assert_array_equal(predict_runs(trees, X, starts), model.predict(X))


def test_trees_of_more_than_64_leaves_are_walked():
    X, y = training(3, True)
    model = HistGradientBoostingRegressor(
        max_iter=3, max_leaf_nodes=100, min_samples_leaf=2, early_stopping=False, random_state=0
    ).fit(X, y)
    trees = forest(model)
    assert max(n["is_leaf"].sum() for n in (p[0].nodes for p in model._predictors)) > 64
    assert trees.masks is None
    design = np.repeat(X[:20], 10, axis=0)
    design[:, 0] = np.tile(np.linspace(-2, 2, 10), 20)
    np.testing.assert_array_equal(predict_runs(trees, design, np.arange(0, 201, 10)), model.predict(design))
