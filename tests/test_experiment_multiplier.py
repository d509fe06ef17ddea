"""The multiplier-transfer experiment (Fig. 13): tiny run, and the claim on known optima."""

import numpy as np
import xarray as xr

from limitsim.experiments import multiplier

GRID = np.arange(-1.0, 2.01, 0.5)


def synthetic(optima, *, seeds=8, noise=0.01, seed=0):
    """LogLoss = (log2 a − optimum_L)² + small seed noise: the optimum is known exactly."""
    rng = np.random.default_rng(seed)
    depths = sorted(optima)
    loss = np.stack([(GRID[:, None] - optima[L]) ** 2 for L in depths])
    loss = loss + noise * rng.standard_normal((len(depths), GRID.size, seeds))
    return xr.Dataset(
        {"log_loss": (("depth", "multiplier", "seed"), loss)},
        coords={"depth": depths, "multiplier": GRID, "seed": np.arange(seeds)},
    )


def test_tiny_profile(tiny_experiment):
    ds = tiny_experiment("multiplier")
    assert ds.log_loss.dims == ("depth", "multiplier", "seed")
    assert np.isfinite(ds.log_loss).all()
    (claim,) = multiplier.claims(ds)
    assert claim.kind == "paper" and claim.estimate.seeds == ds.sizes["seed"]


def test_fixed_optimum_is_reproduced():
    (claim,) = multiplier.claims(synthetic({8: 0.5, 16: 0.5, 32: 0.5}))
    assert abs(claim.estimate.value) < 0.02 and claim.verdict == "reproduced"


def test_optimum_moving_half_a_unit_per_doubling_is_not_reproduced():
    (claim,) = multiplier.claims(synthetic({8: 0.0, 16: 0.5, 32: 1.0}))
    assert abs(claim.estimate.value - 0.5) < 0.02
    assert claim.verdict == "not reproduced"


def test_optimum_beyond_the_grid_is_undecided():
    (claim,) = multiplier.claims(synthetic({8: 0.5, 16: 1.5, 32: 3.0}))
    assert claim.verdict.startswith("inconclusive (") and "edge" in claim.verdict


def test_diverged_points_are_excluded():
    ds = synthetic({8: 0.5, 16: 0.5})
    ds["log_loss"][:, GRID > 1.0, :] = np.nan  # larger multipliers diverged
    trend = multiplier.trend(ds)
    assert np.allclose(trend.optima, 0.5, atol=0.02)
