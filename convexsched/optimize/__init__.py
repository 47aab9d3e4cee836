"""Stage 3, the optimization: ``CostCurves`` in, a certified ``Schedule`` out.

``curves`` (the pivot type), ``objective`` (A, B, C), ``validate`` (the one input check),
``problem`` (the explicit cvxpy problems), ``waterfill`` and ``chain`` (the exact fast paths),
``weighted`` (the weighted water-fill of the scenario step), ``kkt`` (the certificate),
``solve`` (the entry point) and ``lots``.
"""
