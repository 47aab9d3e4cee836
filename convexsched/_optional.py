"""Optional dependencies, imported on first use with an error that names the extra to install.

The core (curves, the fast paths, the cvxpy problems with Clarabel, the oracle) needs none of
them; see the extras in ``pyproject.toml``.
"""

import importlib

from .errors import MissingDependencyError


def require(module, extra, purpose):
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``extra``.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"matplotlib.pyplot"``.
    extra : str
        The ``convexsched`` extra that installs it, e.g. ``"plot"``.
    purpose : str
        What needs it, for the message ("plotting", "reading DBN files").

    Returns
    -------
    module
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        top = module.split(".")[0]
        raise MissingDependencyError(
            f'{purpose} needs the optional package {top!r}, which is not installed: pip install "convexsched[{extra}]"'
        ) from error


def pyplot():
    """``matplotlib.pyplot``, or :class:`MissingDependencyError` naming the ``plot`` extra."""
    return require("matplotlib.pyplot", "plot", "plotting")
