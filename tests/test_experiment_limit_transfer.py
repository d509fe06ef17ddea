"""n = ∞ transfer experiment: tiny run, the block-only identity, the particle loss against the
exact linear limit, the per-seed optimum trend, bad sizes."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from limitsim import Parametrization, linear_limit, simulate_limit
from limitsim.experiments import limit_transfer as lt
from limitsim.experiments._limit_transfer_losses import pair_loss

SIZES = lt.SIZES["tiny"]


@pytest.fixture
def tiny(tiny_experiment):
    """The session's tiny-profile dataset (each tiny experiment runs once per session)."""
    return tiny_experiment("limit_transfer")


def test_tiny_run_plot_claims(tiny, tmp_path):
    depths, seeds = list(SIZES.depths), SIZES.seeds
    assert tiny.log_loss.sizes == {
        "optimizer": 2,
        "param": 2,
        "depth": len(depths),
        "log2_eta": tiny.sizes["log2_eta"],
        "seed": seeds,
    }
    for opt in SIZES.optimizers:
        window = list(SIZES.log2_etas[opt])
        mup = tiny.log_loss.sel(optimizer=opt, param="depth_mup", log2_eta=window)
        assert np.isfinite(mup).all()  # the tiny windows stay below divergence
        assert np.isnan(tiny.log_loss.sel(optimizer=opt, param="depth_mup")).sum() == (
            (tiny.sizes["log2_eta"] - len(window)) * len(depths) * seeds
        )
    assert tiny.f_depth_mup.sizes["step"] == SIZES.steps
    paths = lt.plot(tiny, tmp_path)
    assert all(p.exists() for p in paths)
    claims = lt.claims(tiny)
    assert len(claims) == 3 * len(SIZES.optimizers)
    assert {c.kind for c in claims} == {"extension"}
    assert all(c.estimate.seeds == seeds for c in claims)


def test_block_only_curves_are_depth_mup_shifted_by_half_log2_depth(tiny):
    """The stored block-only curve at (log2 η, L) is Depth-µP's at log2 η + ½ log2 L."""
    for L in SIZES.depths:
        window = list(SIZES.log2_etas["sgd"])
        mup = tiny.log_loss.sel(optimizer="sgd", param="depth_mup", depth=L, log2_eta=window)
        moved = [round(v - 0.5 * math.log2(L), 6) for v in window]
        bo = tiny.log_loss.sel(optimizer="sgd", param="block_only", depth=L, log2_eta=moved)
        np.testing.assert_array_equal(bo.values, mup.values)
    mup, bo = lt.trend(tiny, "adam", "depth_mup"), lt.trend(tiny, "adam", "block_only")
    np.testing.assert_allclose(bo.slopes, mup.slopes - 0.5, rtol=0, atol=1e-12)
    shifts = 0.5 * np.log2(np.asarray(SIZES.depths, dtype=float))[:, None]
    np.testing.assert_allclose(bo.optima, mup.optima - shifts, rtol=0, atol=1e-12)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_block_only_equals_depth_mup_at_eta_sqrt_depth(optimizer):
    """The identity of the module docstring, on direct simulations with the same seed."""
    task = lt.make_task({**SIZES, "steps": 3})
    depth, eta = 8, 0.7
    options = {"n_partners": 16} if optimizer == "adam" else {}
    runs = [
        simulate_limit(
            task,
            param,
            depth=depth,
            phi="relu",
            n_particles=256,
            seed=5,
            n_replicas=2,
            progress=False,
            **options,
        )
        for param in (
            Parametrization.block_only(eta=eta, optimizer=optimizer),
            Parametrization.depth_mup(eta=eta * math.sqrt(depth), optimizer=optimizer),
        )
    ]
    np.testing.assert_allclose(runs[0].f, runs[1].f, rtol=1e-9, atol=1e-12)
    assert np.abs(runs[0].f[-1] - runs[0].f[0]).max() > 0.1  # it trains


def test_particle_log_loss_matches_the_exact_linear_limit():
    """φ = linear: the seed mean of limit_point's log loss is within 5 SE of the exact limit."""
    point = {
        **{k: SIZES[k] for k in lt.POINT_KEYS},
        "phi": "linear",
        "optimizer": "sgd",
        "depth": 4,
        "log2_eta": 0.0,
    }
    task = lt.make_task(point)
    f = np.stack([lt.limit_point({**point, "seed": s})["f"] for s in range(8)])
    values = lt.log_losses(f, task.Y[0, :, 0])
    exact = linear_limit(task, Parametrization.depth_mup(eta=1.0), depth=4)
    truth = math.log(float(np.mean(exact.loss[1:])))
    se = values.std(ddof=1) / math.sqrt(values.size)
    assert abs(values.mean() - truth) < 5 * se
    assert se < 0.05 * abs(truth)  # the check has power: the bar is small against the value


def test_log_losses_remove_the_variance_of_f(rng):
    """Exact f plus noise of s.d. σ: the corrected loss is unbiased, the naive one is not."""
    y = np.array([0.5, -1.0])
    f_true = np.array([[0.0, 0.0], [0.3, -0.6], [0.45, -0.9]])  # (T, B)
    sigma, seeds = 0.05, 4000
    f = f_true + sigma * rng.standard_normal((seeds, *f_true.shape))
    loss = np.exp(lt.log_losses(f, y))
    truth = np.mean(0.5 * (f_true - y) ** 2, axis=-1)[1:].mean()
    se = loss.std(ddof=1) / math.sqrt(seeds)
    assert abs(loss.mean() - truth) < 4 * se
    assert truth + 0.5 * sigma**2 - loss.mean() > 4 * se  # the correction is resolved
    f[0, 2] = np.nan  # a diverged seed: NaN for it, the others corrected from the rest
    out = lt.log_losses(f[:3], y)
    assert np.isnan(out[0]) and np.isfinite(out[1:]).all()


def test_pair_loss_against_every_pair(rng):
    """U and its leave-one-out values equal the mean over ordered pairs, written out."""
    errors = rng.standard_normal((6, 10)) + 0.3

    def by_pairs(x):
        S = x.shape[0]
        return np.mean([0.5 * np.mean(x[a] * x[b]) for a in range(S) for b in range(S) if a != b])

    U, leave_one_out = pair_loss(errors)
    assert U == pytest.approx(by_pairs(errors), rel=1e-12)
    expected = [by_pairs(np.delete(errors, i, axis=0)) for i in range(6)]
    np.testing.assert_allclose(leave_one_out, expected, rtol=1e-12)


def test_seed_mean_log_is_the_corrected_seed_mean(rng):
    """log U equals the log of the seed mean of log_losses' variance-corrected losses."""
    y = np.array([0.5, -1.0])
    f = np.array([[0.0, 0.0], [0.3, -0.6], [0.45, -0.9]]) + 0.05 * rng.standard_normal((8, 3, 2))
    f[:, 0] = 0.0
    log_loss, se = lt.seed_mean_log(f, y)
    assert log_loss == pytest.approx(np.log(np.exp(lt.log_losses(f, y)).mean()), rel=1e-12)
    assert 0 < se < 0.1
    f[2, 1:] = np.nan  # a diverged seed is left out
    assert lt.seed_mean_log(f, y)[0] == pytest.approx(lt.seed_mean_log(np.delete(f, 2, 0), y)[0])
    short = lt.seed_mean_log(f[1:3], y)  # one finite seed: nothing; two: no standard error
    assert np.isnan(short[0]) and np.isnan(short[1])
    two = lt.seed_mean_log(f[3:5], y)
    assert np.isfinite(two[0]) and np.isnan(two[1])


@pytest.mark.parametrize("d", [0.0, 0.3, 3.0])
def test_jackknife_expectation_follows_the_derivation(rng, d):
    """Monte Carlo against seed_mean_log's derivation, errors d + N(0, 1) in J columns:
    Var U = 4ζ₁/S + 2δ/(S(S−1)) and E v_jack = 4ζ₁/S + 4δ/(S(S−2)), ζ₁ = d²/(4J), δ = 1/(4J)
    (exact at d = 3, 2(S−1)/(S−2) too large at d = 0); 5 standard errors."""
    S, J, reps = 8, 5, 6000
    U, jack = np.empty(reps), np.empty(reps)
    for r in range(reps):
        U[r], leave_one_out = pair_loss(d + rng.standard_normal((S, J)))
        jack[r] = (S - 1) / S * np.sum((leave_one_out - leave_one_out.mean()) ** 2)
    zeta1, delta = d * d / (4 * J), 1 / (4 * J)
    var_u = 4 * zeta1 / S + 2 * delta / (S * (S - 1))
    centred = (U - U.mean()) ** 2
    assert abs(U.mean() - 0.5 * d * d) < 5 * U.std() / math.sqrt(reps)
    assert abs(centred.mean() - var_u) < 5 * centred.std() / math.sqrt(reps)
    expected_jack = 4 * zeta1 / S + 4 * delta / (S * (S - 2))
    assert abs(jack.mean() - expected_jack) < 5 * jack.std() / math.sqrt(reps)


def test_common_random_numbers_across_learning_rates():
    """One seed's simulations at two η share their random numbers: f_0 agrees exactly."""
    point = {
        **{k: SIZES[k] for k in lt.POINT_KEYS},
        "optimizer": "sgd",
        "depth": 4,
        "seed": 0,
    }
    a = lt.limit_point({**point, "log2_eta": 1.0})
    b = lt.limit_point({**point, "log2_eta": 2.0})
    c = lt.limit_point({**point, "log2_eta": 1.0, "seed": 1})
    np.testing.assert_array_equal(a["f"][0], b["f"][0])
    assert not np.allclose(a["f"][0], c["f"][0])


def test_bad_sizes():
    with pytest.raises(ValueError, match="powers of two"):
        dataclasses.replace(lt.QUICK, depths=(4, 6))
    with pytest.raises(ValueError, match=r"steps of 0\.5"):
        dataclasses.replace(lt.QUICK, log2_etas={"sgd": (0.0, 0.3, 0.6), "adam": (0.0, 0.5, 1.0)})
    with pytest.raises(ValueError, match="every optimizer"):
        dataclasses.replace(lt.QUICK, log2_etas={"sgd": (0.0, 0.5, 1.0)})
