"""Shared test settings: the hypothesis CI profile and the real-data folder."""

import os
from pathlib import Path

# The gradient-boosting oracle's OpenMP threads spin-wait; with other work on the 2-core CI
# machine that made small fits 10x slower. One thread is plenty for the tests' small tables.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    """Path of ``../shared/data``; skips on a user's machine, fails under CI when missing."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the real data folder {SHARED_DATA} is missing")
        pytest.skip(f"real order-book data not found at {SHARED_DATA} (it sits beside the repo in CI)")
    return SHARED_DATA
