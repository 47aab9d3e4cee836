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

A run whose inputs are all constant but one rising column (a state on a size grid) skips the
walk: each tree's leaves, left to right, are the bits of a mask, and a node whose test
``x <= threshold`` fails clears the leaves of its left subtree; the leaf a row reaches is the
lowest bit left once every failed node has cleared its own (the exit leaf of QuickScorer,
Lucchese et al., SIGIR 2015). The constant columns' failed nodes are found once per run for
all trees (nodes sorted by threshold, stopped at the first that holds); the rising column's
nodes of a tree, sorted by threshold, fail one after the other along the run, cutting it into
ranges that share a leaf. No comparison decides a branch to take, so no branch is mispredicted.
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
    masks: LeafMasks | None = None


@dataclass(frozen=True)
class LeafMasks:
    """The trees' failed-node masks: leaves as bits (at most 64 per tree), nodes sorted by threshold.

    ``by_feature`` orders every split node by (feature, threshold), ``by_tree`` by (tree,
    feature, threshold); ``feature_start[k]`` and ``tree_start[t * F + k]`` delimit them.
    ``mask`` clears a node's left-subtree leaves; ``leaf_value[t, b]`` is tree ``t``'s ``b``-th leaf from the left.
    """

    feature_threshold: np.ndarray
    feature_tree: np.ndarray
    feature_mask: np.ndarray
    feature_start: np.ndarray
    tree_threshold: np.ndarray
    tree_mask: np.ndarray
    tree_start: np.ndarray
    tree_rank: np.ndarray
    leaf_value: np.ndarray


_ALL = (1 << 64) - 1


def leaf_masks(nodes: list[np.ndarray], n_features: int) -> LeafMasks | None:
    """:class:`LeafMasks` of scikit-learn's node arrays (one per tree); None past 64 leaves in a tree."""
    trees, features, thresholds, masks = [], [], [], []
    values = np.zeros((len(nodes), 64))
    for t, tree in enumerate(nodes):
        leaves: list[int] = []

        def visit(node, tree=tree, leaves=leaves, t=t):
            # In-order: the leaves of a subtree are one range of bits, left to right.
            if tree["is_leaf"][node]:
                leaves.append(node)
                return len(leaves) - 1, len(leaves)
            first, middle = visit(int(tree["left"][node]))
            _, end = visit(int(tree["right"][node]))
            trees.append(t)
            features.append(int(tree["feature_idx"][node]))
            thresholds.append(float(tree["num_threshold"][node]))
            masks.append(_ALL ^ (((1 << (middle - first)) - 1) << first))
            return first, end

        visit(0)
        if len(leaves) > 64:
            return None
        values[t, : len(leaves)] = tree["value"][leaves]
    tree_ids, feature_ids = np.array(trees, dtype=np.int64), np.array(features, dtype=np.int64)
    threshold, mask = np.array(thresholds, dtype=float), np.array(masks, dtype=np.uint64)
    by_feature = np.lexsort((threshold, feature_ids))
    by_tree = np.lexsort((threshold, feature_ids, tree_ids))
    groups = np.arange(len(nodes) * n_features + 1)
    return LeafMasks(
        feature_threshold=threshold[by_feature],
        feature_tree=tree_ids[by_feature],
        feature_mask=mask[by_feature],
        feature_start=np.searchsorted(feature_ids[by_feature], np.arange(n_features + 1)).astype(np.int64),
        tree_threshold=threshold[by_tree],
        tree_mask=mask[by_tree],
        tree_start=np.searchsorted((tree_ids * n_features + feature_ids)[by_tree], groups).astype(np.int64),
        tree_rank=np.argsort(by_feature)[by_tree].astype(np.int64),
        leaf_value=values,
    )


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
            masks=leaf_masks(nodes, int(model.n_features_in_)),
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
    masks = trees.masks
    if masks is None:
        # No run takes the masks' path (see _forest_runs); empty arrays keep one signature.
        masks = LeafMasks(
            np.zeros(0),
            np.zeros(0, np.int64),
            np.zeros(0, np.uint64),
            np.zeros(0, np.int64),
            np.zeros(0),
            np.zeros(0, np.uint64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros((0, 64)),
        )
    return _forest_runs(
        trees.feature,
        trees.threshold,
        trees.missing_left,
        trees.left,
        trees.right,
        trees.leaf,
        trees.value,
        trees.roots,
        trees.baseline,
        design,
        np.ascontiguousarray(starts, dtype=np.int64),
        trees.masks is not None,
        masks.feature_threshold,
        masks.feature_tree,
        masks.feature_mask,
        masks.feature_start,
        masks.tree_threshold,
        masks.tree_mask,
        masks.tree_start,
        masks.tree_rank,
        masks.leaf_value,
    )


# Bit positions by the top 5 bits of ``b * 0x077CB531`` for ``b`` a power of two below 2**32
# (a de Bruijn sequence); the product stays below 2**58, so nothing overflows.
_DE_BRUIJN = np.array(
    [0, 1, 28, 2, 29, 14, 24, 3, 30, 22, 20, 15, 25, 17, 4, 8, 31, 27, 13, 23, 21, 19, 16, 7, 26, 12, 18, 6, 11, 5, 10, 9],
    dtype=np.int64,
)


@njit
def _lowest_bit(mask):
    """Index of the lowest set bit of a nonzero uint64."""
    low, shift = mask & np.uint64(0xFFFFFFFF), 0
    if low == 0:
        low, shift = mask >> np.uint64(32), 32
    bit = low & (~low + np.uint64(1))
    return shift + _DE_BRUIJN[((bit * np.uint64(0x077CB531)) & np.uint64(0xFFFFFFFF)) >> np.uint64(27)]


@njit
def _scan_run(
    X,
    r0,
    r1,
    rising,
    out,
    masks,
    fails,
    feature_threshold,
    feature_tree,
    feature_mask,
    feature_start,
    tree_mask,
    tree_start,
    tree_rank,
    leaf_value,
):
    """Rows ``r0 .. r1-1``, constant but for column ``rising`` (-1: none), through every tree by masks."""
    n_trees, width = leaf_value.shape[0], X.shape[1]
    masks[:] = ~np.uint64(0)
    for k in range(width):
        if k == rising:
            continue
        x = X[r0, k]
        for p in range(feature_start[k], feature_start[k + 1]):
            if not feature_threshold[p] < x:
                break  # this node and every later one holds: x <= threshold
            masks[feature_tree[p]] &= feature_mask[p]
    if rising >= 0:
        # The first row failing each node on the rising column: one merge of the run's rows
        # with the nodes' thresholds, both sorted.
        row = r0
        for p in range(feature_start[rising], feature_start[rising + 1]):
            while row < r1 and X[row, rising] <= feature_threshold[p]:
                row += 1
            fails[p] = row
    for t in range(n_trees):
        mask, first = masks[t], r0
        if rising >= 0:
            for p in range(tree_start[t * width + rising], tree_start[t * width + rising + 1]):
                row = fails[tree_rank[p]]
                if row == r1:
                    break  # this node and the tree's later ones on the column hold for the whole run
                if row > first:
                    v = leaf_value[t, _lowest_bit(mask)]
                    for j in range(first, row):
                        out[j] += v
                    first = row
                mask &= tree_mask[p]
        v = leaf_value[t, _lowest_bit(mask)]
        for j in range(first, r1):
            out[j] += v


@njit
def _forest_runs(
    feature,
    threshold,
    missing_left,
    left,
    right,
    leaf,
    value,
    roots,
    baseline,
    X,
    starts,
    scan,
    feature_threshold,
    feature_tree,
    feature_mask,
    feature_start,
    tree_threshold,
    tree_mask,
    tree_start,
    tree_rank,
    leaf_value,
):
    n, width = X.shape
    out = np.zeros(n)
    out += baseline
    masks = np.empty(len(leaf_value), dtype=np.uint64)
    fails = np.empty(len(feature_threshold), dtype=np.int64)
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
        if scan:
            varying, count = -1, 0
            for k in range(width):
                if not constant[k]:
                    varying, count = k, count + (1 if ascending[k] else 2)
            if count <= 1:
                _scan_run(
                    X,
                    r0,
                    r1,
                    varying,
                    out,
                    masks,
                    fails,
                    feature_threshold,
                    feature_tree,
                    feature_mask,
                    feature_start,
                    tree_mask,
                    tree_start,
                    tree_rank,
                    leaf_value,
                )
                continue
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
