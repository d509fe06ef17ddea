"""Shared fixtures: a fixed-seed generator (never a global seed) and the tiny experiments."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np
import pytest
import xarray as xr

from limitsim.experiments.profiles import sizes_for


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240101)


@pytest.fixture(scope="session")
def tiny_experiment() -> Callable[[str], xr.Dataset]:
    """``tiny_experiment(name)``: the tiny-profile dataset of experiment ``name``.

    Each experiment runs once per test session, the first time a test asks for it
    (``run(sizes_for("tiny", name))``, no context: a throw-away store, in process); every
    call returns a deep copy, so a test may change its dataset.
    """
    cache: dict[str, xr.Dataset] = {}

    def dataset(name: str) -> xr.Dataset:
        if name not in cache:
            module = importlib.import_module(f"limitsim.experiments.{name}")
            cache[name] = module.run(sizes_for("tiny", name))
        return cache[name].copy(deep=True)

    return dataset
