"""Convergence experiment: tiny run, the reference against linear_depth_limit, the estimators."""

import math

import numpy as np
import pytest
import xarray as xr

from limitsim.experiments import convergence as cv
from limitsim.linear.depth import linear_depth_limit


@pytest.fixture(scope="module")
def tiny(tiny_experiment):
    return tiny_experiment("convergence")


def test_tiny_run_plot_claims(tiny, tmp_path):
    sizes = cv.SIZES["tiny"]
    assert {"phi", "width", "seed", "depth", "particle_depth", "step"} <= set(tiny.coords)
    T, B = sizes["steps"], sizes["n_points"]
    assert tiny.f_finite.shape == (2, len(sizes["widths"]), sizes["seeds"], T, B)
    assert tiny.f_linear.shape == (len(sizes["linear_depths"]), T, B)
    assert tiny.f_particles.shape == (len(sizes["particle_depths"]), T, B)
    assert np.all(tiny.f_limit_se.sel(phi="linear") == 0)  # exact
    assert np.all(tiny.f_limit_se.sel(phi="relu").isel(step=slice(1, None)) > 0)  # Monte Carlo
    paths = cv.plot(tiny, tmp_path)
    assert all(p.exists() for p in paths)
    claims = cv.claims(tiny)
    assert [c.kind for c in claims] == ["check", "check", "paper", "extension"]
    width = claims[0].estimate
    assert width.seeds == sizes["seeds"] and width.low < width.value < width.high


def test_width_depth_limit_is_run_even_off_the_ladders(tiny):
    """The limit at width_depth comes from the same routes, whether or not it is on a ladder."""
    sizes = {**cv.SIZES["tiny"], "width_depth": 3, "widths": (16,), "seeds": 2}
    ds = cv.run(sizes)
    assert 3 not in ds.depth.values and 3 not in ds.particle_depth.values
    assert np.isfinite(ds.f_limit).all()
    assert not np.allclose(ds.f_limit.sel(phi="linear"), tiny.f_limit.sel(phi="linear"))


def test_linear_reference_is_linear_depth_limit(tiny):
    sizes = cv.SIZES["tiny"]
    point = {k: sizes[k] for k in ("steps", "n_points", "d_in", "task_seed", "eta", "a")}
    ref = linear_depth_limit(
        cv.few_point_task(point), cv._param(point), grid=sizes["reference_depths"]
    )
    np.testing.assert_allclose(cv.linear_reference(tiny), ref.f[..., 0], rtol=1e-12, atol=1e-15)


def test_weighted_slope_exact_and_noisy(rng):
    x = np.log2([64.0, 128, 256, 512, 1024])
    slope, se = cv.weighted_slope(x, 3.0 - 0.5 * x, np.full(5, 0.1))
    assert slope == pytest.approx(-0.5) and se == pytest.approx(0.1 / math.sqrt(10))
    sigma = np.array([0.05, 0.05, 0.1, 0.1, 0.2])
    draws = [cv.weighted_slope(x, 1.0 - x + sigma * rng.standard_normal(5), sigma)
             for _ in range(400)]  # fmt: skip
    slopes = np.array([d[0] for d in draws])
    formal = math.sqrt(1 / np.sum((x - np.average(x, weights=sigma**-2)) ** 2 / sigma**2))
    assert abs(slopes.mean() + 1.0) < 5 * slopes.std() / math.sqrt(400)
    assert np.all([d[1] >= formal * (1 - 1e-12) for d in draws])  # never below the formal SE
    assert math.isnan(cv.weighted_slope(x[:2], x[:2], np.ones(2))[0])


def _ladder(rng, se, depths=(2, 4, 8, 16, 32)):
    f = np.array([[0.3 + 0.2 / L] * 40 for L in depths]).reshape(len(depths), 10, 4)
    noise = rng.standard_normal(f.shape) * se
    coords = {"particle_depth": list(depths)}
    dims = ("particle_depth", "step", "example")
    return xr.Dataset({"f_particles": (dims, f + noise), "f_particles_se": (dims, se + 0 * f)},
                      coords=coords)  # fmt: skip


def test_particle_differences_remove_the_noise(rng):
    """D(L) = 0.1/L exactly without noise; with noise the corrected D² is unbiased."""
    L, D, _ = cv.particle_differences(_ladder(rng, 1e-300))
    np.testing.assert_allclose(D, 0.1 / L, rtol=1e-9)
    reps = np.array([cv.particle_differences(_ladder(rng, 0.004))[1] ** 2 for _ in range(200)])
    true = (0.1 / L) ** 2
    mean, sem = np.nanmean(reps, axis=0), np.nanstd(reps, axis=0) / math.sqrt(200)
    assert np.all(np.abs(mean[:2] - true[:2]) < 5 * sem[:2])
    raw = np.mean([np.mean((np.diff(_ladder(rng, 0.004).f_particles.values, axis=0)) ** 2,
                           axis=(1, 2)) for _ in range(50)], axis=0)  # fmt: skip
    assert np.all(raw > true)  # the uncorrected estimate is biased up by 2 se²


def test_width_errors_subtract_limit_noise():
    """With a noisy limit of known se, err² = mean e² − mean se² (the estimate is unbiased)."""
    f_lim = np.zeros((1, 3, 2))
    f_fin = np.ones((1, 3, 4, 3, 2)) * np.array([0.4, 0.2, 0.1])[None, :, None, None, None]
    dims = ("phi", "width", "seed", "step", "example")
    ds = xr.Dataset(
        {
            "f_finite": (dims, f_fin + np.array([1, -1, 1, -1])[None, None, :, None, None] * 0.01),
            "f_limit": (("phi", "step", "example"), f_lim),
            "f_limit_se": (("phi", "step", "example"), f_lim + 0.05),
        },
        coords={"phi": ["relu"], "width": [64, 256, 1024], "seed": [0, 1, 2, 3]},
    )
    err, _ = cv.width_errors(ds, "relu")
    expected = np.sqrt((np.array([0.4, 0.2, 0.1]) ** 2 + 0.01**2) - 0.05**2)
    np.testing.assert_allclose(err, expected, rtol=1e-12)


def test_reference_depths_must_be_on_the_linear_ladder():
    with pytest.raises(ValueError, match="reference_depths"):
        cv.run({**cv.SIZES["tiny"], "reference_depths": (8, 64)})
