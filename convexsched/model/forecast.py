"""State forecasts for buckets not seen yet: intraday seasonality plus a decaying anomaly.

A static plan needs ``g_hat_t(x | state_t)`` for every future bucket ``t`` (the curves of (E7)),
so it needs ``state_t`` before it is observed. :class:`StateForecast` predicts each
state column ``z`` (spread, depth, imbalance, volatility) ``h`` buckets ahead of the latest
observation ``z_0`` taken at time-of-day ``tau_0`` as

.. math::

    \\hat z_h = p(\\tau_h) + \\phi^{h} \\, \\big(z_0 - p(\\tau_0)\\big), \\qquad (E20)

where ``p(tau)`` is the seasonal profile, the median of ``z`` over the training rows in the
time-of-day bin of ``tau``, and ``phi`` in [0, 1] is the per-bucket persistence of the anomaly
``z - p`` (an AR(1) on the deseasonalised series, estimated as its lag-1 autocorrelation unless
given). Without a live observation, or far ahead, the forecast is the profile; ``hour_of_day``
is read off the bucket time. The ``mid`` (needed by the oracle's bps target) is a price, a
martingale to first order, so its ``phi`` is fixed at 1: the live mid carries over unchanged
apart from the profile's drift, while without a live state its profile is only a rough level. The receding-horizon planner calls :meth:`StateForecast.predict`
with the live state each time it re-plans (E8).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..data.features import FORECAST_COLUMNS, RELATIVE_COLUMNS
from ..errors import InvalidInputError


class ScaleFallbackWarning(UserWarning):
    """A group's median was 0 or not finite, so another scale was used (``scale_fallbacks_``)."""


def _time_index(frame, what):
    if isinstance(frame.index, pd.DatetimeIndex):
        return frame.index
    if "timestamp" in frame.columns:
        return pd.DatetimeIndex(pd.to_datetime(frame["timestamp"]))
    raise InvalidInputError(f"{what} needs a DatetimeIndex or a 'timestamp' column")


class StateForecast(BaseEstimator):
    """Seasonal time-of-day profile of the book state blended with the latest observed state.

    Parameters
    ----------
    freq : str
        Width of a time-of-day bin (a pandas offset alias, e.g. ``"1min"``): normally the
        bucket length of the schedule.

    Attributes
    ----------
    profile_ : pandas.DataFrame
        Median of each state column per time-of-day bin, indexed by the bin's offset from
        midnight (a TimedeltaIndex).
    decay_ : pandas.Series
        Estimated per-bucket persistence ``phi`` of each column's anomaly, clipped to [0, 1];
        0 where it cannot be estimated. Fit on several days: with a single day the profile *is*
        that day, every anomaly is 0 and so is ``decay_`` (pass ``decay=`` explicitly then).
    scales_ : pandas.DataFrame or None
        With ``fit(..., groups=)``: the divisor of each group (row) and column of
        :data:`RELATIVE_COLUMNS`, normally the group's median.
    scale_fallbacks_ : list of dict
        Groups whose median was 0 or not finite (a stock whose price rarely moves has a median
        bucket volatility of 0): ``group, column, median, fallback, scale``. The mean of the
        column's nonzero values replaces the median (1 when there are none), and a
        :class:`ScaleFallbackWarning` says so.
    """

    def __init__(self, freq: str = "1min") -> None:
        self.freq = freq

    def _bins(self, times):
        return (times - times.normalize()).floor(self.freq)

    def fit(self, X: pd.DataFrame, y: object = None, groups: ArrayLike | None = None) -> StateForecast:
        """Learn the profile and the anomaly persistence from a state frame; returns ``self``.

        Parameters
        ----------
        X : pandas.DataFrame
            Rows of book state (per snapshot or per bucket; several days may be stacked) with
            the columns ``spread, depth, imbalance, volatility, mid``, indexed by timestamp or
            with a ``timestamp`` column; e.g. :func:`convexsched.bucket_features`.
        groups : array_like or str, optional
            One label per row (or the name of a column of ``X``), e.g. the symbol: the
            columns of :data:`RELATIVE_COLUMNS` are divided by their median within each group
            first, so the profile is a shape pooled over stocks of different sizes (see
            ``scales_`` and ``scale_fallbacks_`` for groups whose median is 0).
        """
        times = _time_index(X, "X")
        missing = [c for c in FORECAST_COLUMNS if c not in X.columns]
        if missing:
            raise InvalidInputError(f"X is missing state column(s) {missing}")
        states = X.loc[:, list(FORECAST_COLUMNS)].astype(float).set_axis(times)
        self.scales_: pd.DataFrame | None = None
        self.scale_fallbacks_: list[dict[str, object]] = []
        if groups is not None:
            states = self._relative(states, X[groups] if isinstance(groups, str) else groups)
        if not np.isfinite(states.to_numpy()).all():
            raise InvalidInputError("X has NaN or inf state values")
        if len(states) < 3:
            raise InvalidInputError("StateForecast needs at least 3 rows to fit")
        bins = self._bins(times)
        self.profile_ = states.groupby(bins).median().sort_index()
        # Persistence is measured bucket to bucket, so the anomalies are first averaged per
        # (day, bin): snapshots inside one bucket would otherwise inflate it towards 1.
        anomaly = states - self.profile_.loc[bins].to_numpy()
        per_bucket = anomaly.groupby([times.normalize(), bins]).mean()
        self.decay_ = per_bucket.apply(lambda column: column.autocorr()).fillna(0.0).clip(0.0, 1.0)
        self.decay_["mid"] = 1.0
        return self

    def _relative(self, states, groups):
        """Divide :data:`RELATIVE_COLUMNS` by each group's median, falling back when it is 0."""
        groups = np.asarray(groups)
        if groups.shape != (len(states),):
            raise InvalidInputError(f"groups needs one label per row of X ({len(states)}), got shape {groups.shape}")
        columns = list(RELATIVE_COLUMNS)
        values = states[columns].set_axis(pd.RangeIndex(len(states)))
        scales = values.groupby(groups, sort=False).median()
        # Fallback: the mean of the nonzero values (1 when the column is all zeros).
        nonzero = values.where(values != 0).groupby(groups, sort=False).mean().fillna(1.0)
        bad = ~(np.isfinite(scales) & (scales > 0))
        for group, column in zip(*np.nonzero(bad.to_numpy()), strict=True):
            label, name = scales.index[group], columns[column]
            self.scale_fallbacks_.append({
                "group": label, "column": name, "median": float(scales.iat[group, column]),
                "fallback": "mean of nonzero values", "scale": float(nonzero.iat[group, column]),
            })  # fmt: skip
        scales = scales.where(~bad, nonzero)
        if self.scale_fallbacks_:
            warnings.warn(
                "StateForecast: median of 0 (or not finite) for "
                + ", ".join(f"{f['group']}/{f['column']}" for f in self.scale_fallbacks_)
                + "; scaled by the mean of the nonzero values instead (see scale_fallbacks_)",
                ScaleFallbackWarning,
                stacklevel=3,
            )
        self.scales_ = scales
        states = states.copy()
        states[columns] = values.to_numpy() / scales.loc[groups].to_numpy()
        return states

    def profile_at(self, times: pd.DatetimeIndex) -> pd.DataFrame:
        """Seasonal profile ``p(tau)`` at ``times`` (nearest fitted bin when one was never seen)."""
        check_is_fitted(self, "profile_")
        bins = self._bins(pd.DatetimeIndex(times))
        rows = self.profile_.index.get_indexer(bins, method="nearest")
        return self.profile_.iloc[rows].set_axis(pd.DatetimeIndex(times))

    def predict(
        self, bucket_index: pd.DatetimeIndex, last_state: pd.Series | None = None, decay: dict[str, float] | None = None
    ) -> pd.DataFrame:
        """Forecast state per bucket, ready for :meth:`ImpactOracle.cost_curves`.

        Parameters
        ----------
        bucket_index : pandas.DatetimeIndex
            Timestamps of the buckets to forecast, in order; with ``last_state`` the first one
            is one bucket (``h = 1``) after it.
        last_state : pandas.Series, optional
            Latest observed state with the forecast columns; its ``name`` is its timestamp (as
            for a row ``frame.iloc[-1]`` of a time-indexed frame). ``None`` returns the profile.
        decay : float or dict or pandas.Series, optional
            Per-bucket persistence ``phi`` in [0, 1] (one for all columns or one per column;
            ``mid`` keeps 1 unless a per-column value says otherwise); ``None`` uses the fitted
            ``decay_``. ``0`` ignores the live state beyond itself,
            ``1`` keeps its anomaly forever.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``bucket_index`` with ``spread, depth, imbalance, volatility, mid,
            hour_of_day``.
        """
        check_is_fitted(self, "profile_")
        if not isinstance(bucket_index, pd.DatetimeIndex):
            raise InvalidInputError(f"bucket_index must be a pandas DatetimeIndex, got {type(bucket_index).__name__}")
        forecast = self.profile_at(bucket_index)
        if last_state is not None:
            if decay is None:
                phi = self.decay_
            elif np.isscalar(decay):
                phi = pd.Series(decay, index=list(FORECAST_COLUMNS), dtype=float)
                phi["mid"] = 1.0
            else:
                phi = pd.Series(dict(self.decay_) | dict(decay), dtype=float)[list(FORECAST_COLUMNS)]
            if phi.isna().any() or ((phi < 0) | (phi > 1)).any():
                raise InvalidInputError(f"decay must be in [0, 1] for every column, got {dict(phi)}")
            try:
                observed_at = pd.Timestamp(last_state.name)
            except (TypeError, ValueError):
                raise InvalidInputError("last_state.name must be the timestamp of the observation") from None
            missing = [c for c in FORECAST_COLUMNS if c not in last_state.index]
            if missing:
                raise InvalidInputError(f"last_state is missing state column(s) {missing}")
            observed = last_state[list(FORECAST_COLUMNS)].astype(float)
            anomaly = observed - self.profile_at(pd.DatetimeIndex([observed_at])).iloc[0]
            steps = np.arange(1, len(bucket_index) + 1)[:, None]
            forecast = forecast + anomaly.to_numpy() * phi.to_numpy() ** steps
        forecast = forecast.copy()
        forecast["hour_of_day"] = bucket_index.hour
        return forecast
