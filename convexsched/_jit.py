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

A cache file that cannot be read back (truncated by a full disk or a killed process, or
corrupted) would make numba raise ``UnpicklingError``/``EOFError`` on every call until the
user found and deleted it. Each kernel's cache therefore heals itself: an entry that fails to
load is discarded, the kernel compiled again and its cache rewritten, with one
``RuntimeWarning`` per process; where the cache cannot even be rewritten the kernel is compiled
in memory.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable
from typing import Literal

_pending: list[Callable] = []
_inlined: set[Callable] = set()
_lock = threading.Lock()
_warned = threading.Event()
_healing_cache: type | None = None


def _warn_once(cache, error):
    if not _warned.is_set():
        _warned.set()
        warnings.warn(
            f"the numba cache of convexsched in {cache.cache_path} could not be read ({type(error).__name__}: "
            f"{error}); its entries are discarded and the kernels compiled again",
            RuntimeWarning,
            stacklevel=4,
        )


def _healing_cache_class():
    """Numba's per-function disk cache, discarding an entry that fails to load instead of raising."""
    global _healing_cache
    if _healing_cache is None:
        from numba.core.caching import FunctionCache

        class HealingCache(FunctionCache):
            def load_overload(self, sig, target_context):
                try:
                    return super().load_overload(sig, target_context)
                except Exception as error:  # noqa: BLE001 - a damaged pickle raises anything
                    _warn_once(self, error)
                    self._discard()
                    return None  # numba compiles, then save_overload rewrites the entry

            def save_overload(self, sig, data):
                try:
                    super().save_overload(sig, data)
                except Exception as error:  # noqa: BLE001 - the index it extends may be the damaged file
                    _warn_once(self, error)
                    self._discard()
                    try:
                        super().save_overload(sig, data)
                    except Exception:  # noqa: BLE001 - cannot write either: keep the kernel in memory
                        self.disable()

            def _discard(self):
                try:
                    self.flush()  # an empty index: every entry is gone, data files are overwritten later
                except OSError:
                    self.disable()

        _healing_cache = HealingCache
    return _healing_cache


def _dispatcher(function):
    import numba

    inline: Literal["always", "never"] = "always" if function in _inlined else "never"
    try:
        dispatcher = numba.njit(cache=True, inline=inline)(function)
    except RuntimeError:
        return numba.njit(inline=inline)(function)
    if not hasattr(dispatcher, "py_func"):
        return dispatcher  # NUMBA_DISABLE_JIT=1: the plain function, nothing cached
    # numba's Dispatcher.enable_caching() installs a FunctionCache in ``_cache``; ours is the same
    # cache that heals (there is no public hook for the cache class).
    dispatcher._cache = _healing_cache_class()(dispatcher.py_func)  # type: ignore[attr-defined]
    return dispatcher


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
