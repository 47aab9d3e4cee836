"""Reference: weighted isotonic regression row by row with scipy's PAVA (the code it replaced).

Kept in the tests as an independent check of the compiled kernel
:func:`convexsched.model.convexify.isotonic_rows`. scipy wants strictly positive weights; a
zero-weight point has no say in the fit, so the reference fits the other points and leaves NaN
where the weight is 0 (the kernel's value there is checked to lie between its neighbours').
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import isotonic_regression


def isotonic_rows(values, weights):
    """Row-wise ``isotonic_regression(row, weights=weights).x``, NaN at zero weights."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    weights = np.asarray(weights, dtype=float)
    out = np.full(values.shape, np.nan)
    keep = weights > 0
    if keep.any():
        out[:, keep] = np.vstack([isotonic_regression(row[keep], weights=weights[keep]).x for row in values])
    return out
