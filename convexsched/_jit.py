"""numba compilation for the fast paths' kernels: loaded on first use, cached on disk if possible.

``import numba`` costs about 0.3 s, so ``import convexsched`` does not pay it: :func:`njit`
returns a stand-in, and the first call of any kernel imports numba and turns every kernel
registered so far into a real dispatcher, in its module's namespace. Kernels call each other
through those module globals, which numba resolves when it compiles the caller (after the
swap), so compiled code never meets a stand-in.

``cache=True`` makes a later process load the machine code instead of compiling it again, but
numba refuses to decorate a cached function when it finds no writable cache location (a
read-only install with no writable home): those kernels are compiled in memory, once per
process.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Literal

_pending: list[Callable] = []
_inlined: set[Callable] = set()
_lock = threading.Lock()


def _dispatcher(function):
    import numba

    inline: Literal["always", "never"] = "always" if function in _inlined else "never"
    try:
        return numba.njit(cache=True, inline=inline)(function)
    except RuntimeError:
        return numba.njit(inline=inline)(function)


def _materialize():
    # Under a lock: a second thread must not call a stand-in still being swapped.
    with _lock:
        while _pending:
            function = _pending.pop()
            function.__globals__[function.__name__] = _dispatcher(function)


def inline(function):
    """Register ``function`` as a small kernel that its callers inline (``inline="always"``).

    A call of a compiled function passes every array as a struct of several fields, which
    costs more than a short loop body.
    """
    _inlined.add(function)
    return njit(function)


def njit(function):
    """Register ``function`` as a kernel; it is compiled (``numba.njit``) on first use."""
    _pending.append(function)

    @functools.wraps(function)
    def stand_in(*args):
        _materialize()
        return function.__globals__[function.__name__](*args)

    return stand_in
