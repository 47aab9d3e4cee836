"""The exception hierarchy: every bad input gets a specific, catchable error.

All errors derive from :class:`ConvexSchedError`; the ones about malformed user input also derive
from :class:`ValueError`, so ``except ValueError`` keeps working for callers who do not know us.
"""


class ConvexSchedError(Exception):
    """Base class of every error raised by convexsched."""


class InvalidInputError(ConvexSchedError, ValueError):
    """An argument is malformed: wrong shape, NaN or inf, negative where it must not be."""


class NonConvexCurveError(InvalidInputError):
    """A cost curve's slopes decrease somewhere, so it is not convex.

    Run the raw values through :func:`convexsched.convexify` first.
    """


class InfeasibleError(ConvexSchedError, ValueError):
    """The budget cannot be executed: it exceeds the total capacity of the buckets."""

    def __init__(self, message, max_executable=None):
        super().__init__(message)
        self.max_executable = max_executable


class SolverError(ConvexSchedError, RuntimeError):
    """Every solver tried failed or returned an inaccurate status."""


class DataError(ConvexSchedError, ValueError):
    """An order-book or table file cannot be read into a valid frame."""


class OutputError(InvalidInputError):
    """An output path cannot be used.

    It is an input, repeated, an existing file without ``force``, a directory, or in a folder
    that cannot be written.
    """


class MissingDependencyError(ConvexSchedError, ImportError):
    """An optional package is not installed; the message names the extra that installs it."""
