"""Feature diversity, Depth-µP vs ODE (Figs. 17–18): normalisations with known answers, the
tiny run of both routes, κ̂ trends and the claims on synthetic data."""

import math

import numpy as np
import pytest
import xarray as xr

from limitsim.experiments import diversity
from limitsim.experiments._diversity_plot import normalize_curves
from limitsim.report import VERDICTS


@pytest.mark.parametrize("depth", [64, 512])
def test_normalized_curves_of_pure_power_laws(depth):
    k = np.arange(1, depth // 16 + 1)
    eps = k / depth
    k_ref = max(1, depth // 256)
    eps_ref = k_ref / depth
    brownian = xr.DataArray(3.0 * np.sqrt(eps), dims="k", coords={"k": k})
    e, scaled, ratio = normalize_curves(brownian, depth)
    np.testing.assert_allclose(e, eps)
    np.testing.assert_allclose(ratio[0], 1.0)  # flat: κ = 1/2
    np.testing.assert_allclose(scaled[0], np.sqrt(eps / eps_ref))
    smooth = xr.DataArray(np.stack([eps, 2 * eps]), dims=("seed", "k"), coords={"k": k})
    _, scaled, ratio = normalize_curves(smooth, depth)
    np.testing.assert_allclose(ratio, np.sqrt(eps / eps_ref)[None].repeat(2, 0))  # κ = 0
    np.testing.assert_allclose(scaled[1], eps / eps_ref)


def test_regression_task():
    task = diversity.regression_task(steps=3, n_points=5, d_in=7, target_scale=2.5)
    assert task.X.shape == (3, 5, 7) and task.Y.shape == (3, 5, 1)
    np.testing.assert_allclose(np.linalg.norm(task.X[0], axis=1), 1.0)
    np.testing.assert_allclose(np.abs(task.Y), 2.5)
    np.testing.assert_array_equal(task.X[0], task.X[2])  # full batch


def test_record_steps():
    assert diversity.record_steps(1000) == (100, 500, 1000)
    assert diversity.record_steps(3) == (1, 3)


def test_tiny_profile(tmp_path):
    ds = diversity.run(diversity.SIZES["tiny"])
    expected = {"parametrization", "depth", "seed", "step", "k", "limit_depth", "limit_step"}
    assert expected <= set(ds.coords)
    assert ds.kappa.dims == ("parametrization", "depth", "seed", "step")
    assert ds.limit_kappa.dims == ("parametrization", "limit_depth", "limit_step")
    assert np.isfinite(ds.limit_kappa.sel(limit_depth=48)).all()
    assert np.isfinite(ds.kappa.sel(depth=48)).all()
    assert all(p.exists() for p in diversity.plot(ds, tmp_path))
    claims = diversity.claims(ds)
    assert len(claims) == 8 and all(c.verdict in VERDICTS for c in claims)


def synthetic(mup, ode, *, seeds=3, noise=0.005, seed=0):
    """κ̂ tables (per depth) for both routes; d is a pure ε^(1−κ) law."""
    rng = np.random.default_rng(seed)
    depths = [64, 128, 256, 512]
    params = ["depth_mup", "ode"]
    kappa = np.array([[f(L) for L in depths] for f in (mup, ode)])  # (param, depth)
    steps = [1, 5, 10]
    limit = np.repeat(kappa[:, :, None], len(steps), axis=2)
    finite = np.repeat(limit[:, :, None, :], seeds, axis=2)
    finite = finite + noise * rng.standard_normal(finite.shape)
    k = np.arange(1, 33)
    d = (k[None, None, None, :] / 512.0) ** (1 - limit[..., None])
    return xr.Dataset(
        {
            "kappa": (("parametrization", "depth", "seed", "step"), finite),
            "d": (
                ("parametrization", "depth", "seed", "step", "k"),
                np.repeat(d[:, :, None], seeds, axis=2),
            ),
            "limit_kappa": (("parametrization", "limit_depth", "limit_step"), limit),
            "limit_kappa_se": (
                ("parametrization", "limit_depth", "limit_step"),
                np.full(limit.shape, 0.002),
            ),
            "limit_d": (("parametrization", "limit_depth", "limit_step", "limit_k"), d),
        },
        coords={
            "parametrization": params,
            "depth": depths,
            "seed": np.arange(seeds),
            "step": steps,
            "k": k,
            "limit_depth": depths,
            "limit_step": steps,
            "limit_k": k,
        },
        attrs={"width": 64, "limit_eta": 0.15, "log2_a": 0.0, "base_eta": 0.25, "log2_eta": -1.0},
    )


def test_kappa_slope_known_line():
    ds = synthetic(lambda L: 0.5, lambda L: 0.4 - 0.1 * math.log2(L / 64), noise=0.0)
    slope, se = diversity.kappa_slope(ds, "limit", "ode")
    assert slope == pytest.approx(-0.1) and se == pytest.approx(0.0, abs=1e-8)
    slope, _ = diversity.kappa_slope(ds, "finite", "depth_mup")
    assert slope == pytest.approx(0.0, abs=1e-8)


def test_claims_on_the_papers_picture_are_reproduced(tmp_path):
    ds = synthetic(lambda L: 0.5, lambda L: 0.3 - 0.1 * math.log2(L / 64))
    claims = diversity.claims(ds)
    assert [c.verdict for c in claims] == ["reproduced"] * 8
    assert len(diversity.plot(ds, tmp_path)) == 2


def test_redundant_depth_mup_is_not_reproduced():
    ds = synthetic(lambda L: 0.1, lambda L: 0.5)
    verdicts = {(c.statement, c.quantity): c.verdict for c in diversity.claims(ds)}
    kappa_claims = [v for (s, q), v in verdicts.items() if q.startswith("κ̂")]
    assert kappa_claims == ["not reproduced"] * 4
