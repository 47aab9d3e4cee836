"""How long our footprint lasts: the transient impact measured in the event replay.

A sweep of ``q`` shares at ``t_0`` leaves the book thinner; a probe sweep of ``p`` shares at
``t_0 + d`` then pays an excess over the same probe on the untouched book (the feed's own book).
In the replay that excess decays as the tape trades or cancels the orders we consumed and new
orders arrive. Every ``every`` seconds a window starts: the replay runs, for each delay ``d_k``,
one lane with the probe alone and one with the sweep then the probe (lanes of
:mod:`convexsched.execution.matching`), and records

.. math::

    e(d_k) = C_{\\text{probe}}(\\text{after the sweep}) - C_{\\text{probe}}(\\text{alone}).

Fitted as exponential resilience ``e(d) = e_0 2^{-d / h}`` (least squares on the delays with a
positive mean excess), this gives the half-life ``h`` and the strength ``k = e_0 / (q p)`` of the
propagator ``k/2 sum_ij x_i x_j 2^{-|t_i - t_j| / h}`` (Obizhaeva-Wang, Gatheral). For a smooth
schedule its marginal effect is that of the smoothing term (B) with

.. math::

    \\rho_{\\text{eff}} = k \\Big(1 + 2 \\sum_{d \\ge 1} 2^{-d b / h}\\Big) = k \\, \\frac{2^{b/h} + 1}{2^{b/h} - 1}
    \\qquad (E24)

for buckets of ``b`` seconds, which is how :class:`convexsched.ScenarioHorizon` (``footprint=True``)
uses it. :meth:`Resilience.fit` reads only the windows that ended before a given time: no look-ahead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InvalidInputError
from ..optimize.terms import TransientImpact
from .matching import SWEEP, FillLog

if TYPE_CHECKING:
    from .replay import ReplayExecutor

DELAYS = (0.0, 10.0, 20.0, 40.0, 60.0, 90.0, 120.0, 180.0, 240.0, 300.0)


@dataclass
class Resilience:
    """Excess probe costs after a sweep, one row per measurement window.

    Attributes
    ----------
    delays : numpy.ndarray, shape (K,)
        Seconds between the sweep and the probe.
    excess : numpy.ndarray, shape (W, K)
        Excess cost of the probe (currency); NaN where a lane could not fill.
    ends : numpy.ndarray of int64, shape (W,)
        When each window's last probe was done (UNIX ns): usable from then on.
    size, probe : float
        The sweep ``q`` and the probe ``p`` (shares).
    bucket_seconds : float
    """

    delays: np.ndarray
    excess: np.ndarray
    ends: np.ndarray
    size: float
    probe: float
    bucket_seconds: float

    def fit(self, before: int | None = None) -> tuple[float, float]:
        """Half-life ``h`` (seconds) and strength ``k`` (currency per share squared) from the windows ended before ``before``.

        Returns ``(nan, 0.0)`` when no window has ended yet or the mean excess is not positive.
        """
        rows = self.excess if before is None else self.excess[self.ends < before]
        if len(rows) == 0:
            return float("nan"), 0.0
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(rows, axis=0)
        if not (np.isfinite(mean[0]) and mean[0] > 0):
            return float("nan"), 0.0
        keep = np.isfinite(mean) & (mean > 0)
        d, y = self.delays[keep], np.log2(mean[keep])
        if len(d) < 2 or np.ptp(d) == 0:
            return float("nan"), 0.0
        slope, intercept = np.polyfit(d, y, 1)
        if slope >= 0:
            # No decay over the measured delays: the footprint outlasts them.
            return float("inf"), float(2.0**intercept) / (self.size * self.probe)
        return float(-1.0 / slope), float(2.0**intercept) / (self.size * self.probe)

    def transient(self, before: int | None = None) -> TransientImpact | None:
        """The fitted propagator as an objective term (E26), half-life in buckets; None if none.

        ``Objective() + resilience.transient(before)`` prices the footprint the schedule leaves
        in its later buckets (the scenario and receding loops add what was already executed),
        not its smoothing equivalent (E24).
        """
        half_life, strength = self.fit(before)
        if strength <= 0 or not np.isfinite(half_life):
            return None
        return TransientImpact(half_life=half_life / self.bucket_seconds, strength=strength)

    def rho(self, before: int | None = None) -> float:
        """The smoothing weight equivalent to the fitted propagator for this bucket width (E24); 0 if none."""
        half_life, strength = self.fit(before)
        if strength <= 0 or not np.isfinite(half_life):
            # Nothing measured yet, no excess, or no decay within the delays: no finite weight.
            return 0.0
        decay = 2.0 ** (self.bucket_seconds / half_life)
        return strength * (decay + 1.0) / (decay - 1.0)


def measure_resilience(
    executor: ReplayExecutor, size: float, probe: float | None = None, *, every: float = 600.0, delays: tuple[float, ...] = DELAYS
) -> Resilience:
    """Measure the decay of a sweep's footprint in an event replay (module docstring).

    Parameters
    ----------
    executor : ReplayExecutor
        Any executor with ``lane_state``, ``advance_state`` and ``bucket_bounds`` (the event replay).
    size : float
        The sweep ``q`` (shares, > 0), e.g. a typical slice.
    probe : float, optional
        The probe ``p`` (default one lot, or ``size / 10`` without lots).
    every : float
        Seconds between window starts (> the largest delay).
    delays : tuple of float
        Probe delays in seconds (>= 0, increasing).

    Returns
    -------
    Resilience
    """
    delays_arr = np.asarray(delays, dtype=float)
    if not (size > 0 and np.isfinite(size)):
        raise InvalidInputError(f"size must be a positive number of shares, got {size!r}")
    if len(delays_arr) < 2 or (np.diff(delays_arr) <= 0).any() or delays_arr[0] < 0:
        raise InvalidInputError("delays must be at least two increasing numbers of seconds >= 0")
    if not every > delays_arr[-1]:
        raise InvalidInputError(f"every ({every:g} s) must exceed the largest delay ({delays_arr[-1]:g} s)")
    probe = float(probe if probe is not None else (executor.lot if executor.lot > 1 else max(size / 10.0, 1.0)))
    k = len(delays_arr)
    lanes = executor.lane_state(2 * k)
    starts, ends = executor.bucket_bounds()
    step = int(every * 1e9)
    span = int(delays_arr[-1] * 1e9) + 1
    excess, done = [], []
    tick = executor.events.tick_size
    window = starts[0]
    while window + span <= ends[-1]:
        executor.advance_state(lanes, window)
        lanes.reset_lanes()
        times = np.concatenate([[window], window + np.rint(delays_arr * 1e9).astype(np.int64) + 1]).astype(np.int64)
        qty = np.zeros((2 * k, k + 1))
        qty[k:, 0] = size
        for j in range(k):
            qty[j, j + 1] = probe
            qty[k + j, j + 1] = probe
        child = np.arange(k + 1, dtype=np.int64)
        log = FillLog(256)
        executor.advance_state(lanes, window + span + 1, (times, np.full(k + 1, SWEEP, np.int64), qty, child), log)
        n = len(log)
        cost = np.zeros(2 * k)
        got = np.zeros(2 * k)
        sign = 1 if executor.side == "buy" else -1
        for lane, c, q, price, mid in zip(log.lane[:n], log.child[:n], log.qty[:n], log.price[:n], log.mid[:n]):
            if c >= 1:
                cost[lane] += sign * q * (price - mid) * tick
                got[lane] += q
        full = got >= probe - 1e-9
        row = np.where(full[:k] & full[k:], cost[k:] - cost[:k], np.nan)
        excess.append(row)
        done.append(window + span)
        window += step
    return Resilience(
        delays=delays_arr,
        excess=np.array(excess).reshape(-1, k),
        ends=np.array(done, np.int64),
        size=float(size),
        probe=probe,
        bucket_seconds=float(executor.bucket_seconds),
    )
