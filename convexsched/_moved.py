"""Deprecated module paths of version 0.2 (``convexsched.solve``, ``convexsched.book``, ...).

Version 0.3 moved the modules into one subpackage per stage. The old paths still import, for
one release, as aliases of the new modules (the same module objects, so patching either path
patches both), with a ``FutureWarning`` naming the new path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings

#: Old module name (under ``convexsched``) -> its new dotted path.
MOVED = {
    **{
        name: f"data.{name}"
        for name in ("binance", "book", "features", "levels", "loaders", "mbo", "sessions", "slippage", "synthetic")
    },
    **{name: f"model.{name}" for name in ("convexify", "forecast", "oracle")},
    **{
        name: f"optimize.{name}"
        for name in ("chain", "curves", "kkt", "lots", "objective", "problem", "solve", "validate", "waterfill", "weighted")
    },
    **{name: f"execution.{name}" for name in ("backtest", "hindsight", "receding", "scenario", "strategies", "universe")},
}


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        warnings.warn(
            f"the module {spec.name} moved to {self.target}; the old path will be removed in 0.4 "
            "(the names exported by convexsched itself did not move)",
            FutureWarning,
            stacklevel=2,
        )
        return importlib.import_module(self.target)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the module is the new one, already executed."""


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, package: str) -> None:
        self.package = package

    def find_spec(self, fullname, path=None, target=None):
        parent, _, name = fullname.rpartition(".")
        if parent != self.package or name not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(f"{self.package}.{MOVED[name]}"))


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: object) -> None:
        # Importing an old path makes the import system set the module as an attribute of its
        # parent, which would replace the function of the same name (``convexsched.solve``).
        if (
            name in MOVED
            and isinstance(value, types.ModuleType)
            and not isinstance(self.__dict__.get(name), types.ModuleType | None)
        ):
            return
        super().__setattr__(name, value)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        # A module pickles by name: a user's function that refers to ``convexsched`` (cloudpickle
        # ships its globals to Dask workers) then finds the package imported on the other side.
        # Without this, pickle sees a ``_Package`` instance, not a module, and refuses it.
        return importlib.import_module, (self.__name__,)


def install(package: str) -> None:
    """Serve the old module paths of ``package`` (called once, by its ``__init__``)."""
    if not any(isinstance(finder, _Finder) and finder.package == package for finder in sys.meta_path):
        sys.meta_path.append(_Finder(package))
    sys.modules[package].__class__ = _Package
