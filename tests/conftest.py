"""Shared fixtures: a fixed-seed generator (never a global seed), the tiny experiments, an empty
registry of point functions and a finished sweep store."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import sweep_funcs
import xarray as xr

from limitsim import Grid, run_sweep
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


@pytest.fixture
def registry(monkeypatch):
    """An empty registry of user point functions, restored after the test."""
    from limitsim.sweeps import _registry as _sweep_registry

    monkeypatch.setattr(_sweep_registry, "_REGISTERED", {})


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[Path, xr.Dataset]:
    """``(root, dataset)``: a finished store ``root/"s"`` of ``sweep_funcs.noisy`` over
    x = 0..7, its Dataset, and a spec file ``root/"spec.toml"`` that runs it."""
    root = tmp_path_factory.mktemp("pristine")
    grid = Grid(axes={"x": list(range(8))})
    dataset = run_sweep(sweep_funcs.noisy, grid, store=root / "s", executor="inline")
    assert sorted(p.name for p in (root / "s").iterdir()) == [
        "ledger.sqlite",
        "points",
        "store.json",
        "tmp",
    ]  # closed: no WAL left beside the ledger
    (root / "spec.toml").write_text(
        'function = "sweep_funcs:noisy"\n[axes]\nx = [0, 1, 2, 3, 4, 5, 6, 7]\n'
    )
    return root, dataset
