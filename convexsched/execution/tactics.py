"""Tactics: how one bucket's slice is worked inside the bucket, chosen independently of the schedule.

A schedule says how many shares bucket ``i`` trades; a tactic says how: in one sweep, in equal
child orders, or resting at the touch first. Every strategy of a backtest runs with the same
tactic (the executor's), so each is compared with the TWAP done its way.

* :class:`Market`: one marketable sweep at the bucket's start (the snapshot backtest's model).
* :class:`Sliced`: ``n`` equal marketable children at ``0, w/n, ..., (n-1) w/n`` into the bucket.
* :class:`PassiveFirst`: ``n`` equal children rest at our touch at ``0, c/n, ..., (n-1) c/n``;
  at second ``c = cross_at`` what they have not filled is cancelled and swept.

Children are whole board lots where the market has them (:func:`split`): the lots are dealt out
as evenly as possible, earlier children first; an odd remainder goes with the last child.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError
from .matching import CROSS, POST, SWEEP


def split(qty: float, n: int, lot: float = 1.0) -> np.ndarray:
    """``qty`` shares in ``n`` children of whole lots, as even as possible (sum exactly ``qty``)."""
    if qty <= 0:
        return np.zeros(n)
    lots = np.floor(qty / lot + 1e-9)
    base, extra = divmod(int(lots), n)
    children = np.full(n, float(base)) * lot
    children[:extra] += lot
    children[-1] += qty - lots * lot
    return children


@dataclass(frozen=True)
class Market:
    """One marketable sweep of the whole slice at the bucket's start."""

    name = "market"

    def plan(self, width: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Action offsets (seconds into the bucket), kinds and the child each belongs to."""
        return np.zeros(1), np.array([SWEEP]), np.zeros(1, np.int64)

    @property
    def children(self) -> int:
        return 1

    @property
    def passive_slots(self) -> int:
        return 1


@dataclass(frozen=True)
class Sliced:
    """``n`` equal marketable children spread evenly over the bucket.

    Parameters
    ----------
    n : int
        Children per bucket (>= 1).
    """

    n: int = 6

    def __post_init__(self) -> None:
        if not (isinstance(self.n, (int, np.integer)) and self.n >= 1):
            raise InvalidInputError(f"Sliced(n): n must be a whole number of children >= 1, got {self.n!r}")

    @property
    def name(self) -> str:
        return f"sliced({self.n})"

    def plan(self, width: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Action offsets (seconds into the bucket), kinds and the child each belongs to."""
        return np.arange(self.n) * width / self.n, np.full(self.n, SWEEP), np.arange(self.n)

    @property
    def children(self) -> int:
        return self.n

    @property
    def passive_slots(self) -> int:
        return 1


@dataclass(frozen=True)
class PassiveFirst:
    """Rest ``n`` children at the touch, cross what is left at ``cross_at`` seconds.

    Parameters
    ----------
    n : int
        Passive children per bucket, posted at ``0, c/n, ..., (n-1) c/n`` (>= 1).
    cross_at : float
        Seconds into the bucket when unfilled children are cancelled and swept (> 0 and less
        than the bucket's width, checked by the executor).
    """

    n: int = 1
    cross_at: float = 50.0

    def __post_init__(self) -> None:
        if not (isinstance(self.n, (int, np.integer)) and self.n >= 1):
            raise InvalidInputError(f"PassiveFirst(n): n must be a whole number of children >= 1, got {self.n!r}")
        if not (np.isfinite(self.cross_at) and self.cross_at > 0):
            raise InvalidInputError(f"PassiveFirst(cross_at): seconds into the bucket > 0, got {self.cross_at!r}")

    @property
    def name(self) -> str:
        return f"passive-first({self.n}, cross at {self.cross_at:g}s)"

    def plan(self, width: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Action offsets (seconds into the bucket), kinds and the child each belongs to."""
        if self.cross_at >= width:
            raise InvalidInputError(f"PassiveFirst(cross_at={self.cross_at:g}) must be before the bucket's end ({width:g} s)")
        times = np.append(np.arange(self.n) * self.cross_at / self.n, self.cross_at)
        return times, np.append(np.full(self.n, POST), CROSS), np.append(np.arange(self.n), -1)

    @property
    def children(self) -> int:
        return self.n

    @property
    def passive_slots(self) -> int:
        return self.n


Tactic = Market | Sliced | PassiveFirst
