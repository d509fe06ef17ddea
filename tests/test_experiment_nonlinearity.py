"""abs vs relu and the homogeneous family: definitions against independent routes, the tiny
run, and the claims on data with known answers."""

import math

import numpy as np
import pytest
import xarray as xr

from limitsim.experiments import nonlinearity
from limitsim.experiments._homogeneous import (
    ABS_THETA,
    family_coefficients,
    family_spec,
    lag_prediction,
)
from limitsim.nonlinearities.registry import nonlinearity as get_nonlinearity

THETAS = np.arange(-90.0, 90.1, 22.5)


@pytest.mark.parametrize("theta", THETAS)
def test_family_variance_equals_relus(theta):
    """The normalisation, checked against the library's closed-form Σ_φ (derivations/)."""
    one = np.array([[1.0]])
    relu = float(get_nonlinearity("relu").sigma(one)[0, 0])
    member = float(get_nonlinearity(family_spec(theta)).sigma(one)[0, 0])
    assert member == pytest.approx(relu, rel=1e-5)


def test_family_special_members():
    assert family_coefficients(0.0) == pytest.approx((1.0, 0.0))  # relu itself
    c_plus, c_minus = family_coefficients(ABS_THETA)
    assert c_minus == pytest.approx(-c_plus)  # abs, scaled
    c_plus, c_minus = family_coefficients(45.0)
    assert c_minus == pytest.approx(c_plus)  # linear, scaled
    for theta in THETAS:  # φ(−z) is the member at −90° − θ: (c₊, c₋) → (−c₋, −c₊)
        c_plus, c_minus = family_coefficients(theta)
        assert family_coefficients(-90.0 - theta) == pytest.approx((-c_minus, -c_plus))
    assert "-0.000000" not in family_spec(-90.0)


@pytest.mark.parametrize("theta", [-90.0, -45.0, -10.0, 0.0, 30.0, 45.0])
def test_lag_prediction_against_monte_carlo(theta, rng):
    """(E φ′)²/E φ′² by sampling z ~ N(0, 1) and φ′ from the library, 20 independent batches."""
    dphi = get_nonlinearity(family_spec(theta)).derivative
    estimates = []
    for _ in range(20):
        g = dphi(rng.standard_normal(50_000))
        estimates.append(g.mean() ** 2 / np.mean(g**2))
    mean, se = np.mean(estimates), np.std(estimates, ddof=1) / math.sqrt(len(estimates))
    assert abs(mean - float(lag_prediction(theta))) <= 5 * se + 1e-12


def test_tiny_profile(tiny_experiment):
    ds = tiny_experiment("nonlinearity")
    assert ds.log_loss.dims == ("phi", "depth", "log2_eta", "seed")
    assert ds.family_lag1.dims == ("theta", "seed", "step")
    assert list(ds.step.values) == [0, 2, 4, 8]  # t = 0 and 25%, 50%, 100% of 8 steps
    assert np.isfinite(ds.family_kappa).all()  # L = 64 resolves four ε = k/L
    # θ = 0 is relu and θ = −45° abs: different members, different runs
    assert not np.allclose(ds.family_lag1.sel(theta=0.0), ds.family_lag1.sel(theta=ABS_THETA))
    claims = nonlinearity.claims(ds)
    assert all(c.estimate.seeds == ds.sizes["seed"] for c in claims)


def test_record_steps():
    assert nonlinearity.record_steps(300, (0.01, 0.03, 0.1, 1.0)) == (0, 3, 9, 30, 300)
    assert nonlinearity.record_steps(10, (0.01, 0.5)) == (0, 1, 5)


STEPS = [0, 3, 9, 30, 300]


def synthetic(*, seeds=8, noise=0.01, seed=0, abs_kappa=0.45):
    """The paper's picture: abs better, decorrelated and more diverse; family optima at abs."""
    rng = np.random.default_rng(seed)
    etas, depths, ks = [1.0, 2.0, 3.0], [32, 64], [1, 2, 3, 4]
    bowl = (np.asarray(etas) - 2.0) ** 2

    def noisy(shape):
        return noise * rng.standard_normal(shape)

    shape = (2, len(depths), len(etas), seeds)
    loss = np.stack([np.full(shape[1:], v) for v in (-2.0, -2.5)]) + bowl[:, None]
    fshape = (THETAS.size, seeds, len(STEPS))
    distance = np.radians(THETAS - ABS_THETA)[:, None, None]
    lag = np.broadcast_to(lag_prediction(THETAS)[:, None, None], fshape)
    kappa = np.where(np.asarray(STEPS) == 0, 0.5, abs_kappa - distance**2)
    family_loss = np.repeat(-2.5 + distance[..., 0] ** 2, seeds, axis=1)
    return xr.Dataset(
        {
            "log_loss": (("phi", "depth", "log2_eta", "seed"), loss + noisy(shape)),
            "family_log_loss": (("theta", "seed"), family_loss),
            "family_lag1": (("theta", "seed", "step"), lag + noisy(fshape)),
            "family_kappa": (("theta", "seed", "step"), kappa + noisy(fshape)),
            "family_d": (("theta", "seed", "step", "k"), np.ones((*fshape, 4))),
        },
        coords={
            "phi": ["relu", "abs"],
            "depth": depths,
            "log2_eta": etas,
            "seed": np.arange(seeds),
            "step": STEPS,
            "k": ks,
            "theta": THETAS,
        },
        attrs={"family_depth": 256, "steps": 300, "optimizer": "adam", "base_eta": 0.1,
               "family_log2_eta": 0.0, "log2_a": -1.5, "task": "digits", "width": 64},
    )  # fmt: skip


def _verdicts(claims, text):
    return [c.verdict for c in claims if text in c.claim + c.quantity]


def test_claims_on_the_papers_picture_are_reproduced():
    claims = nonlinearity.claims(synthetic())
    # abs's η transfer (1), loss at L ≥ 32 (2), κ̂ at t = 0 and four later times (5), lag at
    # init (2) and after training (2), family optima (2)
    assert len(claims) == 1 + 2 + 5 + 4 + 2
    assert [c.verdict for c in claims] == ["reproduced"] * len(claims)
    kinds = [c.kind for c in claims if "κ̂(abs) − κ̂(relu)" in c.quantity]
    assert kinds == ["extension", "paper", "paper", "extension", "extension"]  # t ≤ 5%: paper
    for claim in claims[-2:]:  # family optima
        assert claim.estimate.low < ABS_THETA < claim.estimate.high


def test_relu_winning_is_not_reproduced():
    ds = synthetic(abs_kappa=0.2)  # abs less diverse than relu (0.2 − (45°)² < 0.5 − …)
    ds["log_loss"] = ds.log_loss.sel(phi=["abs", "relu"]).assign_coords(phi=["relu", "abs"])
    claims = nonlinearity.claims(ds)
    assert _verdicts(claims, "in loss") == ["not reproduced"] * 2


def _moving_optimum(ds, etas, slope):
    """``ds`` with abs and relu LogLoss bowls over ``etas`` centred at 2 + slope·log2(L/32)."""
    depths = ds.depth.values
    centre = 2.0 + slope * (np.log2(depths) - 5)
    bowl = (etas[None, :] - centre[:, None]) ** 2
    noise = 0.01 * np.random.default_rng(2).standard_normal((2, *bowl.shape, ds.sizes["seed"]))
    loss = np.array([-2.0, -2.5])[:, None, None, None] + bowl[None, ..., None] + noise
    coords = {"phi": ds.phi.values, "depth": depths, "log2_eta": etas, "seed": ds.seed.values}
    log_loss = xr.DataArray(loss, dims=tuple(coords), coords=coords)
    return ds.drop_vars(["log_loss", "log2_eta"]).assign(log_loss=log_loss)


@pytest.mark.parametrize(("slope", "verdict"), [(0.0, "reproduced"), (-1.0, "not reproduced")])
def test_abs_transfer_row_follows_the_optimum(slope, verdict):
    """Fig. 3 left: the optimum of abs must stay within ±0.25 per doubling of L."""
    ds = _moving_optimum(synthetic(), np.arange(-2.0, 6.01, 0.5), slope)
    (row,) = [c for c in nonlinearity.claims(ds) if "transfers" in c.claim]
    assert row.verdict == verdict
    assert row.estimate.value == pytest.approx(slope, abs=0.05)


def test_abs_transfer_row_with_optima_at_the_grid_edge_is_undecided():
    ds = _moving_optimum(synthetic(), np.array([1.0, 2.0, 3.0]), -1.0)  # L = 64: optimum 1
    (row,) = [c for c in nonlinearity.claims(ds) if "transfers" in c.claim]
    assert row.verdict.startswith("inconclusive (50% of per-seed optima at the η grid's edge")


def test_diversity_rows_are_paired_over_seeds():
    """A large seed effect shared by abs and relu does not blur their κ̂ difference."""
    ds = synthetic()
    shared = np.random.default_rng(1).normal(0.0, 0.3, size=ds.sizes["seed"])
    ds["family_kappa"] = ds.family_kappa + xr.DataArray(shared, dims="seed")
    rows = [c for c in nonlinearity.claims(ds) if "κ̂(abs) − κ̂(relu)" in c.quantity]
    assert [c.verdict for c in rows[1:]] == ["reproduced"] * 4
