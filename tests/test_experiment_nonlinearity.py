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
from limitsim.nonlinearities import nonlinearity as get_nonlinearity
from limitsim.report import VERDICTS

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


def test_tiny_profile(tmp_path):
    ds = nonlinearity.run(nonlinearity.SIZES["tiny"])
    assert {"phi", "depth", "log2_eta", "seed", "step", "theta"} <= set(ds.coords)
    assert ds.log_loss.dims == ("phi", "depth", "log2_eta", "seed")
    assert ds.family_lag1.dims == ("theta", "log2_eta", "seed", "step")
    assert np.isfinite(ds.kappa.sel(depth=48)).all()  # L = 48 resolves three ε = k/L
    assert np.isnan(ds.kappa.sel(depth=16)).all()
    paths = nonlinearity.plot(ds, tmp_path)
    assert sorted(p.name for p in paths) == [
        "nonlinearity.pdf",
        "nonlinearity.png",
        "nonlinearity_family.pdf",
        "nonlinearity_family.png",
    ]
    assert all(p.exists() for p in paths)
    assert all(c.verdict in VERDICTS for c in nonlinearity.claims(ds))


def synthetic(*, seeds=3, noise=0.01, seed=0):
    """The paper's picture: abs better and decorrelated, every family optimum at abs."""
    rng = np.random.default_rng(seed)
    etas, depths, steps, ks = [1.0, 2.0, 3.0], [32, 64], [0, 100], [1, 2, 3, 4]
    bowl = (np.asarray(etas) - 2.0) ** 2
    pair = {"relu": (-2.0, 0.5, 0.30), "abs": (-2.5, 0.0, 0.45)}  # (loss, lag1, κ̂)

    def noisy(shape):
        return noise * rng.standard_normal(shape)

    shape = (2, len(depths), len(etas), seeds)
    loss = np.stack([np.full(shape[1:], pair[p][0]) for p in pair]) + bowl[:, None]
    lag = np.stack([np.full((*shape[1:], 2), pair[p][1]) for p in pair])
    kappa = np.stack([np.full((*shape[1:], 2), pair[p][2]) for p in pair])
    fshape = (THETAS.size, len(etas), seeds)
    distance = np.radians(THETAS - ABS_THETA)[:, None, None]
    pred = lag_prediction(THETAS)[:, None, None, None]
    dims = ("phi", "depth", "log2_eta", "seed")
    fdims = ("theta", "log2_eta", "seed")
    return xr.Dataset(
        {
            "log_loss": (dims, loss + noisy(shape)),
            "lag1": ((*dims, "step"), lag + noisy((*shape, 2))),
            "kappa": ((*dims, "step"), kappa + noisy((*shape, 2))),
            "d": ((*dims, "step", "k"), np.ones((*shape, 2, 4))),
            "family_log_loss": (fdims, -2.5 + distance**2 + bowl[:, None] + noisy(fshape)),
            "family_lag1": ((*fdims, "step"), pred + noisy((*fshape, 2))),
            "family_kappa": (
                (*fdims, "step"),
                0.45 - distance[..., None] ** 2 + noisy((*fshape, 2)),
            ),
        },
        coords={
            "phi": list(pair),
            "depth": depths,
            "log2_eta": etas,
            "seed": np.arange(seeds),
            "step": steps,
            "k": ks,
            "theta": THETAS,
        },
        attrs={"family_depth": 64},
    )


def test_claims_on_the_papers_picture_are_reproduced(tmp_path):
    ds = synthetic()
    claims = nonlinearity.claims(ds)
    assert len(claims) == 2 + 4 + 1 + 3
    assert [c.verdict for c in claims] == ["reproduced"] * len(claims)
    for claim in claims[-3:]:  # family optima
        assert claim.measured == pytest.approx(ABS_THETA, abs=5 * claim.uncertainty + 1.0)
    assert len(nonlinearity.plot(ds, tmp_path)) == 4


def test_relu_winning_is_not_reproduced():
    ds = synthetic()
    ds["log_loss"] = ds.log_loss.sel(phi=["abs", "relu"]).assign_coords(phi=["relu", "abs"])
    ds = ds.sortby("phi", ascending=False)
    loss_claims = [c for c in nonlinearity.claims(ds) if "in loss" in c.statement]
    assert loss_claims and all(c.verdict == "not reproduced" for c in loss_claims)
