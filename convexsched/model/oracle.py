"""The impact oracle ``g_hat(x | state)`` and the two baselines it must beat.

convexsched estimates the temporary impact ``g_t(x)`` (E16) of trading ``x`` shares in bucket ``t`` with a
gradient-boosting oracle ``g_hat_t(x | state_t)`` trained on the impact table of the state
features (E17). This module holds that oracle and the baselines reported beside it, all
scikit-learn regressors on the same input:

``X``
    A DataFrame with the impact-table columns ``size`` (shares), ``spread`` (currency), ``depth``
    (shares on ten levels, both sides), ``imbalance``, ``volatility`` (std of 3-s log mid
    returns over 60 s), ``hour_of_day`` and, for fitting the oracle with a validation split,
    ``timestamp``; with ``target="bps"`` also ``mid`` (currency). ``vol_ratio`` is recomputed as
    ``size / depth`` so that training and curve evaluation (:meth:`ImpactOracle.cost_curves`) use
    one definition. Extra columns are ignored. The oracle takes NaN (a missing value, which the
    trees route at every split) in the columns of :data:`MISSING_OK`, e.g. the ``volatility`` of
    a book's first snapshots, so ``ImpactOracle().fit(table, table["slippage"])`` works on a
    walked table as it is; the baselines, which compute with every column, do not. Any other array-like (anything
    :func:`sklearn.utils.check_array` takes, a DataFrame with unnamed columns included) is read
    by position: its first columns are those the estimator reads, in this order and without
    ``timestamp``; further columns are ignored, and prediction needs the width seen in fitting.
``y``
    The target: the total cost ``g_t(x)`` in currency of trading ``size`` shares against the
    book, relative to the mid (the impact-table ``slippage`` column). Predictions are in the same unit;
    they are 0 at size 0, since trading nothing costs nothing.

:meth:`ImpactOracle.cost_curves` evaluates the oracle on a size grid for every bucket and
convexifies (:func:`convexsched.convexify`) into :class:`CostCurves`.
"""

from __future__ import annotations

import functools
import warnings
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Self, TypeGuard

import numpy as np
import pandas as pd
import sklearn
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted, column_or_1d
from threadpoolctl import ThreadpoolController

from ..data.features import SIDE_FEATURES, STATE_COLUMNS
from ..errors import DataError, InvalidInputError
from ._trees import Forest, forest, predict_runs, run_starts
from .convexify import convexify as _convexify

if TYPE_CHECKING:
    from ..optimize.curves import CostCurves
    from .convexify import ConvexifyReport

SIZE_FEATURES = ("size", "vol_ratio")
TARGETS = ("bps", "per_share", "log", None)
FEATURE_SETS = ("state", "book")
# The state columns the trees read as they are: a NaN there is a missing value, which the
# gradient boosting routes at every split (a book's first snapshots have no volatility yet).
# Size, spread, depth, mid and side_depth_5 enter arithmetic (size / depth, spread in bps, the
# bps target) and must be finite.
MISSING_OK = ("imbalance", "volatility", "hour_of_day", "touch", "side_depth_3", "spread_ticks")
_FORMAT = "convexsched.ImpactOracle"
# Version 2: the hyperparameter ``transform`` became ``target`` (0.2.0). Version 3: skops, not
# a pickle (0.3.0).
_FORMAT_VERSION = 3
# The one type of a saved oracle that skops does not trust by itself: the fitted trees of
# scikit-learn's HistGradientBoostingRegressor (plain arrays, no code). Anything else is refused.
TRUSTED_TYPES = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)
_ZIP_MAGIC = b"PK\x03\x04"


@functools.cache
def _openmp():
    """The process's threadpool controller, created on first use."""
    return ThreadpoolController()


def _check_frame(X, columns, what, missing_ok=()):
    """The float ``columns`` of ``X``, checked: present, numeric, finite (NaN allowed in ``missing_ok``), sizes >= 0."""
    if not isinstance(X, pd.DataFrame):
        raise InvalidInputError(f"{what} must be a pandas DataFrame with columns {list(columns)}")
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise InvalidInputError(f"{what} is missing column(s) {missing}; it has {list(X.columns)}")
    values = X.loc[:, list(columns)]
    try:
        values = values.astype(float)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} columns {list(columns)} must be numeric") from None
    array = values.to_numpy()
    # NaN may stand for "missing" in the columns of missing_ok; inf never may.
    bad = ~np.isfinite(array) & ~(np.isnan(array) & np.isin(list(columns), list(missing_ok)))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InvalidInputError(f"{what} has NaN or inf in column {columns[col]!r} (row {X.index[row]!r})")
    if "size" in values and (values["size"] < 0).any():
        # scikit-learn's wording for data outside a positive domain.
        raise InvalidInputError(f"Negative values in data passed to {what}: negative sizes")
    for column in ("depth", "mid"):
        if column in values and (values[column] <= 0).any():
            raise InvalidInputError(f"{what} has {column} <= 0; an empty book has no cost curve")
    return values


def _named(X: object) -> TypeGuard[pd.DataFrame]:
    """Whether ``X`` is read by column name: a DataFrame whose column names are all strings."""
    return isinstance(X, pd.DataFrame) and all(isinstance(name, str) for name in X.columns)


def _check_input(estimator, X, columns, reset, missing_ok=()):
    """The checked float ``columns`` of ``X`` as a DataFrame, and on ``reset`` the input schema.

    A DataFrame with string column names is read by name; any other array-like (as
    scikit-learn takes it, which includes a DataFrame with unnamed columns) by position, its
    first columns being ``columns`` in that order. Further columns are ignored
    in both, so that one table feeds the oracle and the baselines; an array must keep the
    width it was fitted with, as scikit-learn requires.
    """
    if _named(X):
        frame = _check_frame(X, columns, "X", missing_ok)
        names, width = np.asarray(columns, dtype=object), len(columns)
    else:
        try:
            array = check_array(X, dtype=float, ensure_all_finite=False)
        except ValueError as error:
            raise InvalidInputError(f"X: {error}") from None
        width = array.shape[1]
        # Fitted on an array, an array must have the fitted width (scikit-learn's rule).
        if not reset and not hasattr(estimator, "feature_names_in_") and width != estimator.n_features_in_:
            raise InvalidInputError(
                f"X has {width} features, but {type(estimator).__name__} is expecting "
                f"{estimator.n_features_in_} features as input"
            )
        if width < len(columns):
            raise InvalidInputError(
                f"X has {width} feature(s), but {type(estimator).__name__} needs at least {len(columns)}: "
                f"{list(columns)} in this order (or pass a DataFrame with these columns)"
            )
        frame = _check_frame(pd.DataFrame(array[:, : len(columns)], columns=list(columns)), columns, "X", missing_ok)
        names = None
    if reset:
        estimator.n_features_in_ = width
        # scikit-learn's convention: names only when fitted on named columns.
        if names is not None:
            estimator.feature_names_in_ = names
        elif hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    return frame


def _check_target(y, n, name):
    if y is None:
        raise InvalidInputError(f"{name} requires y to be passed, but the target y is None")
    try:
        # A column vector is taken with scikit-learn's DataConversionWarning.
        y = column_or_1d(y, dtype=float, warn=True)
    except ValueError:
        raise InvalidInputError(f"y must be 1-D with one value per row of X ({n}), got shape {np.shape(y)}") from None
    if y.shape[0] != n:
        raise InvalidInputError(f"y must be 1-D with one value per row of X ({n}), got shape {y.shape}")
    if not np.isfinite(y).all():
        raise InvalidInputError("y has NaN or inf")
    return y


class _BookInputMixin:
    """Declares to scikit-learn that ``X`` holds book quantities, not arbitrary reals."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()  # type: ignore[misc]  # from the estimator this mixes into
        # Sizes, depths and prices are positive and rejected otherwise; the tag makes
        # scikit-learn's checks shift their random matrices to the valid side.
        tags.input_tags.positive_only = True
        return tags


# Below this many rows prediction runs on one thread.
_THREADED_ROWS = 20_000
# Rows per run of equal states from which the trees are walked run by run (model/_trees.py).
_SHARED_RUN = 4
# Flattened trees per fitted booster; weak keys, so a refit (a new ``model_``) starts afresh
# and nothing extra is pickled with the oracle.
_FORESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class ImpactOracle(_BookInputMixin, RegressorMixin, BaseEstimator):
    """Gradient-boosting impact oracle ``g_hat(x | state)``, nondecreasing in size.

    A :class:`~sklearn.ensemble.HistGradientBoostingRegressor` on the features
    ``[size_feature, spread, depth, imbalance, volatility, hour_of_day]`` (``spread_bps =
    1e4 spread / mid`` in place of ``spread`` with ``target="bps"``) with
    ``monotonic_cst = +1`` on the size feature. ``vol_ratio = size / depth`` grows with ``size``
    at a fixed state, so either choice makes ``g_hat`` nondecreasing in ``x`` for every state.

    Parameters
    ----------
    size_feature : {"vol_ratio", "size"}
        How the trade size enters: relative to the book depth (transfers across stocks and
        times) or in shares.
    target : {"bps", "per_share", "log", None}
        What the boosted trees learn (named ``transform`` before 0.2.0; that alias was removed
        in 0.3.0). ``"per_share"`` learns the average cost per share
        ``c(x) = g(x) / x`` (close to the half-spread for small ``x``; far more homogeneous
        than ``g``) and predicts ``g_hat = x * max(c_hat, 0)``: with ``c_hat`` nondecreasing
        and nonnegative, ``g_hat`` is nondecreasing. ``"bps"`` (default) learns the same cost
        per share in basis points of the mid, ``1e4 g(x) / (x mid)``, from the spread in bps,
        and predicts ``g_hat = x mid max(c_hat, 0) / 1e4``: every quantity is then relative to
        the price level, so one model serves stocks of different prices (on the real-data
        benchmark it is what lets the oracle transfer to a held-out stock); it needs ``mid``.
        ``"log"`` learns ``log g`` (needs
        ``y > 0``) and predicts ``exp``: the geometric, not arithmetic, conditional mean, so
        biased low by the residual spread. ``None`` learns ``g`` itself.
    validation_fraction : float in (0, 1) or None
        Time-ordered early stopping: the trees are grown on the rows before the
        ``1 - validation_fraction`` quantile of the distinct timestamps, the number of
        iterations minimising the squared error on the later rows is kept, and the model is
        refitted on all rows with that many iterations. Rows sharing a timestamp (one book,
        several sizes) never straddle the cut, so the choice never looks ahead. ``None`` fits
        ``max_iter`` iterations on everything and does not need ``timestamp``. A plain array
        (or a DataFrame with unnamed columns) has no timestamps and is fitted as with ``None``: there is no time order to split on,
        and a random split would let the iteration count look ahead.
    features : {"state", "book"}
        ``"state"``: the state features (E17) above (the impact table); ``"seed"`` is its
        deprecated 0.2 name. ``"book"`` adds what sets
        the cost on the traded side (:func:`convexsched.data.features.side_features`): the queue at
        the touch, the side depth over 3 and 5 levels, the spread in ticks, and the order's
        share of the 5-level side depth ``size / side_depth_5`` (monotone like the size
        feature). The table then needs those columns (:func:`convexsched.impact_table` has them).
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization, random_state
        Passed to :class:`~sklearn.ensemble.HistGradientBoostingRegressor`.

    Attributes
    ----------
    feature_names_in_ : numpy.ndarray of str
        The columns read from ``X``, in the order a plain array must hold them.
    n_features_in_ : int
        Their number.
    features_ : tuple of str
        The trees' input columns (derived from ``feature_names_in_``), in order; the persisted
        schema.
    model_ : HistGradientBoostingRegressor
        The fitted trees.
    n_iter_ : int
        Boosting iterations kept.
    validation_curve_ : numpy.ndarray or None
        Validation squared error (in the transformed target) after each iteration.
    validation_start_ : pandas.Timestamp or None
        First timestamp of the validation rows.

    Examples
    --------
    >>> oracle = ImpactOracle().fit(table, table["slippage"])          # doctest: +SKIP
    >>> curves, report = oracle.cost_curves(states, np.arange(0, 10_001, 100),
    ...                                     return_report=True)          # doctest: +SKIP
    """

    def __init__(
        self,
        size_feature: str = "vol_ratio",
        target: str | None = "bps",
        validation_fraction: float | None = 0.2,
        max_iter: int = 300,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 20,
        l2_regularization: float = 0.0,
        random_state: int | None = None,
        features: str = "state",
    ) -> None:
        self.size_feature = size_feature
        self.target = target
        self.validation_fraction = validation_fraction
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.random_state = random_state
        self.features = features

    # ------------------------------------------------------------------ fitting
    def fit(self, X: ArrayLike | pd.DataFrame, y: ArrayLike) -> Self:
        """Fit the oracle on an impact table ``X`` and total costs ``y``; returns ``self``."""
        if self.size_feature not in SIZE_FEATURES:
            raise InvalidInputError(f"size_feature must be one of {SIZE_FEATURES}, got {self.size_feature!r}")
        if self.target not in TARGETS:
            raise InvalidInputError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.features == "seed":
            warnings.warn(
                'ImpactOracle(features="seed") is deprecated; use features="state" (removed in 0.4)', FutureWarning, stacklevel=2
            )
        elif self.features not in FEATURE_SETS:
            raise InvalidInputError(f"features must be one of {FEATURE_SETS}, got {self.features!r}")
        if y is None:
            _check_target(y, 0, type(self).__name__)
        frame = _check_input(self, X, self._columns(), reset=True, missing_ok=MISSING_OK)
        y = _check_target(y, len(frame), type(self).__name__)
        size = frame["size"].to_numpy()
        if self.target is not None and (size <= 0).any():
            raise InvalidInputError(f"target={self.target!r} needs sizes > 0; drop the size-0 rows (g(0) = 0 is known)")
        if self.target == "log" and (y <= 0).any():
            raise InvalidInputError("target='log' needs costs y > 0; use target='per_share' or None")
        features = self._design(frame)
        matrix = features.to_numpy()
        learned = self._forward(y, frame)

        self.validation_curve_ = None
        self.validation_start_ = None
        n_iter = self.max_iter
        if self.validation_fraction is not None and not 0 < self.validation_fraction < 1:
            raise InvalidInputError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if self.validation_fraction is not None and _named(X):
            if "timestamp" not in X.columns:
                raise InvalidInputError("time-ordered validation needs a 'timestamp' column in X")
            times = pd.DatetimeIndex(pd.to_datetime(X["timestamp"]))
            distinct = times.unique().sort_values()
            cut = distinct[min(int(len(distinct) * (1 - self.validation_fraction)), len(distinct) - 1)]
            early = np.asarray(times < cut)
            if not early.any() or early.all():
                raise InvalidInputError("too few distinct timestamps for a time-ordered validation split")
            probe = self._booster(self.max_iter).fit(matrix[early], learned[early])
            curve = np.array([np.mean((p - learned[~early]) ** 2) for p in probe.staged_predict(matrix[~early])])
            n_iter = int(np.argmin(curve)) + 1
            self.validation_curve_ = curve
            self.validation_start_ = cut
        self.model_ = self._booster(n_iter).fit(matrix, learned)
        self.n_iter_ = n_iter
        self.features_ = tuple(features.columns)
        return self

    def _booster(self, max_iter):
        # early_stopping=False: the built-in early stopping holds out a *random* subset, which
        # would let the iteration count peek at the future; ours is time-ordered (see fit).
        return HistGradientBoostingRegressor(
            max_iter=max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            monotonic_cst=self._monotone(),
            early_stopping=False,
            random_state=self.random_state,
        )

    def _monotone(self):
        # Positional: the trees are fitted on arrays (the receding loop predicts from arrays).
        names, _ = self._design_matrix({name: np.ones(1) for name in self._columns()})
        return [1 if name in (self.size_feature, "side_fill") else 0 for name in names]

    def _columns(self):
        side = SIDE_FEATURES if self.features == "book" else ()
        return ("size",) + STATE_COLUMNS + side + (("mid",) if self.target == "bps" else ())

    def _design(self, frame):
        names, matrix = self._design_matrix({name: frame[name].to_numpy(dtype=float) for name in self._columns()})
        return pd.DataFrame(matrix, columns=names)

    def _design_matrix(self, columns):
        """The trees' inputs from named 1-D arrays: (column names, matrix of shape (n, F))."""
        spread = columns["spread"]
        names = [self.size_feature] + [
            "spread_bps" if (name == "spread" and self.target == "bps") else name for name in STATE_COLUMNS
        ]
        size = columns["size"] / columns["depth"] if self.size_feature == "vol_ratio" else columns["size"]
        values = [size] + [
            1e4 * spread / columns["mid"] if (name == "spread" and self.target == "bps") else columns[name]
            for name in STATE_COLUMNS
        ]
        if self.features == "book":
            names += list(SIDE_FEATURES) + ["side_fill"]
            values += [columns[name] for name in SIDE_FEATURES]
            values.append(columns["size"] / np.maximum(columns["side_depth_5"], 1.0))
        return names, np.column_stack([np.asarray(v, dtype=float) for v in values])

    def _forward(self, y, frame):
        if self.target == "bps":
            return 1e4 * y / (frame["size"].to_numpy() * frame["mid"].to_numpy())
        if self.target == "per_share":
            return y / frame["size"].to_numpy()
        if self.target == "log":
            return np.log(y)
        return y

    # ------------------------------------------------------------------ prediction
    def predict(self, X: ArrayLike | pd.DataFrame) -> np.ndarray:
        """Predicted total cost ``g_hat(size | state)`` (currency) for every row of ``X``."""
        check_is_fitted(self, "model_")
        frame = _check_input(self, X, self._columns(), reset=False, missing_ok=MISSING_OK)
        return self.predict_columns({name: frame[name].to_numpy() for name in self._columns()})

    def predict_columns(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """:meth:`predict` for trusted arrays: ``columns`` maps every input column to a 1-D array.

        The receding loop's path: no DataFrame and no checks (its states were checked once).
        """
        check_is_fitted(self, "model_")
        _, design = self._design_matrix(columns)
        size = np.asarray(columns["size"], dtype=float)
        raw = self._raw_predict(design)
        if self.target == "bps":
            cost = size * np.asarray(columns["mid"], dtype=float) * np.maximum(raw, 0.0) / 1e4
        elif self.target == "per_share":
            cost = size * np.maximum(raw, 0.0)
        elif self.target == "log":
            cost = np.exp(raw)
        else:
            cost = raw
        return np.where(size > 0, cost, 0.0)

    def _raw_predict(self, design):
        """The booster's prediction of ``design``: run by run where rows share their state."""
        state = np.array([flag == 0 for flag in self._monotone()])
        trees = self._forest(design, state) if len(design) else None
        if trees is not None:
            starts = run_starts(design, state)
            # Bit for bit model_.predict (tests/model/test_trees.py), with each tree walked once
            # per run of equal states: a size grid per bucket, as the receding loop asks for.
            if len(design) >= _SHARED_RUN * (len(starts) - 1):
                return predict_runs(trees, design, starts)
        if len(design) < _THREADED_ROWS:
            # OpenMP start-up costs more than a small batch's trees: the receding horizon asks
            # for one bucket's grid at a time, which ran 5x faster on one thread. The controller
            # is built once: scanning the loaded libraries took longer than the prediction.
            with _openmp().limit(limits=1, user_api="openmp"):
                return self.model_.predict(design)
        return self.model_.predict(design)

    def _forest(self, design: np.ndarray, state: np.ndarray) -> Forest | None:
        predictors = getattr(self.model_, "_predictors", None)
        cached = _FORESTS.get(self.model_)
        # A refit of the same booster (warm start appends trees) must not meet stale trees.
        if cached is None or cached[0] is not predictors or cached[1] != len(predictors or ()):
            trees = forest(self.model_)
            # The walk reads scikit-learn's private tree arrays: before trusting it on a
            # booster, check it against model_.predict on the rows at hand, so that another
            # scikit-learn layout falls back to predict instead of answering wrongly.
            sample = design[:256]
            if trees is not None and not np.array_equal(
                predict_runs(trees, sample, run_starts(sample, state)), self.model_.predict(sample)
            ):
                warnings.warn(
                    "the compiled tree walk disagrees with scikit-learn's predict for this model; using predict",
                    RuntimeWarning,
                    stacklevel=3,
                )
                trees = None
            cached = (predictors, len(predictors or ()), trees)
            _FORESTS[self.model_] = cached
        return cached[2]

    def predict_grid(self, states: pd.DataFrame, sizes: ArrayLike) -> np.ndarray:
        """Raw predictions ``g_hat_i(x_u)`` for every bucket ``i`` and grid size ``x_u``.

        Parameters
        ----------
        states : pandas.DataFrame
            One row per bucket with the columns ``spread, depth, imbalance, volatility,
            hour_of_day`` and, for ``target="bps"``, ``mid`` (e.g. :meth:`convexsched.StateForecast.predict`).
        sizes : array_like, shape (G,)
            Size grid ``{0, dx, ..., x_max}`` in shares.

        Returns
        -------
        numpy.ndarray, shape (N, G)
            Predicted costs, nondecreasing along each row, 0 in the size-0 column.
        """
        check_is_fitted(self, "model_")
        sizes = np.asarray(sizes, dtype=float)
        if sizes.ndim != 1 or len(sizes) < 2:
            raise InvalidInputError(f"sizes must be a 1-D grid of at least 2 sizes, got shape {sizes.shape}")
        state = _check_frame(states, self._columns()[1:], "states", MISSING_OK)
        n, g = len(state), len(sizes)
        rows = state.loc[state.index.repeat(g)].reset_index(drop=True)
        rows.insert(0, "size", np.tile(sizes, n))
        return self.predict(rows).reshape(n, g)

    def cost_curves(
        self, states: pd.DataFrame, sizes: ArrayLike, convexify: str = "slopes-isotonic", return_report: bool = False
    ) -> CostCurves | tuple[CostCurves, ConvexifyReport]:
        """Convex cost curves (E18) of the oracle for every bucket, convexified (E19).

        Evaluates :meth:`predict_grid` and passes it through :func:`convexsched.convexify`.

        Parameters
        ----------
        states : pandas.DataFrame
            One row per bucket, indexed by bucket timestamp (the curves keep that index).
        sizes : array_like, shape (G,)
            Size grid ``{0, dx, ..., x_max}`` starting at 0; ``dx`` the execution granularity.
        convexify : str
            Convexifier, see :func:`convexsched.convexify`.
        return_report : bool
            Also return the :class:`~convexsched.ConvexifyReport` (how far the curves moved
            from the predictions).

        Returns
        -------
        CostCurves or (CostCurves, ConvexifyReport)
        """
        values = self.predict_grid(states, sizes)
        curves, report = _convexify(sizes, values, method=convexify, index=states.index)
        return (curves, report) if return_report else curves

    # ------------------------------------------------------------------ persistence
    @property
    def schema_(self) -> dict[str, object]:
        """What a saved oracle promises: input columns, size feature, target."""
        check_is_fitted(self, "model_")
        return {"features": self.features_, "size_feature": self.size_feature, "target": self.target}

    def save(self, path: str | Path) -> None:
        """Write the fitted oracle with its schema to ``path`` in skops' format.

        The file is no pickle: :meth:`load` reads it without running code from it (skops
        rebuilds only the types it trusts, and :data:`TRUSTED_TYPES`).
        """
        import skops.io

        check_is_fitted(self, "model_")
        fitted = {name: value for name, value in vars(self).items() if name.endswith("_") and not name.startswith("_")}
        if fitted.get("validation_start_") is not None:
            fitted["validation_start_"] = pd.Timestamp(fitted["validation_start_"]).isoformat()
        payload = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "sklearn_version": sklearn.__version__,
            "schema": self.schema_,
            "params": self.get_params(),
            "fitted": fitted,
        }
        skops.io.dump(payload, path)

    @classmethod
    def load(cls, path: str | Path) -> ImpactOracle:
        """Read an oracle written by :meth:`save` and check its feature schema.

        No code from the file runs: a file that is not in skops' format (a pickle or joblib
        file: unpickling runs whatever the file says) is refused before it is parsed, and a
        skops file holding any type skops does not trust besides :data:`TRUSTED_TYPES` is
        refused before anything is built from it.

        Raises
        ------
        DataError
            When the file is not a saved oracle (a pickle included), holds untrusted types, was
            written by another scikit-learn version, or its schema does not match the features
            this version of the code builds.
        """
        import skops.io

        path = Path(path)
        try:
            with open(path, "rb") as handle:
                head = handle.read(4)
        except FileNotFoundError:
            raise DataError(f"no such oracle file: {path}") from None
        except OSError as error:
            raise DataError(f"cannot read an oracle from {path}: {error.strerror or error}") from None
        if head != _ZIP_MAGIC:
            kind = (
                "a pickle (joblib) file" if head[:1] == b"\x80" or head[:2] in (b"x\x9c", b"\x1f\x8b") else "not a saved oracle"
            )
            raise DataError(
                f"{path} is {kind}: convexsched loads oracles only in skops' format, since unpickling a file runs "
                "any code it holds; refit with this version (`convexsched fit` writes skops)"
            )
        try:
            untrusted = skops.io.get_untrusted_types(file=path)
        except Exception as error:  # noqa: BLE001 -- a damaged archive fails in the zip or JSON reader
            raise DataError(f"cannot read an oracle from {path}: {type(error).__name__}") from None
        refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
        if refused:
            raise DataError(f"{path} holds types convexsched does not trust, refused unbuilt: {', '.join(refused[:5])}")
        try:
            payload = skops.io.load(path, trusted=list(untrusted))
        except Exception as error:  # noqa: BLE001 -- a damaged archive fails in many ways
            raise DataError(f"cannot read an oracle from {path}: {type(error).__name__}") from None
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise DataError(f"{path} is not a saved convexsched ImpactOracle")
        if payload.get("format_version") != _FORMAT_VERSION:
            raise DataError(f"{path} has oracle format {payload.get('format_version')}, expected {_FORMAT_VERSION}; refit")
        if payload.get("sklearn_version") != sklearn.__version__:
            raise DataError(
                f"{path} was saved with scikit-learn {payload.get('sklearn_version')}, this is "
                f"{sklearn.__version__}; tree models do not survive version changes: refit"
            )
        try:
            oracle = cls(**payload["params"])
            fitted = dict(payload["fitted"])
            if fitted.get("validation_start_") is not None:
                fitted["validation_start_"] = pd.Timestamp(fitted["validation_start_"])
            fitted["features_"] = tuple(fitted["features_"])
            for name, value in fitted.items():
                setattr(oracle, name, value)
            check_is_fitted(oracle, "model_")
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise DataError(f"{path} is not a complete saved ImpactOracle ({type(error).__name__})") from None
        expected = tuple(oracle._design(pd.DataFrame(columns=oracle._columns(), dtype=float)).columns)
        schema = payload.get("schema")
        if schema != oracle.schema_ or tuple(schema["features"]) != expected:
            raise DataError(f"{path} has feature schema {schema}, but this code builds features {list(expected)}; refit")
        return oracle


class HalfSpreadImpact(_BookInputMixin, RegressorMixin, BaseEstimator):
    """Baseline ``g(x) = spread / 2 * x``: cross the spread, no depth effect, nothing to learn.

    ``X`` is a DataFrame with the columns ``size, spread`` or an array of these two columns.

    Attributes
    ----------
    feature_names_in_ : numpy.ndarray of str
        ``["size", "spread"]``.
    n_features_in_ : int
        2.
    features_ : tuple of str
        The same names, as a tuple.
    """

    def fit(self, X: ArrayLike | pd.DataFrame, y: ArrayLike | None = None) -> Self:
        """Check ``X`` (and ``y``, when given); returns ``self``."""
        frame = _check_input(self, X, ("size", "spread"), reset=True)
        if y is not None:
            _check_target(y, len(frame), type(self).__name__)
        self.features_ = ("size", "spread")
        return self

    def predict(self, X: ArrayLike | pd.DataFrame) -> np.ndarray:
        """Half the spread times the size, for every row of ``X``."""
        check_is_fitted(self, "features_")
        frame = _check_input(self, X, self.features_, reset=False)
        return 0.5 * frame["spread"].to_numpy() * frame["size"].to_numpy()


class SquareRootImpact(_BookInputMixin, RegressorMixin, BaseEstimator):
    """Square-root-law baseline ``g(x) = spread/2 * x + c * sigma * P * x * sqrt(x / depth)``.

    ``c`` is fitted by least squares on the residual after the half-spread,
    ``c = <z, y - spread x / 2> / <z, z>`` with ``z = sigma P x sqrt(x / depth)``.

    ``X`` is a DataFrame with the columns ``size, spread, depth, volatility`` and ``price`` (when
    not ``None``), or an array of these columns in this order.

    Parameters
    ----------
    price : str or None
        Column with the price level ``P`` (e.g. the mid) that turns the dimensionless
        volatility of log returns into currency; ``None`` sets ``P = 1`` (the literal
        ``c * sigma * x * sqrt(x/depth)``), so that ``c`` absorbs the price level of the one
        stock it was fitted on.

    Attributes
    ----------
    coef_ : float
        The fitted ``c``.
    feature_names_in_ : numpy.ndarray of str
        The columns read from ``X``, in the order a plain array must hold them.
    n_features_in_ : int
        Their number.
    """

    def __init__(self, price: str = "mid") -> None:
        self.price = price

    def _terms(self, X, reset):
        columns = ("size", "spread", "depth", "volatility") + ((self.price,) if self.price else ())
        frame = _check_input(self, X, columns, reset)
        size = frame["size"].to_numpy()
        level = frame[self.price].to_numpy() if self.price else 1.0
        impact = frame["volatility"].to_numpy() * level * size * np.sqrt(size / frame["depth"].to_numpy())
        return 0.5 * frame["spread"].to_numpy() * size, impact

    def fit(self, X: ArrayLike | pd.DataFrame, y: ArrayLike) -> Self:
        """Fit ``c`` by least squares; returns ``self``."""
        if y is None:
            _check_target(y, 0, type(self).__name__)
        crossing, impact = self._terms(X, reset=True)
        y = _check_target(y, len(crossing), type(self).__name__)
        norm = float(impact @ impact)
        if norm == 0:
            raise InvalidInputError("the square-root term is 0 on every row (zero volatility or sizes)")
        self.coef_ = float(impact @ (y - crossing)) / norm
        return self

    def predict(self, X: ArrayLike | pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "coef_")
        crossing, impact = self._terms(X, reset=False)
        return crossing + self.coef_ * impact
