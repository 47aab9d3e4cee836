"""Keywords renamed in 0.3, accepted under their 0.2 names until 0.4."""

from __future__ import annotations

import warnings
from typing import TypeVar

T = TypeVar("T")


def renamed(value: T, old_value: T | None, where: str, old: str, new: str) -> T:
    """``value``, or what was given under the keyword's old name ``old`` (with a warning)."""
    if old_value is None:
        return value
    warnings.warn(f"{where}({old}=...) is deprecated; use {new}=... (removed in 0.4)", FutureWarning, stacklevel=3)
    return old_value
