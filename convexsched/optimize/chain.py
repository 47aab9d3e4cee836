"""Exact solver on the inventory chain: objective (C) and every mix with psi > 0.

With ``psi > 0`` the objective is not separable, because ``R_i = S - sum_{k<=i} x_k`` couples
the buckets. It is a chain, though: ``x_i = R_{i-1} - R_i``, and with ``q_i = psi w_i`` the
value of the first ``i`` buckets as a function of the inventory left,

.. math::

    V_i(R) = \\min_{x} \\; V_{i-1}(R + x) + g_i(x) + \\frac{\\rho}{2} x^2 + \\frac{q_i}{2} R^2 ,
    \\qquad V_0 = \\iota_{\\{S\\}} ,

is convex. Its price ``p = -V_i'(R)`` is the marginal price offered to bucket ``i + 1``
(``mu_{i+1}`` below, (E10): (E3) with the risk term added):

.. math::

    g_i'(x_i) + \\rho x_i \\ni \\mu_i, \\qquad
    \\mu_i = \\lambda + \\sum_{j \\ge i} q_j R_j, \\qquad
    \\mu_{i+1} = \\mu_i - q_i R_i .

``rho = 0`` (C and its cost-only mixes): a forward pass in L log L
----------------------------------------------------------------------
The relation between ``p`` and ``R`` is one non-increasing polyline ``G`` in the ``(p, r)``
plane, from ``(-inf, S)`` (no price trades anything) to ``(+inf, S - sum c)``. Bucket ``i``
changes it in two exact steps:

* its response ``X_i(p)`` is a staircase: level ``(v, W)`` (equal slopes merged) is bought
  whole once ``p > v``. ``R = R_{i-1}(p) - X_i(p)`` inserts a vertical piece of length ``W``
  at price ``v`` and lowers everything at higher prices by ``W``;
* the risk term ``q_i R^2 / 2`` shears the plane, ``p -> p - q_i r``.

The polyline is stored as pieces ``(E, dr)`` in a treap ordered by position, with subtree sums
of ``E`` and ``dr``; a piece's price increment is ``dp = E + A dr`` with one global ``A``, so
the shear is O(1): ``A -= q_i`` and the anchor (the first piece's start, at the top inventory
``r_0``) moves by ``-q_i r_0``. Inserting a level is one descent by price (which adds the new
piece's sums on its way down), a split of at most one piece and one treap insertion: a node
holds two consecutive pieces, so the split's rest and the vertical share one new node next to
the split one. O(log L) expected. The inventory ``rtop`` at the top
of the inserted vertical piece is final for the bucket: later levels of the bucket sit at
higher prices, after it, and later buckets describe ``R_{i+1}``, not ``R_i``.

States no schedule can reach are cut after each bucket, which keeps the tree as long as the
inventory, not the capacity seen so far, requires: ``R_i < 0`` (``R_i >= R_N >= 0`` under both
budgets), and under ``=`` ``R_i`` above the capacity still ahead (``r_0`` becomes that
capacity). A level priced past the end of a polyline already down to zero inventory only
moves states below zero: it is recorded (``rtop <= 0``, so it buys nothing) and not inserted.

The terminal condition reads ``lambda`` off the last polyline: its crossing of ``R_N = 0``
(``=`` budget), or under ``<=`` the inventory at price 0 when it is positive (``lambda = 0``,
slack), else the crossing (``lambda <= 0``). The backward pass needs only the ``rtop``: on
``G_i`` the inventory ``R_i`` lies below exactly those parts of bucket ``i``'s vertical pieces
that bucket ``i`` bought, so

.. math::

    x_i = \\sum_l \\operatorname{clip}(rtop_{il} - R_i, 0, W_{il}), \\qquad R_{i-1} = R_i + x_i .

No price is recomputed and compared with a slope, so a rounding error in a price cannot move
``x_i`` by a whole level. Buckets joined by zero weights see one price, and the chain leaves
their split of a tied level arbitrary; they are re-split at the centre of the optimal face
(every bucket the same fraction of the tied level).

``rho > 0`` (B+C, Almgren-Chriss): backward shooting
----------------------------------------------------
Every bucket's response is then a continuous ramp function ``X_i(mu)``, so given the terminal
state ``(R_N, mu_N)`` the recursion ``x_i = X_i(mu_i)``, ``R_{i-1} = R_i + x_i``,
``mu_{i-1} = mu_i + q_{i-1} R_{i-1}`` determines everything, and ``R_0`` increases with the
terminal parameter (``lambda`` with ``R_N = 0``; under ``<=`` with slack, ``R_N`` with
``lambda = 0``). Bisection brackets ``R_0 = S`` until both ends of the bracket put every
bucket on the same piece of its response (or the bracket is two adjacent floats): there the
whole schedule is affine in the parameter, and interpolating the two ends' schedules is exact.
The backward recursion is the stable direction (the solution grows backwards as fast as any
error), but the parameter must resolve ``x_N``, which for an urgent schedule (Almgren-Chriss
with ``kappa N`` in the tens) is far below a rounding step of ``lambda``: prices are carried
relative to a base next to the knot that matters, and beyond ``kappa N`` of about 700, where
even that underflows, the chain is cut after the last bucket that still trades a
representable amount (see :func:`_ramp_chain`). Each sweep costs O(N log K); a search takes at
most about 130 sweeps (bisection down to adjacent floats, twice), usually far fewer, and the
cut, when needed, log2 N searches more.

The forward pass costs O(L log L) for ``L <= N K`` levels, and both keep O(L) memory, so
``solve`` needs no fallback up to 2 million segments (:data:`MAX_SEGMENTS`).
"""

from __future__ import annotations

import numpy as np

from .._jit import njit
from .kkt import multiplier_interval
from .waterfill import WaterLevel, centred_fill, ramps

# Real segments up to which the chain solver is measured and tested (23,400 x 64 has 1.5
# million; peak memory there is about 0.5 GB for the whole process). ``solve`` hands larger
# problems to Clarabel.
MAX_SEGMENTS = 2_000_000
# Treap height bound for the path buffers: a treap of 2 * 10^6 nodes is about 45 deep.
_MAX_DEPTH = 4096


def too_large(curves):
    """Whether the problem has more real segments than the chain solver was tested for."""
    return curves.n_buckets * curves.n_segments > MAX_SEGMENTS and np.count_nonzero(curves.widths) > MAX_SEGMENTS


# --------------------------------------------------------------------------------- rho = 0
@njit
def _levels(slopes, widths):
    """Real segments merged by equal slope: per-bucket offsets, level prices ``v``, widths ``W``."""
    n, k = slopes.shape
    start = np.zeros(n + 1, np.int64)
    v = np.empty(n * k)
    w = np.empty(n * k)
    m = 0
    for i in range(n):
        start[i] = m
        for j in range(k):
            width = widths[i, j]
            if width > 0:
                if m > start[i] and v[m - 1] == slopes[i, j]:
                    w[m - 1] += width
                else:
                    v[m] = slopes[i, j]
                    w[m] = width
                    m += 1
    start[n] = m
    return start, v[:m], w[:m]


@njit
def _priorities(count):
    """Treap priorities from splitmix64: deterministic, and as good as random for balance."""
    out = np.empty(count, np.uint64)
    golden = np.uint64(0x9E3779B97F4A7C15)
    mix1 = np.uint64(0xBF58476D1CE4E5B9)
    mix2 = np.uint64(0x94D049BB133111EB)
    z = np.uint64(0)
    for i in range(count):
        z += golden
        y = (z ^ (z >> np.uint64(30))) * mix1
        y = (y ^ (y >> np.uint64(27))) * mix2
        out[i] = y ^ (y >> np.uint64(31))
    return out


# One row of 10 floats per node, so that a descent reads one row per level: left and right
# child (-1: none), the node's two pieces in order (E, dr each), the sums of E and dr over the
# node's subtree and over its left subtree alone. Two pieces per node make every inserted level
# cost one node: the split of a piece and the new vertical share the node that follows.
_LEFT, _RIGHT, _E1, _DR1, _E2, _DR2, _SUM_E, _SUM_DR, _LEFT_E, _LEFT_DR = range(10)


@njit
def _pull(tree, node):
    """Recompute a node's subtree and left-subtree sums from its children."""
    left, right = int(tree[node, _LEFT]), int(tree[node, _RIGHT])
    left_e, left_d = 0.0, 0.0
    if left >= 0:
        left_e, left_d = tree[left, _SUM_E], tree[left, _SUM_DR]
    e = tree[node, _E1] + tree[node, _E2] + left_e
    d = tree[node, _DR1] + tree[node, _DR2] + left_d
    if right >= 0:
        e += tree[right, _SUM_E]
        d += tree[right, _SUM_DR]
    tree[node, _LEFT_E], tree[node, _LEFT_DR] = left_e, left_d
    tree[node, _SUM_E], tree[node, _SUM_DR] = e, d


@njit
def _new(tree, node, e1, d1, e2, d2):
    tree[node, _LEFT] = -1.0
    tree[node, _RIGHT] = -1.0
    tree[node, _E1], tree[node, _DR1], tree[node, _E2], tree[node, _DR2] = e1, d1, e2, d2
    tree[node, _SUM_E], tree[node, _SUM_DR] = e1 + e2, d1 + d2
    tree[node, _LEFT_E], tree[node, _LEFT_DR] = 0.0, 0.0
    return node


@njit
def _descend(tree, root, a, p0, r0, price, path, side, e, d):
    """Walk to the first node whose end price exceeds ``price``, adding ``(e, d)`` on the way.

    Returns ``(node, start price, start r, depth)``: ``path[:depth]`` holds the nodes above
    the one found and that node itself, ``side[j]`` the turn taken below ``path[j]`` (0 left,
    1 right). When every node ends at or before ``price``, ``node = -1``, the start is the
    polyline's end and the path is the right spine. A node inserted next to the one found lies
    in the subtree of every node on the path, so the walk adds its sums ``(e, d)`` to them as it
    goes (to their left sums too where it turns left). Subtree sums and a node's own increment
    may disagree by a rounding step; the last node left of which the walk turned is kept, so a
    walk that falls off a subtree returns that node (and takes back what it added below it),
    never a position inside the subtree.
    """
    current, start_p, start_r, depth = root, p0, r0, 0
    found, found_p, found_r, found_depth = -1, 0.0, 0.0, 0
    while current >= 0:
        path[depth] = current
        tree[current, _SUM_E] += e
        tree[current, _SUM_DR] += d
        left_r = tree[current, _LEFT_DR]
        node_p = start_p + tree[current, _LEFT_E] + a * left_r
        node_r = start_r + left_r
        if tree[current, _LEFT] >= 0 and node_p > price:
            tree[current, _LEFT_E] += e
            tree[current, _LEFT_DR] += d
            found, found_p, found_r, found_depth = current, node_p, node_r, depth + 1
            side[depth] = 0
            depth += 1
            current = int(tree[current, _LEFT])
            continue
        own_r = tree[current, _DR1] + tree[current, _DR2]
        end_p = node_p + tree[current, _E1] + tree[current, _E2] + a * own_r
        if end_p > price:
            return current, node_p, node_r, depth + 1
        side[depth] = 1
        depth += 1
        start_p, start_r = end_p, node_r + own_r
        current = int(tree[current, _RIGHT])
    if found < 0:
        return -1, start_p, start_r, depth
    # The nodes below the found one give back what the walk added, and so do the found node's
    # left sums: _attach adds those when it hangs the insertion right before it.
    _add_on_path(tree, path[found_depth:], side[found_depth:], depth - found_depth, -e, -d)
    tree[found, _LEFT_E] -= e
    tree[found, _LEFT_DR] -= d
    return found, found_p, found_r, found_depth


@njit
def _add_on_path(tree, path, side, depth, e, d):
    """Add a subtree's sums to the nodes ``path[:depth]`` above it (and to the left sums of
    those it lies left of)."""
    for j in range(depth):
        node = path[j]
        tree[node, _SUM_E] += e
        tree[node, _SUM_DR] += d
        if side[j] == 0:
            tree[node, _LEFT_E] += e
            tree[node, _LEFT_DR] += d


@njit
def _attach(tree, priority, root, path, side, depth, turn, node):
    """Hang leaf ``node`` next to ``path[depth - 1]`` and rotate it up by priority.

    ``turn = 1`` puts it right after that node in order (the leftmost slot of its right
    subtree), ``turn = 0`` right before it (the rightmost slot of its left subtree). The caller
    has added the leaf's sums to ``path[:depth]`` (the left sums of the last one excepted);
    the nodes passed below it gain them here. Returns the new root.
    """
    e, d = tree[node, _SUM_E], tree[node, _SUM_DR]
    above = path[depth - 1]
    side[depth - 1] = turn
    if turn == 0:
        tree[above, _LEFT_E] += e
        tree[above, _LEFT_DR] += d
    current = int(tree[above, turn])
    while current >= 0:
        path[depth] = current
        side[depth] = 1 - turn
        tree[current, _SUM_E] += e
        tree[current, _SUM_DR] += d
        if turn == 1:
            tree[current, _LEFT_E] += e
            tree[current, _LEFT_DR] += d
        depth += 1
        current = int(tree[current, 1 - turn])
    tree[path[depth - 1], side[depth - 1]] = node
    # Rotations keep the in-order sequence and every subtree sum above the rotated pair.
    while depth > 0 and priority[node] > priority[path[depth - 1]]:
        parent = path[depth - 1]
        if side[depth - 1] == 0:
            tree[parent, _LEFT] = tree[node, _RIGHT]
            tree[node, _RIGHT] = parent
        else:
            tree[parent, _RIGHT] = tree[node, _LEFT]
            tree[node, _LEFT] = parent
        _pull(tree, parent)
        _pull(tree, node)
        depth -= 1
        if depth > 0:
            tree[path[depth - 1], side[depth - 1]] = node
    return node if depth == 0 else root


@njit
def _price_at_zero_inventory(tree, root, a, p0, r0):
    """The price where the polyline crosses ``r = 0`` (its end price if it never does)."""
    current, start_p, start_r = root, p0, r0
    while current >= 0:
        left_r = tree[current, _LEFT_DR]
        node_p = start_p + tree[current, _LEFT_E] + a * left_r
        node_r = start_r + left_r
        if tree[current, _LEFT] >= 0 and node_r <= 0.0:
            current = int(tree[current, _LEFT])
            continue
        for e_col, d_col in ((_E1, _DR1), (_E2, _DR2)):
            if node_r <= 0.0:
                return node_p
            d = tree[current, d_col]
            dp = tree[current, e_col] + a * d
            if node_r + d <= 0.0:
                return node_p + dp * (node_r / -d)
            node_p, node_r = node_p + dp, node_r + d
        start_p, start_r = node_p, node_r
        current = int(tree[current, _RIGHT])
    return start_p


@njit
def _cut_below_zero(tree, root, r0, path):
    """Drop the pieces below ``r = 0`` and trim the one crossing it; returns the new root.

    ``R_i >= R_N >= 0`` under both budgets, so no optimal state lies below zero: the cut keeps
    the polyline as long as the inventory, not the capacity seen so far, requires. A node
    starting above zero is kept with its left subtree (nodes before it start higher still),
    one starting at or below zero is dropped with its right subtree; kept nodes are chained
    along their right links, and their sums recomputed bottom-up.
    """
    current, start_r, new_root, last, last_r, depth = root, r0, -1, -1, 0.0, 0
    while current >= 0:
        node_r = start_r + tree[current, _LEFT_DR]
        if node_r > 0.0:
            if last < 0:
                new_root = current
            else:
                tree[last, _RIGHT] = current
            last, last_r = current, node_r
            path[depth] = current
            depth += 1
            start_r = node_r + tree[current, _DR1] + tree[current, _DR2]
            current = int(tree[current, _RIGHT])
        else:
            current = int(tree[current, _LEFT])
    if last < 0:
        return -1
    tree[last, _RIGHT] = -1.0
    d1, d2 = tree[last, _DR1], tree[last, _DR2]
    if last_r + d1 < 0.0:
        # The first piece crosses zero: it keeps its part above, the second goes.
        tree[last, _E1] *= last_r / -d1
        tree[last, _DR1] = -last_r
        tree[last, _E2], tree[last, _DR2] = 0.0, 0.0
    elif last_r + d1 + d2 < 0.0:
        tree[last, _E2] *= (last_r + d1) / -d2
        tree[last, _DR2] = -(last_r + d1)
    for j in range(depth - 1, -1, -1):
        _pull(tree, path[j])
    return new_root


@njit
def _cut_above(tree, root, a, p0, r0, top, path):
    """Drop the pieces above ``r = top`` and trim the one crossing it; ``(new root, new p0)``.

    Under the ``=`` budget no inventory above the capacity still ahead can be completed, so
    those states go as the day runs out. The mirror image of :func:`_cut_below_zero`: a node
    ending below ``top`` is kept with its right subtree, one ending at or above it is dropped
    with its left subtree; kept nodes are chained along their left links. The new anchor is
    the price at ``r = top`` on the first node kept.
    """
    current, start_p, start_r, new_root, last, depth = root, p0, r0, -1, -1, 0
    first_p, first_r = p0, r0
    while current >= 0:
        left_r = tree[current, _LEFT_DR]
        node_p = start_p + tree[current, _LEFT_E] + a * left_r
        node_r = start_r + left_r
        own_r = tree[current, _DR1] + tree[current, _DR2]
        if node_r + own_r < top:
            if last < 0:
                new_root = current
            else:
                tree[last, _LEFT] = current
            last, first_p, first_r = current, node_p, node_r
            path[depth] = current
            depth += 1
            current = int(tree[current, _LEFT])
        else:
            start_p = node_p + tree[current, _E1] + tree[current, _E2] + a * own_r
            start_r = node_r + own_r
            current = int(tree[current, _RIGHT])
    if last < 0:
        return -1, p0
    tree[last, _LEFT] = -1.0
    d1 = tree[last, _DR1]
    dp1 = tree[last, _E1] + a * d1
    if first_r + d1 < top:
        # The first piece crosses top: its part above goes. A flat first piece (dr = 0) lies
        # wholly below top here, so nothing of it is cut.
        cut = min(max((first_r - top) / -d1, 0.0), 1.0) if d1 < 0.0 else 0.0
        anchor = first_p + cut * dp1
        tree[last, _E1] *= 1.0 - cut
        tree[last, _DR1] = d1 * (1.0 - cut)
    else:
        d2 = tree[last, _DR2]
        cut = min(max((first_r + d1 - top) / -d2, 0.0), 1.0)
        anchor = first_p + dp1 + cut * (tree[last, _E2] + a * d2)
        tree[last, _E1], tree[last, _DR1] = 0.0, 0.0
        tree[last, _E2] *= 1.0 - cut
        tree[last, _DR2] = d2 * (1.0 - cut)
    for j in range(depth - 1, -1, -1):
        _pull(tree, path[j])
    return new_root, anchor


@njit
def _staircase_chain(slopes, widths, q, total, le):
    """Forward pass over the buckets, terminal condition and backward pass (see the module).

    Returns ``(x, lambda)``.
    """
    n = slopes.shape[0]
    start, v, w = _levels(slopes, widths)
    capacity = len(v) + 1
    tree = np.empty((capacity, 10))
    priority = _priorities(capacity)
    path = np.empty(_MAX_DEPTH, np.int64)
    side = np.empty(_MAX_DEPTH, np.int64)
    rtop = np.empty(len(v))
    # The polyline starts at (p0, r0): r0 = S, or under "=" the capacity still ahead once that
    # is smaller (no larger inventory can be completed).
    root, used, a, p0, r0 = -1, 0, 0.0, 0.0, total
    future = np.empty(n)
    ahead = 0.0
    for i in range(n - 1, -1, -1):
        future[i] = ahead
        ahead += widths[i].sum()
    for i in range(n):
        for level in range(start[i], start[i + 1]):
            price, width = v[level], w[level]
            # A vertical piece has dp = E + A dr = 0 when inserted: E = -A dr = A W.
            e_vertical = a * width
            if root < 0:
                p0, root, rtop[level] = price, _new(tree, used, e_vertical, -width, 0.0, 0.0), r0
                used += 1
                continue
            end_r = r0 + tree[root, _SUM_DR]
            end_p = p0 + tree[root, _SUM_E] + a * tree[root, _SUM_DR]
            if end_r <= 0.0 and price >= end_p:
                # Past the end of a polyline already down to zero inventory: this level only
                # moves states below zero, which the cut drops.
                rtop[level] = end_r
                continue
            if price < p0:
                # Before the first piece: the vertical, then a flat run back to the anchor.
                node = _new(tree, used, e_vertical, -width, p0 - price, 0.0)
                used += 1
                depth, current = 0, root
                while current >= 0:
                    path[depth] = current
                    side[depth] = 0
                    tree[current, _SUM_E] += e_vertical + p0 - price
                    tree[current, _SUM_DR] -= width
                    if depth > 0:
                        tree[path[depth - 1], _LEFT_E] += e_vertical + p0 - price
                        tree[path[depth - 1], _LEFT_DR] -= width
                    depth += 1
                    current = int(tree[current, _LEFT])
                root = _attach(tree, priority, root, path, side, depth, 0, node)
                p0, rtop[level] = price, r0
                continue
            found, node_p, node_r, depth = _descend(tree, root, a, p0, r0, price, path, side, e_vertical, -width)
            if found < 0:
                # Past the last piece: a flat run to the price, then the vertical.
                flat = max(price - node_p, 0.0)
                _add_on_path(tree, path, side, depth, flat, 0.0)
                root = _attach(tree, priority, root, path, side, depth, 1,
                               _new(tree, used, flat, 0.0, e_vertical, -width))
                used += 1
                rtop[level] = node_r
                continue
            e1, d1 = tree[found, _E1], tree[found, _DR1]
            e2, d2 = tree[found, _E2], tree[found, _DR2]
            dp1, dp2 = e1 + a * d1, e2 + a * d2
            if price <= node_p:
                node = _new(tree, used, e_vertical, -width, 0.0, 0.0)
                root = _attach(tree, priority, root, path, side, depth, 0, node)
                rtop[level] = node_r
            elif price < node_p + dp1 or dp2 <= 0.0:
                # Inside the first piece: the node keeps its first part and the vertical; the
                # rest of the first piece and the second follow in a new node.
                t = min((price - node_p) / dp1, 1.0) if dp1 > 0 else 1.0
                tree[found, _E1], tree[found, _DR1] = t * e1, t * d1
                tree[found, _E2], tree[found, _DR2] = e_vertical, -width
                rtop[level] = node_r + t * d1
                node = _new(tree, used, e1 - t * e1, d1 - t * d1, e2, d2)
                root = _attach(tree, priority, root, path, side, depth, 1, node)
            else:
                # Inside the second piece: the node keeps its first piece and part of the
                # second; the vertical and the rest of the second follow in a new node.
                t = min((price - node_p - dp1) / dp2, 1.0)
                tree[found, _E2], tree[found, _DR2] = t * e2, t * d2
                rtop[level] = node_r + d1 + t * d2
                node = _new(tree, used, e_vertical, -width, e2 - t * e2, d2 - t * d2)
                root = _attach(tree, priority, root, path, side, depth, 1, node)
            used += 1
        if root >= 0 and r0 + tree[root, _SUM_DR] < 0.0:
            root = _cut_below_zero(tree, root, r0, path)
        if not le and future[i] < r0:
            root, p0 = _cut_above(tree, root, a, p0, r0, future[i], path)
            r0 = future[i]
        a -= q[i]
        p0 -= q[i] * r0

    r_end = 0.0
    if root < 0:
        level_price = 0.0
    else:
        level_price = _price_at_zero_inventory(tree, root, a, p0, r0)
    if le and root >= 0:
        # The inventory at price 0 (right limit): positive means slack is cheaper than trading.
        inventory = r0
        if p0 <= 0.0:
            node, node_p, node_r, depth = _descend(tree, root, a, p0, r0, 0.0, path, side, 0.0, 0.0)
            inventory = node_r
            if node >= 0:
                for e_col, d_col in ((_E1, _DR1), (_E2, _DR2)):
                    d = tree[node, d_col]
                    dp = tree[node, e_col] + a * d
                    if node_p + dp > 0.0:
                        inventory = node_r + (d * min(max(-node_p / dp, 0.0), 1.0) if dp > 0 else 0.0)
                        break
                    node_p, node_r = node_p + dp, node_r + d
                    inventory = node_r
        if inventory > 0.0:
            level_price, r_end = 0.0, inventory
        else:
            level_price = min(level_price, 0.0)
    if le and root < 0:
        # No capacity at all: everything is left over.
        r_end = total

    x = np.empty(n)
    remaining = r_end
    for i in range(n - 1, -1, -1):
        bought = 0.0
        for level in range(start[i], start[i + 1]):
            above = rtop[level] - remaining
            if above > 0.0:
                bought += min(above, w[level])
        x[i] = bought
        remaining += bought
    return x, level_price


def _centre_ties(slopes, widths, x, q):
    """Re-split runs of buckets joined by zero weights at the centre of their optimal face.

    Inside such a run ``mu`` is the same for every bucket and no inventory term separates them:
    given the run's total, the run is objective (A), whose centred water-filling splits a tied
    level in equal fractions.
    """
    n = len(x)
    i = 0
    while i < n - 1:
        if q[i] > 0:
            i += 1
            continue
        j = i
        while j < n - 1 and q[j] == 0:
            j += 1
        rows = slice(i, j + 1)
        run_total = float(x[rows].sum())
        x[rows] = centred_fill(slopes[rows], widths[rows], run_total)
        i = j + 1
    return x


# --------------------------------------------------------------------------------- rho > 0
@njit
def _sweep(start, knots, fills, q, rho, from_level, base, parameter, x, piece):
    """The backward recursion from the terminal state; returns ``R_0``.

    ``from_level``: the parameter is ``lambda - base`` and ``R_N = 0``; otherwise it is ``R_N``
    with ``lambda = 0``. Prices are carried as ``base + offset`` and compared with a knot as
    ``(base - knot) + offset``: with ``base`` on or next to the knots that matter, a price a
    tiny amount above a knot keeps that amount (the tail of an urgent schedule trades it).
    ``piece[i]`` records which piece of its response bucket ``i`` is on.
    """
    n = len(q)
    if from_level:
        remaining, offset = 0.0, parameter
    else:
        remaining, offset = parameter, q[n - 1] * parameter - base
    for i in range(n - 1, -1, -1):
        lo, hi = start[i], start[i + 1]
        # j = lo + the number of knots at or below the price.
        j, top = lo, hi
        while j < top:
            middle = (j + top) // 2
            if (base - knots[middle]) + offset >= 0.0:
                j = middle + 1
            else:
                top = middle
        if j == lo:
            bought = 0.0
        elif j == hi:
            bought = fills[hi - 1]
        elif (j - lo) % 2 == 1:
            bought = min(fills[j - 1] + ((base - knots[j - 1]) + offset) / rho, fills[j])
        else:
            bought = fills[j - 1]
        x[i] = bought
        piece[i] = j - lo
        remaining += bought
        if i > 0:
            offset += q[i - 1] * remaining
    return remaining


@njit
def _shoot(start, knots, fills, q, rho, from_level, base, low, high, total):
    """Bisect the terminal parameter until the schedule is affine on the bracket; interpolate.

    Requires ``R_0(low) <= total <= R_0(high)``. Returns ``(x, parameter, resolved, low,
    high)``: ``resolved`` is False when the bracket closed to two adjacent floats first, with
    ends whose ``R_0`` still differ by more than rounding.
    """
    n = len(q)
    x_low, x_high, x_mid = np.empty(n), np.empty(n), np.empty(n)
    piece_low = np.empty(n, np.int64)
    piece_high = np.empty(n, np.int64)
    piece_mid = np.empty(n, np.int64)
    total_low = _sweep(start, knots, fills, q, rho, from_level, base, low, x_low, piece_low)
    total_high = _sweep(start, knots, fills, q, rho, from_level, base, high, x_high, piece_high)
    affine = np.array_equal(piece_low, piece_high)
    while not affine:
        middle = 0.5 * (low + high)
        if middle <= low or middle >= high:
            break
        total_mid = _sweep(start, knots, fills, q, rho, from_level, base, middle, x_mid, piece_mid)
        if total_mid < total:
            low, total_low = middle, total_mid
            x_low, x_mid = x_mid, x_low
            piece_low, piece_mid = piece_mid, piece_low
        else:
            high, total_high = middle, total_mid
            x_high, x_mid = x_mid, x_high
            piece_high, piece_mid = piece_mid, piece_high
        affine = np.array_equal(piece_low, piece_high)
    theta = (total - total_low) / (total_high - total_low) if total_high > total_low else 1.0
    theta = min(max(theta, 0.0), 1.0)
    x = x_low + theta * (x_high - x_low)
    resolved = affine or total_high - total_low <= 1e-12 * total
    return x, low + theta * (high - low), resolved, low, high


def _terminal_shoot(start, knots, fills, q, rho, low, high, total):
    """``lambda`` for ``R = 0`` after the last bucket of ``q``: ``(x, lambda, resolved)``.

    When the bracket on ``lambda`` closes to adjacent floats first, the search restarts with
    the price measured from the bracket's lower end, which resolves ``lambda`` down to the
    smallest floats above its knot instead of one rounding step of it.
    """
    x, level, resolved, low, high = _shoot(start, knots, fills, q, rho, True, 0.0, low, high, total)
    if not resolved:
        x, offset, resolved, _, _ = _shoot(start, knots, fills, q, rho, True, low, 0.0, high - low, total)
        level = low + offset
    return x, level, resolved


def _ramp_chain(curves, total, q, rho, le):
    """``rho > 0``: bracket the terminal parameter, then :func:`_shoot`. Returns ``(x, lambda)``.

    An urgent enough schedule (Almgren-Chriss ``kappa N`` beyond about 700) trades amounts in
    its last buckets that underflow even relative to a knot. Then the chain is cut after the
    last bucket ``m`` that still resolves (bisection over ``m``), and later buckets trade
    nothing: they would have traded less than ``1e-300`` of the first bucket's amount.
    """
    slopes = np.ascontiguousarray(curves.slopes, dtype=float)
    widths = np.ascontiguousarray(curves.widths, dtype=float)
    start, knots, fills = ramps(slopes, widths, rho)
    n = len(q)
    # Below every knot nothing trades; above every knot every bucket is full.
    margin = 1.0 + float(np.abs(knots).max())
    low, high = float(knots.min()) - margin, float(knots.max()) + margin
    if le:
        at_zero = _sweep(start, knots, fills, q, rho, True, 0.0, 0.0, np.empty(n), np.empty(n, np.int64))
        if at_zero < total:
            # Slack: lambda = 0 and the inventory left over is the parameter.
            x, _, _, _, _ = _shoot(start, knots, fills, q, rho, False, 0.0, 0.0, total, total)
            return x, 0.0
        high = 0.0
    low = min(low, high)
    x, level, resolved = _terminal_shoot(start, knots, fills, q, rho, low, high, total)
    if resolved:
        return x, level
    shortest = int(np.searchsorted(np.cumsum(curves.capacity), total, side="left")) + 1
    lo_m, hi_m, best = shortest, n - 1, None
    while lo_m <= hi_m:
        m = (lo_m + hi_m) // 2
        x_m, level_m, resolved = _terminal_shoot(start, knots, fills, q[:m], rho, low, high, total)
        if resolved:
            best, lo_m = (m, x_m, level_m), m + 1
        else:
            hi_m = m - 1
    if best is None:
        return x, level
    m, x_m, level = best
    x = np.zeros(n)
    x[:m] = x_m
    return x, level


# --------------------------------------------------------------------------------- entry point
def inventory_chain(curves, total, objective, sense="eq"):
    """Solve the objective family with ``psi > 0`` exactly on the inventory chain.

    Parameters
    ----------
    curves : CostCurves
    total : float
        The budget ``S`` (shares), already validated.
    objective : Objective
        Any ``rho, psi >= 0`` and weights; with ``psi = 0`` it reproduces (A)/(B).
    sense : "eq" | "le"

    Returns
    -------
    WaterLevel
        ``x``, ``lambda`` (the water level, same sign convention as :mod:`waterfill`) and the
        interval of levels that certify the schedule.
    """
    n = curves.n_buckets
    q = objective.psi * objective.weight_vector(n)
    le = sense == "le"
    capacity = curves.capacity
    if total <= 0:
        x, level = np.zeros(n), 0.0
    elif not le and total >= capacity.sum():
        x, level = capacity.copy(), 0.0
    elif objective.rho > 0:
        x, level = _ramp_chain(curves, total, q, objective.rho, le)
    else:
        slopes = np.ascontiguousarray(curves.slopes, dtype=float)
        widths = np.ascontiguousarray(curves.widths, dtype=float)
        x, level = _staircase_chain(slopes, widths, q, float(total), le)
        if (q[:-1] == 0).any():
            x = _centre_ties(slopes, widths, x, q)
    x = np.minimum(x, capacity)
    # The level from the forward pass carries its rounding; the certified interval is read off
    # x itself, and the level kept inside it.
    lo, hi = multiplier_interval(curves, total, objective, x, sense=sense, snap=1e-9 * max(total, 1.0))
    level = float(np.clip(level, lo, hi)) if lo <= hi else 0.5 * (lo + hi)
    if le:
        level = min(level, 0.0)
    if not np.isfinite(level):
        level = lo if np.isfinite(lo) else (hi if np.isfinite(hi) else 0.0)
    return WaterLevel(x, level, (lo, hi), iterations=n)
