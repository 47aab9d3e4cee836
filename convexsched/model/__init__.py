"""Stage 2, the model: from bucket states to convex cost curves.

``oracle`` (the gradient-boosting impact oracle and its baselines), ``forecast`` (the state
forecast for buckets not yet seen) and ``convexify`` (sampled costs to ``CostCurves``).
"""
