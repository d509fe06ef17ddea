"""Shared fixtures: a fixed-seed generator (never a global seed)."""

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240101)
