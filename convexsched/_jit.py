"""numba compilation for the fast paths' kernels, with an on-disk cache when one is available.

``cache=True`` makes the second process start in milliseconds instead of recompiling, but numba
refuses to decorate a cached function when it finds no writable cache location (a read-only
install with no writable home): the kernels are then compiled in memory, once per process.
"""

from __future__ import annotations

import numba


def njit(function):
    """``numba.njit(cache=True)``, or an uncached ``numba.njit`` where nothing can be cached."""
    try:
        return numba.njit(cache=True)(function)
    except RuntimeError:
        return numba.njit(function)
