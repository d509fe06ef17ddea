"""The multiplier-transfer experiment (Fig. 13): tiny run, and the claim on known optima."""

import numpy as np
import pytest
import xarray as xr

from limitsim.experiments import multiplier
from limitsim.report import VERDICTS

GRID = np.arange(-1.0, 2.01, 0.5)


def synthetic(optima, *, seeds=4, noise=0.01, seed=0):
    """LogLoss = (log2 a − optimum_L)² + small seed noise: the optimum is known exactly."""
    rng = np.random.default_rng(seed)
    depths = sorted(optima)
    loss = np.stack([(GRID[:, None] - optima[L]) ** 2 for L in depths])
    loss = loss + noise * rng.standard_normal((len(depths), GRID.size, seeds))
    return xr.Dataset(
        {"log_loss": (("depth", "multiplier", "seed"), loss)},
        coords={"depth": depths, "multiplier": GRID, "seed": np.arange(seeds)},
    )


def test_tiny_profile(tmp_path):
    ds = multiplier.run(multiplier.SIZES["tiny"])
    assert {"depth", "multiplier", "seed"} <= set(ds.coords)
    assert ds.log_loss.dims == ("depth", "multiplier", "seed")
    assert np.isfinite(ds.log_loss).all()
    paths = multiplier.plot(ds, tmp_path)
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.exists() for p in paths)
    (claim,) = multiplier.claims(ds)
    assert claim.verdict in VERDICTS and np.isfinite(claim.measured)


def test_fixed_optimum_is_reproduced():
    ds = synthetic({8: 0.5, 16: 0.5, 32: 0.5})
    best, se = multiplier.optimum(ds, 32)
    assert best == pytest.approx(0.5, abs=5 * se + 1e-9)
    (claim,) = multiplier.claims(ds)
    assert claim.measured < 0.1 and claim.verdict == "reproduced"


def test_optimum_moving_three_grid_steps_is_not_reproduced():
    ds = synthetic({8: 0.0, 16: 0.75, 32: 1.5})
    (claim,) = multiplier.claims(ds)
    assert claim.high == 0.5  # one grid step
    assert claim.measured == pytest.approx(1.5, abs=0.05)
    assert claim.verdict == "not reproduced"


def test_diverged_points_count_as_worst():
    ds = synthetic({8: 0.5, 16: 0.5})
    ds["log_loss"][:, GRID > 0.75, :] = np.nan  # larger multipliers diverged
    ds["log_loss"][:, GRID == 0.5, :] = -1.0  # best finite point
    assert multiplier.optimum(ds, 16)[0] == 0.5
