"""Objective terms as objects: one class per file (E9, E25, E26).

:class:`Term` is the base class a user subclasses (``value``, ``gradient``, ``expression``);
the built-in terms are :class:`Smoothing` (B), :class:`InventoryRisk` (C), :class:`Drift`,
:class:`TrackProfile`, :class:`Turnover` and :class:`TransientImpact`. ``+`` composes them with
each other and with an :class:`~convexsched.optimize.objective.Objective` (the impact curves
``g_i`` are always there), ``c * term`` scales one.
"""

from .base import Scaled, Term
from .drift import Drift
from .inventory_risk import InventoryRisk
from .smoothing import Smoothing
from .track_profile import TrackProfile
from .transient_impact import TransientImpact
from .turnover import Turnover

__all__ = ["Drift", "InventoryRisk", "Scaled", "Smoothing", "Term", "TrackProfile", "TransientImpact", "Turnover"]
