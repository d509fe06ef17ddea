"""Feature diversity, Depth-µP vs ODE (Figs. 17–18): normalisations with known answers, the
tiny run of both routes, κ̂ trends and the claims on synthetic data."""

import numpy as np
import pytest
import xarray as xr

from limitsim.experiments import diversity
from limitsim.experiments._diversity_fit import window_kappa
from limitsim.experiments._diversity_limit import regression_task
from limitsim.experiments._diversity_plot import normalize_curves
from tests.helpers import tiny_dataset


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
    task = regression_task(steps=3, n_points=5, d_in=7, target_scale=2.5)
    assert task.X.shape == (3, 5, 7) and task.Y.shape == (3, 5, 1)
    np.testing.assert_allclose(np.linalg.norm(task.X[0], axis=1), 1.0)
    np.testing.assert_allclose(np.abs(task.Y), 2.5)
    np.testing.assert_array_equal(task.X[0], task.X[2])  # full batch


def test_record_steps():
    assert diversity.record_steps(1000) == (100, 500, 1000)
    assert diversity.record_steps(3) == (1, 3)


def test_tiny_profile():
    ds = tiny_dataset("diversity")
    expected = {"parametrization", "depth", "seed", "step", "k", "limit_depth", "limit_step"}
    assert expected <= set(ds.coords)
    assert ds.d.dims == ("parametrization", "depth", "seed", "step", "k")
    assert np.isfinite(ds.limit_d.sel(limit_depth=48).isel(limit_k=slice(0, 3))).all()
    kinds = [c.kind for c in diversity.claims(ds)]
    assert kinds == ["paper"] * 12  # finite nets train with Adam, as in the paper


DEPTHS = [64, 128, 256, 512]


def synthetic(noise_exponent, *, seeds=8, noise=0.01, seed=0, drift_growth=None):
    """d² = N_L ε + D_t ε² with N_L = (L/64)^noise_exponent[param]: Brownian noise plus drift
    D_t = 2 (t/10)^drift_growth[param] (default 0: the same at every recorded step t)."""
    drift_growth = drift_growth or {}
    rng = np.random.default_rng(seed)
    params = ["depth_mup", "ode"]
    steps = [1, 5, 10]
    k = np.arange(1, 33)
    d = np.full((2, len(DEPTHS), len(steps), k.size), np.nan)
    for i, param in enumerate(params):
        for j, L in enumerate(DEPTHS):
            eps = k[: L // 16] / L
            for r, t in enumerate(steps):
                drift = 2 * (t / 10) ** drift_growth.get(param, 0.0)
                d[i, j, r, : eps.size] = np.sqrt((L / 64) ** noise_exponent[param] * eps
                                                 + drift * eps**2)  # fmt: skip
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
    assert window_kappa(eps, np.sqrt(eps), 1 / 64) == pytest.approx(0.5)
    assert window_kappa(eps, eps, 1 / 64) == pytest.approx(0.0)


def test_claims_on_the_papers_picture_are_reproduced(tmp_path):
    """Noise ∝ L^0 for Depth-µP and L^-1 for ODE (App. D.2), ODE's drift growing with t
    (Fig. 18): every row reproduced."""
    ds = synthetic({"depth_mup": 0.0, "ode": -1.0}, drift_growth={"ode": 1.0})
    claims = diversity.claims(ds)
    assert [c.verdict for c in claims] == ["reproduced"] * 12
    assert len(diversity.plot(_with_kappa(ds), tmp_path)) == 2


def test_swapped_noise_laws_are_not_reproduced():
    ds = synthetic({"depth_mup": -1.0, "ode": 0.0})
    verdicts = {c.claim + c.quantity: c.verdict for c in diversity.claims(ds)}
    noise_rows = [v for key, v in verdicts.items() if "Brownian noise term" in key]
    growth_rows = [v for key, v in verdicts.items() if "grow" in key]
    assert noise_rows == ["not reproduced"] * 2
    assert "reproduced" not in growth_rows and growth_rows.count("not reproduced") >= 2


def test_time_rows_follow_the_drift():
    """Slopes that do not change with t leave the time rows undecided or not reproduced; a
    drift growing for Depth-µP and not for ODE reverses the difference row."""
    rows = [c for c in diversity.claims(synthetic({"depth_mup": 0.0, "ode": -1.0}))
            if "training time" in c.claim]  # fmt: skip
    assert len(rows) == 4 and all(c.verdict != "reproduced" for c in rows)
    limit = rows[0].estimate
    assert limit.seeds is None and limit.value == pytest.approx(0.0, abs=1e-12)
    ds = synthetic({"depth_mup": 0.0, "ode": -1.0}, drift_growth={"depth_mup": 1.0})
    diff = [c for c in diversity.claims(ds) if "more slowly with training time" in c.claim]
    assert diff[0].estimate.value < 0 and diff[1].verdict == "not reproduced"  # limit, finite


def test_time_slopes_of_power_laws():
    """d = ε^{q_t}: the slope of d/(cε^1/2) at step t is q_t − 1/2 exactly."""
    from limitsim.experiments._diversity_fit import time_growth, time_slopes

    ds = synthetic({"depth_mup": 0.0, "ode": -1.0}, noise=0.0)
    eps = xr.DataArray(ds.limit_k.values / 512, dims="limit_k")
    powers = xr.DataArray([0.5, 0.7, 0.9], dims="limit_step")
    ds = ds.assign(limit_d=(eps**powers).where(np.isfinite(ds.limit_d)))  # exact at L = 512
    slopes = time_slopes(ds, "limit", "ode")
    assert [s[0].value for s in slopes] == pytest.approx([0.0, 0.2, 0.4])
    values, half = time_growth(ds, "limit", "ode")
    assert values == pytest.approx([0.4]) and half == pytest.approx([0.0], abs=1e-9)


def _with_kappa(ds):
    """Add the κ̂ variables the figure reads (as the experiment records them)."""
    shape = ds.d.shape[:-1]
    limit = ds.limit_d.shape[:-1]
    return ds.assign(
        kappa=(("parametrization", "depth", "seed", "step"), np.full(shape, 0.5)),
        limit_kappa=(("parametrization", "limit_depth", "limit_step"), np.full(limit, 0.5)),
        limit_kappa_se=(("parametrization", "limit_depth", "limit_step"), np.zeros(limit)),
    )
