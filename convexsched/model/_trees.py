"""The oracle's boosted trees evaluated run by run: the same sums as scikit-learn, less work.

The receding loop asks the oracle for every bucket ahead on a size grid: runs of 33 rows whose
inputs differ only in the size features. :meth:`HistGradientBoostingRegressor.predict` walks
every row through every tree. :func:`predict_runs` walks a run through a tree once, splitting
it only at nodes on an input that varies inside the run (in practice the size); a node on an
input constant in the run sends the whole run one way after one comparison. Every row still
takes exactly scikit-learn's path (``x <= threshold`` goes left, NaN goes where the node sends
missing values) and its leaf values are added in scikit-learn's order (``0 + baseline``, then
tree by tree), so the predictions are bit for bit those of ``predict``. Runs are only a hint
of where the work can be shared: any split of the rows into runs gives the same result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .._jit import njit

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingRegressor


@dataclass(frozen=True)
class Forest:
    """The fitted trees of a one-output regressor as flat node arrays (children are global indices)."""

    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    baseline: float
    n_features: int


def forest(model: HistGradientBoostingRegressor) -> Forest | None:
    """The trees of a fitted :class:`~sklearn.ensemble.HistGradientBoostingRegressor`, flattened.

    Returns ``None`` where :func:`predict_runs` would not reproduce ``model.predict``: categorical
    features, more than one tree per iteration, a link function other than the identity, or a
    model not fitted.
    """
    predictors = getattr(model, "_predictors", None)
    baseline = np.asarray(getattr(model, "_baseline_prediction", np.nan), dtype=float)
    if not predictors or baseline.size != 1 or any(len(trees) != 1 for trees in predictors):
        return None
    if type(model._loss.link).__name__ != "IdentityLink":
        return None
    categorical = getattr(model, "is_categorical_", None)
    if categorical is not None and np.any(categorical):
        return None
    try:
        nodes = [trees[0].nodes for trees in predictors]
        if any(n["is_categorical"].any() for n in nodes):
            return None
        sizes = np.array([len(n) for n in nodes])
        roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        offset = np.repeat(roots, sizes)
        joined = np.concatenate(nodes)
        return Forest(
            feature=joined["feature_idx"].astype(np.int64),
            threshold=joined["num_threshold"].astype(float),
            missing_left=joined["missing_go_to_left"].astype(np.bool_),
            left=joined["left"].astype(np.int64) + offset,
            right=joined["right"].astype(np.int64) + offset,
            leaf=joined["is_leaf"].astype(np.bool_),
            value=joined["value"].astype(float),
            roots=roots,
            baseline=float(baseline.ravel()[0]),
            n_features=int(model.n_features_in_),
        )
    except (AttributeError, KeyError, ValueError):
        # The node arrays are scikit-learn's private layout: where it differs, predict serves.
        return None


def run_starts(design: np.ndarray, state: np.ndarray) -> np.ndarray:
    """Start of every run of consecutive rows equal on the ``state`` columns, and ``len(design)``."""
    changed = (design[1:, state] != design[:-1, state]).any(axis=1)
    return np.concatenate([[0], np.flatnonzero(changed) + 1, [len(design)]]).astype(np.int64)


def predict_runs(trees: Forest, design: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The regressor's prediction for every row of ``design``, evaluated run by run.

    Parameters
    ----------
    trees : Forest
        From :func:`forest`.
    design : numpy.ndarray, shape (n, F)
        The trees' inputs.
    starts : numpy.ndarray of int, shape (R + 1,)
        ``0 = starts[0] < ... < starts[R] = n``: run ``r`` is rows ``starts[r] .. starts[r+1]-1``.

    Returns
    -------
    numpy.ndarray, shape (n,)
        Equal to ``model.predict(design)``.
    """
    design = np.ascontiguousarray(design, dtype=float)
    if design.ndim != 2 or design.shape[1] != trees.n_features:
        raise ValueError(f"design of shape {design.shape} for trees of {trees.n_features} features")
    return _forest_runs(trees.feature, trees.threshold, trees.missing_left, trees.left, trees.right,
                        trees.leaf, trees.value, trees.roots, trees.baseline, design,
                        np.ascontiguousarray(starts, dtype=np.int64))


@njit
def _forest_runs(feature, threshold, missing_left, left, right, leaf, value, roots, baseline, X, starts):
    n, width = X.shape
    out = np.zeros(n)
    out += baseline
    rows = np.arange(n)
    spill = np.empty(n, dtype=np.int64)
    # Pending subtrees of a depth-first walk: (node, first, end) into ``rows``.
    stack_node = np.empty(len(feature), dtype=np.int64)
    stack_first = np.empty(len(feature), dtype=np.int64)
    stack_end = np.empty(len(feature), dtype=np.int64)
    constant = np.empty(width, dtype=np.bool_)
    ascending = np.empty(width, dtype=np.bool_)
    for run in range(len(starts) - 1):
        r0, r1 = starts[run], starts[run + 1]
        for k in range(width):
            # NaN compares false: a column with NaN is neither, and takes the row-by-row branch.
            same, rising = True, True
            for r in range(r0 + 1, r1):
                if X[r, k] != X[r0, k]:
                    same = False
                if not X[r, k] >= X[r - 1, k]:
                    rising = False
            constant[k] = same and not np.isnan(X[r0, k])
            ascending[k] = rising and not np.isnan(X[r0, k])
        for root in roots:
            # Each tree starts from the run in its own order (the last one's splits permuted it).
            for r in range(r0, r1):
                rows[r] = r
            stack_node[0], stack_first[0], stack_end[0] = root, r0, r1
            top = 1
            while top > 0:
                top -= 1
                node, a, b = stack_node[top], stack_first[top], stack_end[top]
                while not leaf[node]:
                    k = feature[node]
                    if constant[k]:
                        node = left[node] if X[rows[a], k] <= threshold[node] else right[node]
                        continue
                    if ascending[k]:
                        # Splits are stable, so rows[a:b] keeps the run's order and a column
                        # rising over the run rises here: the rows going left are a prefix.
                        lo, hi = a, b
                        while lo < hi:
                            mid = (lo + hi) // 2
                            if X[rows[mid], k] <= threshold[node]:
                                lo = mid + 1
                            else:
                                hi = mid
                        m = lo
                    else:
                        # A stable split: left rows kept in order at the front, right ones after.
                        m, spilled = a, 0
                        for j in range(a, b):
                            x = X[rows[j], k]
                            if missing_left[node] if np.isnan(x) else x <= threshold[node]:
                                rows[m] = rows[j]
                                m += 1
                            else:
                                spill[spilled] = rows[j]
                                spilled += 1
                        for j in range(spilled):
                            rows[m + j] = spill[j]
                    if m == a:
                        node = right[node]
                    elif m == b:
                        node = left[node]
                    else:
                        stack_node[top], stack_first[top], stack_end[top] = right[node], m, b
                        top += 1
                        node, b = left[node], m
                for j in range(a, b):
                    out[rows[j]] += value[node]
    return out
