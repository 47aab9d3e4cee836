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

``rho = 0`` (C and its cost-only mixes): a forward pass over a block list
------------------------------------------------------------------------
The relation between ``p`` and ``R`` is one non-increasing polyline ``G`` in the ``(p, r)``
plane, from ``(-inf, S)`` (no price trades anything) to ``(+inf, S - sum c)``. Bucket ``i``
changes it in two exact steps:

* its response ``X_i(p)`` is a staircase: level ``(v, W)`` (equal slopes merged) is bought
  whole once ``p > v``. ``R = R_{i-1}(p) - X_i(p)`` inserts a vertical piece of length ``W``
  at price ``v`` and lowers everything at higher prices by ``W``;
* the risk term ``q_i R^2 / 2`` shears the plane, ``p -> p - q_i r``.

The polyline is stored as pieces ``(E, dr)`` in order, in blocks of a few dozen contiguous
pieces (linked in order) with the sums of ``E`` and ``dr`` per block; a piece's price increment is
``dp = E + A dr`` with one global ``A``, so the shear is O(1): ``A -= q_i`` and the anchor (the
first piece's start, at the top inventory ``r_0``) moves by ``-q_i r_0``. A vertical piece
moves no price, so a bucket's levels, which come in increasing price, are placed by one walk
forward along the polyline: whole blocks are passed on their sums, pieces inside a block one by
one; a level splits at most one piece and goes in next to it (a full block is halved first).
A bucket costs about ``blocks + K * block size``, read from memory in order, where a search
tree pays ``K log L`` dependent node visits. The inventory ``rtop`` at the top of the
inserted vertical piece is final for the bucket: later levels of the bucket sit at higher
prices, after it, and later buckets describe ``R_{i+1}``, not ``R_i``.

States no schedule can reach are cut after each bucket, which keeps the polyline as long as the
inventory, not the capacity seen so far, requires: ``R_i < 0`` (``R_i >= R_N >= 0`` under both
budgets), and under ``=`` ``R_i`` above the capacity still ahead (``r_0`` becomes that
capacity). A level priced past the end of a polyline already down to zero inventory only
moves states below zero: it is recorded (``rtop <= 0``, so it buys nothing) and not inserted.
Levels priced below the whole polyline whose states all lie above the cut only lower it: they
are recorded as bought whole and the anchor moves down by their width.

The same cuts keep any bounds ``low_i <= R_i <= high_i``: the pass then solves the problem
with those constraints added, and when its solution stays clear of every bound tighter than
the problem's own, that is the solution without them (the problem is convex). On large
problems the pass runs in stages (:data:`STAGES`): the problem with each bucket's segments
merged 32 at a time (their chord), then merged 8 at a time within 15% of ``S`` of that path,
then exact within 2% of the second path. The polyline then holds only the states near the
path, and a bucket's levels priced below it cost O(1) each; a stage whose solution touches its
bounds runs again without them.

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

The forward pass costs O(N (L / b + K b)) for ``L <= N K`` levels and blocks of ``b`` pieces
(``b`` grows with the problem; the staged pass's ``L`` is the levels near the path), and both
keep O(L) memory, so
``solve`` needs no fallback up to 2 million segments (:data:`MAX_SEGMENTS`).
"""

from __future__ import annotations

import threading

import numpy as np

from .._jit import njit
from .kkt import multiplier_interval
from .waterfill import WaterLevel, centred_fill, ramps

# Real segments up to which the chain solver is measured and tested (23,400 x 64 has 1.5
# million; peak memory there is about 0.5 GB for the whole process). ``solve`` hands larger
# problems to Clarabel.
MAX_SEGMENTS = 2_000_000


def _block_size(segments):
    """Pieces per block of the forward pass.

    A walk over a bucket costs about ``blocks + K * size``, so larger problems (longer
    polylines) take larger blocks.
    """
    return 32 if segments <= 200_000 else 256


# The forward pass's stages (see _forward_pass): segments merged per level, and the bounds'
# distance (a fraction of S) from the previous stage's path; a coarse stage is used when it
# leaves at least two levels per bucket, and stages at all from this many segments. At
# 390 x 64, on the benchmark's instance and two real books, the paths merged 32 and 8 at a
# time came within 6.6% and 0.8% of S of the exact ones; the exact pass within 2% took a
# ninth of the full one.
STAGES = ((32, 0.0), (8, 0.15), (1, 0.02))
BANDED_SEGMENTS = 8192


def _blocks_needed(levels, size):
    """Blocks the forward pass may hold at once for ``levels`` levels.

    Every insertion adds at most two pieces, and every block but the first and the two ends
    holds at least size / 2 - 1 of them (a split halves a full block).
    """
    return (2 * levels + 2) // (size // 2 - 1) + 8


# Work arrays reused across calls, one set per thread: fresh memory costs a page fault per
# 4 KiB on first touch, about a seventh of a 390 x 64 solve. Sets above this many bytes are
# not kept (23,400 x 64 needs about 100 MB).
_KEEP_BYTES = 32 * 2**20
_work = threading.local()


def _work_arrays(levels, size):
    """``(E, D, levels_buffer)`` for :func:`_staircase_chain`.

    The thread's kept arrays when large enough, else fresh ones (kept if small enough).
    """
    blocks = _blocks_needed(levels, size)
    kept = getattr(_work, "arrays", None)
    if kept is not None and kept[0].shape[1] == size and kept[0].shape[0] >= blocks and kept[2].shape[1] >= levels:
        return kept
    arrays = (np.empty((blocks, size)), np.empty((blocks, size)), np.empty((3, max(levels, 1))))
    if sum(array.nbytes for array in arrays) <= _KEEP_BYTES:
        _work.arrays = arrays
    return arrays


def too_large(curves):
    """Whether the problem has more real segments than the chain solver was tested for."""
    return curves.n_buckets * curves.n_segments > MAX_SEGMENTS and np.count_nonzero(curves.widths) > MAX_SEGMENTS


# --------------------------------------------------------------------------------- rho = 0
@njit
def _levels(slopes, widths, v, w):
    """Real segments merged by equal slope: per-bucket offsets, level prices ``v``, widths ``W``.

    ``v`` and ``w`` are written into the given arrays (of length at least ``N K``).
    """
    n, k = slopes.shape
    start = np.zeros(n + 1, np.int64)
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
def _coarsened(slopes, widths, group):
    """Each bucket's segments merged ``group`` at a time into their chord.

    The width summed, the slope width-weighted (a group with no width keeps its last slope).
    Sorted rows stay sorted.
    """
    n, k = slopes.shape
    m = (k + group - 1) // group
    coarse_slopes = np.empty((n, m))
    coarse_widths = np.empty((n, m))
    for i in range(n):
        for c in range(m):
            width, paid = 0.0, 0.0
            for j in range(c * group, min((c + 1) * group, k)):
                width += widths[i, j]
                paid += slopes[i, j] * widths[i, j]
            coarse_widths[i, c] = width
            coarse_slopes[i, c] = paid / width if width > 0 else slopes[i, min((c + 1) * group, k) - 1]
    return coarse_slopes, coarse_widths


@njit
def _resum(E, D, count, sum_e, sum_dr, block):
    e, d = 0.0, 0.0
    for j in range(count[block]):
        e += E[block, j]
        d += D[block, j]
    sum_e[block], sum_dr[block] = e, d


@njit
def _split(E, D, count, sum_e, sum_dr, nxt, prv, free, block, j):
    """Split the full ``block`` in two halves, the new one linked in after it.

    Both halves' sums are summed afresh (the walk meets the new one ahead). Returns the block
    and offset the insertion place ``j`` went to, and the new block. ``free[0]`` counts the
    free blocks, which ``free[1:]`` lists.
    """
    new = free[free[0]]
    free[0] -= 1
    half = count[block] // 2
    moved = count[block] - half
    for t in range(moved):
        E[new, t] = E[block, half + t]
        D[new, t] = D[block, half + t]
    count[new], count[block] = moved, half
    after = nxt[block]
    nxt[block], prv[new], nxt[new] = new, block, after
    if after >= 0:
        prv[after] = new
    _resum(E, D, count, sum_e, sum_dr, new)
    _resum(E, D, count, sum_e, sum_dr, block)
    if j > half:
        return new, j - half, new
    return block, j, new


@njit
def _release(free, block):
    free[0] += 1
    free[free[0]] = block


@njit
def _cut_below_zero(E, D, count, sum_e, sum_dr, nxt, prv, free, tail, r_end):
    """Drop the pieces that start at or below ``r = 0`` and trim the one crossing it.

    Given the last block and the polyline's end ``r_end``; returns ``(last block or -1 if
    none is left, sum of E removed, sum of dr removed)``.

    ``R_i >= R_N >= 0`` under both budgets, so no optimal state lies below zero: the cut keeps
    the polyline as long as the inventory, not the capacity seen so far, requires. The walk
    starts from the end, where the cut is, so it costs the blocks it drops.
    """
    removed_e, removed_dr = 0.0, 0.0
    r, block = r_end, tail
    while block >= 0 and r - sum_dr[block] <= 0.0:
        r -= sum_dr[block]
        removed_e += sum_e[block]
        removed_dr += sum_dr[block]
        before = prv[block]
        _release(free, block)
        block = before
    if block < 0:
        return -1, removed_e, removed_dr
    nxt[block] = -1
    removed_e += sum_e[block]
    removed_dr += sum_dr[block]
    r -= sum_dr[block]  # the block's start, above zero
    j = 0
    while j < count[block] and r > 0.0:
        r += D[block, j]
        j += 1
    count[block] = j
    if r < 0.0:
        # r is the last piece's end: it keeps its part above zero.
        d = D[block, j - 1]
        top = r - d
        E[block, j - 1] *= top / -d
        D[block, j - 1] = -top
    _resum(E, D, count, sum_e, sum_dr, block)
    return block, removed_e - sum_e[block], removed_dr - sum_dr[block]


@njit
def _cut_above(E, D, count, sum_e, sum_dr, nxt, prv, free, head, a, p0, r0, top):
    """Drop the pieces above ``r = top`` and trim the one crossing it.

    Returns ``(first block or -1 if none is left, new p0, sum of E removed, sum of dr
    removed)``.

    Under the ``=`` budget no inventory above the capacity still ahead can be completed, so
    those states go as the day runs out. The first piece kept is the first that ends below
    ``top``; the new anchor is the price at ``r = top`` on it. A flat piece (dr = 0) kept lies
    wholly below ``top``, so nothing of it is cut.
    """
    removed_e, removed_dr = 0.0, 0.0
    p, r, block = p0, r0, head
    while block >= 0 and r + sum_dr[block] >= top:
        p += sum_e[block] + a * sum_dr[block]
        r += sum_dr[block]
        removed_e += sum_e[block]
        removed_dr += sum_dr[block]
        after = nxt[block]
        _release(free, block)
        block = after
    j = 0
    while block >= 0:
        while j < count[block] and r + D[block, j] >= top:
            p += E[block, j] + a * D[block, j]
            r += D[block, j]
            j += 1
        if j < count[block]:
            break
        removed_e += sum_e[block]
        removed_dr += sum_dr[block]
        after = nxt[block]
        _release(free, block)
        block, j = after, 0
    if block < 0:
        return -1, p0, removed_e, removed_dr
    prv[block] = -1
    removed_e += sum_e[block]
    removed_dr += sum_dr[block]
    d = D[block, j]
    cut = min(max((r - top) / -d, 0.0), 1.0) if d < 0.0 else 0.0
    anchor = p + cut * (E[block, j] + a * d)
    E[block, j] *= 1.0 - cut
    D[block, j] = d * (1.0 - cut)
    c = count[block] - j
    for t in range(c):
        E[block, t] = E[block, j + t]
        D[block, t] = D[block, j + t]
    count[block] = c
    _resum(E, D, count, sum_e, sum_dr, block)
    return block, anchor, removed_e - sum_e[block], removed_dr - sum_dr[block]


@njit
def _price_at_zero_inventory(E, D, count, sum_e, sum_dr, nxt, head, a, p0, r0):
    """The price where the polyline crosses ``r = 0`` (its end price if it never does)."""
    p, r, block = p0, r0, head
    while block >= 0:
        if r + sum_dr[block] > 0.0:
            p += sum_e[block] + a * sum_dr[block]
            r += sum_dr[block]
            block = nxt[block]
            continue
        for j in range(count[block]):
            if r <= 0.0:
                return p
            d = D[block, j]
            dp = E[block, j] + a * d
            if r + d <= 0.0:
                return p + dp * (r / -d)
            p, r = p + dp, r + d
        block = nxt[block]
    return p


@njit
def _inventory_at_price_zero(E, D, count, sum_e, sum_dr, nxt, head, a, p0, r0):
    """The inventory where the polyline reaches price 0 from below (right limit)."""
    p, r, block = p0, r0, head
    if p0 > 0.0:
        return r0
    while block >= 0:
        if p + sum_e[block] + a * sum_dr[block] <= 0.0:
            p += sum_e[block] + a * sum_dr[block]
            r += sum_dr[block]
            block = nxt[block]
            continue
        for j in range(count[block]):
            d = D[block, j]
            dp = E[block, j] + a * d
            if p + dp > 0.0:
                return r + (d * min(max(-p / dp, 0.0), 1.0) if dp > 0 else 0.0)
            p, r = p + dp, r + d
        block = nxt[block]
    return r


@njit
def _staircase_chain(slopes, widths, q, total, le, low, high, E, D, levels_buffer):
    """Forward pass over the buckets, terminal condition and backward pass (see the module).

    ``low``, ``high``: bounds on each ``R_i`` (0 and inf: none), kept by the cuts: the pass
    solves the problem with ``low_i <= R_i <= high_i`` added. ``E``, ``D``: work arrays of
    shape ``(blocks, pieces per block)``, ``blocks`` at least :func:`_blocks_needed`;
    ``levels_buffer``: work array of shape ``(3, N K)``. Their contents are overwritten.

    Returns ``(x, lambda, inside)``: ``inside`` is False when some ``R_i`` is within a rounding
    step of a bound that is tighter than the problem's own (``0``, and under ``=`` the
    capacity still ahead), or the bounds leave no state: then ``x`` need not solve the
    problem without them.
    """
    n = slopes.shape[0]
    blocks, size = E.shape
    start, v, w = _levels(slopes, widths, levels_buffer[0], levels_buffer[1])
    count = np.zeros(blocks, np.int64)
    sum_e = np.zeros(blocks)
    sum_dr = np.zeros(blocks)
    # The blocks in polyline order: a doubly linked list (a split links its new half in at
    # O(1), where an array of positions shifted every later block).
    nxt = np.empty(blocks, np.int64)
    prv = np.empty(blocks, np.int64)
    head, tail = -1, -1
    free = np.empty(blocks + 1, np.int64)
    free[0] = blocks
    free[1:] = np.arange(blocks - 1, -1, -1)
    # Insertions since a block's sums were last summed afresh (they follow each insertion).
    updates = np.zeros(blocks, np.int64)
    rtop = levels_buffer[2]
    # The polyline starts at (p0, r0): r0 = S, or under "=" the capacity still ahead once that
    # is smaller (no larger inventory can be completed).
    a, p0, r0 = 0.0, 0.0, total
    total_e, total_dr = 0.0, 0.0
    future = np.empty(n)
    ahead = 0.0
    for i in range(n - 1, -1, -1):
        future[i] = ahead
        ahead += widths[i].sum()
    for i in range(n):
        # The walk: piece j of `block` starts at (p, r), the block at (pb, rb). A bucket's
        # levels come in increasing price and a vertical piece moves no price, so the walk
        # only goes forward; for the same reason (and because a split piece keeps its sum) a
        # block's end price stays pb + its sums while the bucket's levels go in.
        top = high[i] if le else min(future[i], high[i])
        first = start[i]
        if head >= 0:
            # Levels priced below the whole polyline go in before it, one under the other; while
            # they reach no lower than the cut at the end of the bucket (every state they make
            # is dropped), they only lower the polyline: bought whole by every state kept.
            lowered = 0.0
            while first < start[i + 1] and v[first] < p0 and r0 - (lowered + w[first]) >= top:
                rtop[first] = r0 - lowered
                lowered += w[first]
                first += 1
            r0 -= lowered
        block, j, p, r = head, 0, p0, r0
        pb, rb = p0, r0
        for level in range(first, start[i + 1]):
            price, width = v[level], w[level]
            # A vertical piece has dp = E + A dr = 0 when inserted: E = -A dr = A W.
            e_vertical = a * width
            if head < 0:
                block = free[free[0]]
                free[0] -= 1
                E[block, 0], D[block, 0], count[block] = e_vertical, -width, 1
                sum_e[block], sum_dr[block] = e_vertical, -width
                nxt[block], prv[block], head, tail = -1, -1, block, block
                p0, rtop[level] = price, r0
                total_e, total_dr = e_vertical, -width
                j, p, r, pb, rb = 0, p0, r0, p0, r0
                continue
            end_r = r0 + total_dr
            if end_r <= low[i] and price >= p0 + total_e + a * total_dr:
                # Past the end of a polyline already down to the lowest inventory kept: this
                # level only moves states below it, which the cut drops.
                rtop[level] = end_r
                continue
            # What goes in: m pieces (e1, d1), (e2, d2) before piece j of `block`; the
            # vertical is the one at offset `vertical`.
            if price < p0:
                # Before the first piece: the vertical, then a flat run back to the anchor.
                block, j, m, vertical = head, 0, 2, 0
                e1, d1, e2, d2 = e_vertical, -width, p0 - price, 0.0
                total_e += e_vertical + p0 - price
                p0, rtop[level], p, r = price, r0, price, r0
                pb, rb = price, r0
            else:
                if j > 0 and nxt[block] >= 0:
                    end_p = pb + (sum_e[block] + a * sum_dr[block])
                    if end_p <= price:
                        p, r, block, j = end_p, rb + sum_dr[block], nxt[block], 0
                found = False
                while True:
                    if j == 0:
                        # Whole blocks passed on their sums, two at a time while both end
                        # at or below the price (one addition on the price's dependency
                        # chain per pair); the last block is never passed.
                        while True:
                            after = nxt[block]
                            if after < 0:
                                break
                            step = sum_e[block] + a * sum_dr[block]
                            beyond = nxt[after]
                            if beyond >= 0:
                                pair = step + (sum_e[after] + a * sum_dr[after])
                                if p + pair <= price:
                                    p += pair
                                    r += sum_dr[block] + sum_dr[after]
                                    block = beyond
                                    continue
                            if p + step > price:
                                break
                            p += step
                            r += sum_dr[block]
                            block = after
                        pb, rb = p, r
                    c = count[block]
                    while j < c:
                        dp = E[block, j] + a * D[block, j]
                        if p + dp > price:
                            found = True
                            break
                        p, r, j = p + dp, r + D[block, j], j + 1
                    if found or nxt[block] < 0:
                        break
                    block, j = nxt[block], 0
                if not found:
                    # Past the last piece: a flat run to the price, then the vertical.
                    flat = max(price - p, 0.0)
                    m, vertical = 2, 1
                    e1, d1, e2, d2 = flat, 0.0, e_vertical, -width
                    total_e += flat + e_vertical
                    rtop[level] = r
                    p += flat
                elif price <= p:
                    m, vertical = 1, 0
                    e1, d1, e2, d2 = e_vertical, -width, 0.0, 0.0
                    total_e += e_vertical
                    rtop[level] = r
                else:
                    # Inside the piece: its part up to the price, the vertical, then the rest.
                    e0, d0 = E[block, j], D[block, j]
                    dp = e0 + a * d0
                    t = min((price - p) / dp, 1.0) if dp > 0 else 1.0
                    E[block, j], D[block, j] = t * e0, t * d0
                    sum_e[block] += t * e0 - e0
                    sum_dr[block] += t * d0 - d0
                    rtop[level] = r + t * d0
                    p, r = p + t * e0 + a * (t * d0), r + t * d0
                    m, vertical, j = 2, 0, j + 1
                    e1, d1, e2, d2 = e_vertical, -width, e0 - t * e0, d0 - t * d0
                    total_e += e_vertical
            total_dr -= width
            # The insertion, written out here: a call per level (its arrays reference-counted)
            # cost more than the rest of the level's work.
            if count[block] + m > size:
                first = block
                block, j, new = _split(E, D, count, sum_e, sum_dr, nxt, prv, free, block, j)
                if nxt[new] < 0:
                    tail = new
                if block != first:
                    # The insertion place went to the second half, which starts where the
                    # first (its sums summed afresh by the split) ends.
                    pb += sum_e[first] + a * sum_dr[first]
                    rb += sum_dr[first]
            c = count[block]
            for t in range(c - 1, j - 1, -1):
                E[block, t + m] = E[block, t]
                D[block, t + m] = D[block, t]
            E[block, j], D[block, j] = e1, d1
            if m == 2:
                E[block, j + 1], D[block, j + 1] = e2, d2
            count[block] = c + m
            j += vertical
            # The block's sums follow the insertion (the walk passes blocks on them, this
            # bucket's later levels included), summed afresh every 16 insertions so that their
            # rounding cannot build up.
            updates[block] += 1
            if updates[block] >= 16:
                updates[block] = 0
                _resum(E, D, count, sum_e, sum_dr, block)
            else:
                sum_e[block] += e1 + e2
                sum_dr[block] += d1 + d2
        if i % 64 == 0:
            # The totals follow the insertions and cuts; summed afresh now and then, so that
            # their rounding cannot build up over a long day.
            total_e, total_dr = 0.0, 0.0
            block = head
            while block >= 0:
                total_e += sum_e[block]
                total_dr += sum_dr[block]
                block = nxt[block]
        if head >= 0 and r0 + total_dr < low[i]:
            # In coordinates shifted by low_i the cut is the cut at zero.
            tail, removed_e, removed_dr = _cut_below_zero(
                E, D, count, sum_e, sum_dr, nxt, prv, free, tail, r0 + total_dr - low[i]
            )
            if tail < 0:
                head = -1
            total_e, total_dr = total_e - removed_e, total_dr - removed_dr
        if head >= 0 and top < r0:
            head, p0, removed_e, removed_dr = _cut_above(E, D, count, sum_e, sum_dr, nxt, prv, free, head, a, p0, r0, top)
            if head < 0:
                tail = -1
            total_e, total_dr = total_e - removed_e, total_dr - removed_dr
            r0 = top
        elif head < 0 and top < r0:
            r0 = top
        if head < 0:
            total_e, total_dr = 0.0, 0.0
        a -= q[i]
        p0 -= q[i] * r0

    r_end = 0.0
    if head < 0:
        level_price = 0.0
    else:
        level_price = _price_at_zero_inventory(E, D, count, sum_e, sum_dr, nxt, head, a, p0, r0)
    if le and head >= 0:
        # The inventory at price 0 (right limit): positive means slack is cheaper than trading.
        inventory = _inventory_at_price_zero(E, D, count, sum_e, sum_dr, nxt, head, a, p0, r0)
        if inventory > 0.0:
            level_price, r_end = 0.0, inventory
        else:
            level_price = min(level_price, 0.0)
    if le and head < 0:
        # No capacity at all: everything is left over.
        r_end = total

    # Inside the bounds unless some R_i is within a rounding step of one tighter than the
    # problem's own: there the added bound may be what holds it. (Bounds that leave no state
    # put the path on one of them.)
    inside = True
    step = 1e-9 * max(total, 1.0)
    x = np.empty(n)
    remaining = r_end
    for i in range(n - 1, -1, -1):
        own_top = total if le else min(total, future[i])
        if (low[i] > 0.0 and remaining <= low[i] + step) or (high[i] < own_top and remaining >= high[i] - step):
            inside = False
        bought = 0.0
        for level in range(start[i], start[i + 1]):
            above = rtop[level] - remaining
            if above > 0.0:
                bought += min(above, w[level])
        x[i] = bought
        remaining += bought
    return x, level_price, inside


def _forward_pass(slopes, widths, q, total, le):
    """The forward pass, on a large problem in stages from coarse to exact.

    A pass with bounds ``low_i <= R_i <= high_i`` solves the problem with those constraints
    added, and a convex problem whose solution meets none of them (none within a rounding
    step) has the same solution without them. Each stage of :data:`STAGES` solves the problem
    with each bucket's segments merged ``group`` at a time (their chord; 1: the problem
    itself), within ``band * S`` of the previous stage's inventory path, which keeps the
    polyline to the states near that path; a stage whose solution touches its bounds runs
    again without them. The first stage has no bounds. Returns ``(x, lambda)``.
    """
    n, k = slopes.shape
    E, D, levels_buffer = _work_arrays(slopes.size, _block_size(slopes.size))
    unbounded = np.zeros(n), np.full(n, np.inf)
    stages = [(1, 0.0)]
    if slopes.size >= BANDED_SEGMENTS:
        stages = [(group, band) for group, band in STAGES if group == 1 or 2 * group <= k]
    path = None
    for group, band in stages:
        if group == 1:
            stage_slopes, stage_widths = slopes, widths
        else:
            stage_slopes, stage_widths = _coarsened(slopes, widths, group)
        inside = False
        if path is not None:
            remaining = total - np.cumsum(path)
            low, high = np.maximum(remaining - band * total, 0.0), remaining + band * total
            x, level, inside = _staircase_chain(stage_slopes, stage_widths, q, total, le, low, high, E, D, levels_buffer)
        if not inside:
            x, level, _ = _staircase_chain(stage_slopes, stage_widths, q, total, le, *unbounded, E, D, levels_buffer)
        path = x
    return x, level


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
        x, level = _forward_pass(slopes, widths, q, float(total), le)
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
