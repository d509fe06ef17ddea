"""Feature diversity, Depth-µP vs ODE (Figs. 17–18): normalisations with known answers, the
tiny run of both routes, κ̂ trends and the claims on synthetic data."""

import numpy as np
import pytest
import xarray as xr

from limitsim.experiments import diversity
from limitsim.experiments._diversity_plot import normalize_curves


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


def test_tiny_profile(tiny_experiment):
    ds = tiny_experiment("diversity")
    expected = {"parametrization", "depth", "seed", "step", "k", "limit_depth", "limit_step"}
    assert expected <= set(ds.coords)
    assert ds.d.dims == ("parametrization", "depth", "seed", "step", "k")
    assert np.isfinite(ds.limit_d.sel(limit_depth=48).isel(limit_k=slice(0, 3))).all()
    kinds = [c.kind for c in diversity.claims(ds)]
    assert kinds == ["paper"] * 8  # finite nets train with Adam, as in the paper


DEPTHS = [64, 128, 256, 512]


def synthetic(noise_exponent, *, seeds=8, noise=0.01, seed=0):
    """d² = N_L ε + 2 ε² with N_L = (L/64)^noise_exponent[param]: Brownian noise plus drift."""
    rng = np.random.default_rng(seed)
    params = ["depth_mup", "ode"]
    steps = [1, 5, 10]
    k = np.arange(1, 33)
    d = np.full((2, len(DEPTHS), len(steps), k.size), np.nan)
    for i, param in enumerate(params):
        for j, L in enumerate(DEPTHS):
            eps = k[: L // 16] / L
            d[i, j, :, : eps.size] = np.sqrt((L / 64) ** noise_exponent[param] * eps + 2 * eps**2)
    finite = np.repeat(d[:, :, None], seeds, axis=2)
    finite = finite * np.exp(noise * rng.standard_normal(finite.shape))
    return xr.Dataset(
        {
            "d": (("parametrization", "depth", "seed", "step", "k"), finite),
            "limit_d": (("parametrization", "limit_depth", "limit_step", "limit_k"), d),
        },
        coords={
            "parametrization": params,
            "depth": DEPTHS,
            "seed": np.arange(seeds),
            "step": steps,
            "k": k,
            "limit_depth": DEPTHS,
            "limit_step": steps,
            "limit_k": k,
        },
        attrs={"width": 64, "limit_eta": 0.15, "log2_a": 0.0, "base_eta": 0.25, "log2_eta": -1.0},
    )


def test_noise_drift_fit_recovers_the_decomposition():
    ds = synthetic({"depth_mup": 0.0, "ode": -1.0}, noise=0.0)
    (fit,) = diversity.noise_fits(ds, "limit", "ode", 256)
    assert fit.exponent == pytest.approx(1.0, abs=1e-6)
    assert fit.noise == pytest.approx(0.25, rel=1e-6) and fit.drift == pytest.approx(2.0, rel=1e-6)
    assert fit.drift_share(1 / 16) == pytest.approx(0.125 / (0.25 + 0.125))


def test_window_kappa_of_power_laws():
    eps = np.arange(1, 17) / 256
    assert diversity.window_kappa(eps, np.sqrt(eps), 1 / 64) == pytest.approx(0.5)
    assert diversity.window_kappa(eps, eps, 1 / 64) == pytest.approx(0.0)


def test_claims_on_the_papers_picture_are_reproduced(tmp_path):
    """Noise ∝ L^0 for Depth-µP and L^-1 for ODE (App. D.2): every row reproduced."""
    ds = synthetic({"depth_mup": 0.0, "ode": -1.0})
    claims = diversity.claims(ds)
    assert [c.verdict for c in claims] == ["reproduced"] * 8
    assert len(diversity.plot(_with_kappa(ds), tmp_path)) == 2


def test_swapped_noise_laws_are_not_reproduced():
    ds = synthetic({"depth_mup": -1.0, "ode": 0.0})
    verdicts = {c.claim + c.quantity: c.verdict for c in diversity.claims(ds)}
    noise_rows = [v for key, v in verdicts.items() if "Brownian noise term" in key]
    growth_rows = [v for key, v in verdicts.items() if "grow" in key]
    assert noise_rows == ["not reproduced"] * 2
    assert "reproduced" not in growth_rows and growth_rows.count("not reproduced") >= 2


def _with_kappa(ds):
    """Add the κ̂ variables the figure reads (as the experiment records them)."""
    shape = ds.d.shape[:-1]
    limit = ds.limit_d.shape[:-1]
    return ds.assign(
        kappa=(("parametrization", "depth", "seed", "step"), np.full(shape, 0.5)),
        limit_kappa=(("parametrization", "limit_depth", "limit_step"), np.full(limit, 0.5)),
        limit_kappa_se=(("parametrization", "limit_depth", "limit_step"), np.zeros(limit)),
    )
