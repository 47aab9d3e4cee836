"""A user's objective term defined in the tests, the way a user would write one (issue 18)."""

import numpy as np

import convexsched as cs


class Wiggle(cs.Term):
    """``c/2 sum (x_i - x_{i-1})^2``; counts the calls that reach it."""

    calls = 0

    def __init__(self, c):
        self.c = c

    def value(self, x):
        Wiggle.calls += 1
        return 0.5 * self.c * float(np.sum(np.diff(x) ** 2))

    def gradient(self, x):
        Wiggle.calls += 1
        step = np.diff(x)
        gradient = np.zeros(len(x))
        gradient[1:] += step
        gradient[:-1] -= step
        return self.c * gradient

    def expression(self, x):
        import cvxpy as cp

        return 0.5 * self.c * cp.sum_squares(cp.diff(x)) if x.shape[0] > 1 else 0 * cp.sum(x)
