"""StateForecast pooled over stocks: per-stock medians, and a zero median that falls back."""

import numpy as np
import pandas as pd
import pytest

import convexsched as cs
from convexsched.data.features import RELATIVE_COLUMNS
from convexsched.model.forecast import ScaleFallbackWarning


@pytest.fixture(scope="module")
def sse_states(shared_data):
    books = cs.read_books(shared_data / "cn-equity-l2-dolphindb/20211201snapshot_30stocks.zip")
    frames = [cs.bucket_features(b).dropna(subset=["mid", "volatility"]).assign(symbol=s) for s, b in books.items()]
    return pd.concat(frames)


def test_zero_median_volatility_falls_back_and_is_reported(sse_states):
    quiet = sse_states[sse_states["symbol"] == "600311"]
    assert quiet["volatility"].median() == 0  # 1.93 CNY: the mid rarely moves a tick
    with np.errstate(divide="ignore", invalid="ignore"):
        naive = quiet["volatility"] / quiet["volatility"].median()
    assert not np.isfinite(naive).all()  # what dividing by the median did before
    with pytest.warns(ScaleFallbackWarning, match="600311/volatility"):
        forecast = cs.StateForecast().fit(sse_states, groups="symbol")
    assert np.isfinite(forecast.profile_.to_numpy()).all()
    fallbacks = {(f["group"], f["column"]) for f in forecast.scale_fallbacks_}
    assert ("600311", "volatility") in fallbacks
    entry = next(f for f in forecast.scale_fallbacks_ if f["group"] == "600311")
    nonzero = quiet["volatility"][quiet["volatility"] != 0]
    assert entry["median"] == 0 and entry["scale"] == pytest.approx(nonzero.mean())
    assert forecast.scales_.loc["600311", "volatility"] == pytest.approx(nonzero.mean())
    # Every other stock is scaled by its own median.
    other = sse_states[sse_states["symbol"] == "600103"]
    assert forecast.scales_.loc["600103", "depth"] == pytest.approx(other["depth"].median())


def test_groups_normalize_each_stock_to_median_one():
    times = pd.date_range("2024-01-02 09:30", periods=60, freq="1min", tz="UTC")
    rng = np.random.default_rng(0)
    base = pd.DataFrame({c: rng.uniform(1, 2, 60) for c in ("spread", "depth", "imbalance", "volatility", "mid")},
                        index=times)  # fmt: skip
    big = base.copy()
    big[list(RELATIVE_COLUMNS)] *= 1000.0
    dead = base.copy()
    dead["volatility"] = 0.0
    X = pd.concat([base, big, dead])
    with pytest.warns(ScaleFallbackWarning):
        forecast = cs.StateForecast().fit(X, groups=np.repeat(["a", "b", "c"], 60))
    # a and b have the same shape, so their relative states coincide; c's volatility stays 0 (scale 1).
    assert forecast.scales_.loc["b", "depth"] == pytest.approx(1000 * forecast.scales_.loc["a", "depth"])
    assert forecast.scale_fallbacks_ == [
        {"group": "c", "column": "volatility", "median": 0.0, "fallback": "mean of nonzero values", "scale": 1.0}
    ]
    assert np.isfinite(forecast.profile_.to_numpy()).all()
    with pytest.raises(cs.InvalidInputError, match="one label per row"):
        cs.StateForecast().fit(X, groups=["a"])
