"""Measures (limitsim.measures) against direct computations on explicit feature vectors,
closed-form paths (Brownian: κ = 1/2, smooth: κ = 0) and finite networks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from limitsim import Parametrization, Record, Recorded, Run, Task
from limitsim.finite.train import train_finite_batch
from limitsim.measures import (
    coordinate_check,
    diversity_exponent,
    faithfulness,
    feature_diversity,
    feature_learning,
    fit_exponent,
    gradient_correlation,
    lag_correlation,
    normalized_diversity,
    output_change,
)


def recorded_from_vectors(x, h, dh=None, steps=None):
    """Kernels of explicit vectors x (R, L+1, n), h (R, L, n), dh (R, L, n): ⟨u|v⟩ = u·v/n."""
    n = x.shape[-1]
    return Recorded(
        steps=np.arange(x.shape[0]) if steps is None else np.asarray(steps),
        x_layers=np.einsum("rln,rmn->rlm", x, x) / n,
        x_steps=np.einsum("rln,sln->rsl", x, x) / n,
        h_steps=np.einsum("rln,sln->rsl", h, h) / n,
        dh_layers=None if dh is None else np.einsum("rln,rmn->rlm", dh, dh) / n,
    )


def exact_recorded(K):
    """A Recorded holding one exact layer kernel K (L+1, L+1) at step 0."""
    L = K.shape[0] - 1
    return Recorded(
        steps=np.array([0]),
        x_layers=K[None],
        x_steps=np.diag(K)[None, None],
        h_steps=np.ones((1, 1, L)),
    )


def test_diversity_matches_direct_norms(rng):
    L, n = 64, 200
    x = np.cumsum(rng.standard_normal((2, L + 1, n)), axis=1) / math.sqrt(L)
    rec = recorded_from_vectors(x, rng.standard_normal((2, L, n)))
    eps = np.array([1, 2, 5, 16]) / L
    for lam in (0.0, 0.25, 0.5):
        b = int(lam * L)
        direct = [np.linalg.norm(x[1, b + round(e * L)] - x[1, b]) / math.sqrt(n) for e in eps]
        np.testing.assert_allclose(feature_diversity(rec, eps, lam=lam), direct, rtol=1e-10)
    averaged = feature_diversity(rec, eps, lam=[0.25, 0.5], step=0)
    single = [feature_diversity(rec, eps, lam=v, step=0) ** 2 for v in (0.25, 0.5)]
    np.testing.assert_allclose(averaged, np.sqrt(np.mean(single, axis=0)), rtol=1e-12)


@pytest.mark.parametrize("L", [256, 1024])
def test_brownian_and_smooth_paths_give_kappa_half_and_zero(L):
    layers = np.arange(L + 1) / L
    brownian = np.minimum.outer(layers, layers)  # Cov of Brownian motion: d² = ε
    smooth = np.outer(layers, layers)  # x^l = (l/L) v: d = ε
    fit_b = diversity_exponent(exact_recorded(brownian))
    fit_s = diversity_exponent(exact_recorded(smooth), lam=[0.1, 0.5])
    assert fit_b.kappa == pytest.approx(0.5, abs=1e-9) and fit_b.kappa_se < 1e-7
    assert fit_s.kappa == pytest.approx(0.0, abs=1e-9)
    assert fit_b.eps[0] == pytest.approx(max(1 / 256, 1 / L))
    assert fit_b.eps[-1] == pytest.approx(1 / 16)
    scaled, ratio = normalized_diversity(exact_recorded(brownian), fit_b.eps)
    np.testing.assert_allclose(ratio, 1.0, rtol=1e-9)  # Fig. 18: flat for κ = 1/2
    np.testing.assert_allclose(scaled, np.sqrt(fit_b.eps * 256), rtol=1e-9)  # c d(1/256) = 1
    _, ratio_s = normalized_diversity(exact_recorded(smooth), fit_b.eps)
    np.testing.assert_allclose(ratio_s, np.sqrt(fit_b.eps * 256), rtol=1e-9)


def test_diversity_errors():
    rec = exact_recorded(np.eye(9))
    with pytest.raises(ValueError, match="at least 3"):
        diversity_exponent(rec)
    with pytest.raises(ValueError, match="outside"):
        feature_diversity(rec, [0.5], lam=0.75)
    with pytest.raises(ValueError, match="not recorded"):
        feature_diversity(rec, [0.25], step=3)
    with pytest.raises(ValueError, match="recorded kernels"):
        feature_diversity(Run(f=np.zeros((1, 1, 1)), loss=np.zeros(1), route="x"), [0.1])
    with pytest.raises(TypeError):
        feature_diversity(np.eye(3), [0.1])


def test_feature_learning_faithfulness_and_gradient_correlation(rng):
    R, L, n = 3, 8, 50
    x = rng.standard_normal((R, L + 1, n))
    h = rng.standard_normal((R, L, n))
    dh = rng.standard_normal((R, L, n))
    rec = recorded_from_vectors(x, h, dh, steps=[0, 4, 9])
    direct = np.sqrt(np.mean((h[2] - h[0]) ** 2, axis=-1))
    np.testing.assert_allclose(feature_learning(rec), direct, rtol=1e-10)
    np.testing.assert_allclose(
        feature_learning(rec, step=4, ref_step=9),
        np.sqrt(np.mean((h[1] - h[2]) ** 2, axis=-1)),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        feature_learning(rec, fractions=[0.0, 0.5, 1.0]), direct[[0, 3, 7]], rtol=1e-10
    )
    np.testing.assert_allclose(
        faithfulness(rec, step=4), np.sqrt(np.mean(h[1] ** 2, axis=-1)), rtol=1e-10
    )
    corr = gradient_correlation(rec, step=0)
    np.testing.assert_allclose(corr, _cos(dh[0]), rtol=1e-10)
    np.testing.assert_allclose(
        lag_correlation(rec, [0, 1], step=0),
        [1.0, np.mean(np.diagonal(_cos(dh[0]), 1))],
        rtol=1e-10,
    )


def _cos(v):
    norms = np.linalg.norm(v, axis=1)
    return (v @ v.T) / np.outer(norms, norms)


def test_fit_exponent_recovers_power_law(rng):
    depths = np.array([8, 16, 32, 64])
    fit = fit_exponent(depths, 3.0 * depths**-0.75)
    assert fit.slope == pytest.approx(-0.75) and fit.stderr < 1e-12
    noisy = 2.0 * depths**0.5 * np.exp(0.05 * rng.standard_normal(4))
    ref = stats.linregress(np.log(depths), np.log(noisy))
    assert fit_exponent(depths, noisy).stderr == pytest.approx(ref.stderr)
    with pytest.raises(ValueError, match="at least 3"):
        fit_exponent([1, 2], [1, 2])


def test_output_change_prefers_eval_outputs():
    f = np.arange(12.0).reshape(3, 2, 2)
    run = Run(f=f, loss=np.zeros(3), route="x")
    assert output_change(run, step=2) == pytest.approx(8.0)
    run = Run(f=f, loss=np.zeros(3), route="x", f_eval=2 * f)
    assert output_change(run, step=1) == pytest.approx(8.0)
    with pytest.raises(ValueError, match="steps"):
        output_change(run, step=3)


# ----------------------------------------------------------- finite networks
def test_coordinate_check_table(rng):
    task = Task.from_dataset("few_point", steps=3, n_points=3, d_in=5)
    p = Parametrization.depth_mup(eta=0.2)
    runs = []
    for width in (16, 32):
        for depth in (4, 8):
            runs += train_finite_batch(
                task,
                p,
                seeds=[0, 1],
                depth=depth,
                width=width,
                record=Record(steps=(0, 1, 3), backward=False),
            )
    ds = coordinate_check(runs)
    assert dict(ds.sizes) == {"width": 2, "depth": 2, "step": 3, "fraction": 5}
    r0, r1 = runs[6], runs[7]  # width 32, depth 8, seeds 0 and 1
    x_rms = [np.sqrt(r.recorded.x_steps[1, 1, 4]) for r in (r0, r1)]
    cell = ds.sel(width=32, depth=8, step=1, fraction=0.5)
    assert float(cell.x_rms) == pytest.approx(np.mean(x_rms))
    assert float(cell.x_rms_se) == pytest.approx(np.std(x_rms, ddof=1) / math.sqrt(2))
    assert float(ds.x_delta.sel(step=0).max()) == 0.0
    f = [np.sqrt(np.mean(r.f_eval[1] ** 2)) for r in (r0, r1)]
    assert float(ds.f_rms.sel(width=32, depth=8, step=1)) == pytest.approx(np.mean(f))
    assert np.isnan(ds.f_rms.sel(step=3)).all()
    with pytest.raises(ValueError, match="same steps"):
        coordinate_check(
            [
                runs[0],
                train_finite_batch(task, p, depth=4, width=16, record=Record(steps=(0, 2)))[0],
            ]
        )


@pytest.mark.parametrize("phi, expected", [("linear", 1.0), ("relu", 0.5), ("abs", 0.0)])
def test_gradient_decorrelation_at_init(phi, expected, rng):
    """Cross-layer δh̃ correlation ≈ (E φ′)²/E φ′² (Sec. 8.3; tp6-notes §4), within 5 SE
    over seeds plus the O(1/L) drift of δx̃ between neighbouring layers."""
    xi = rng.standard_normal(6)
    task = Task.full_batch(xi[None] / np.linalg.norm(xi), np.zeros((1, 1)), 1)
    runs = train_finite_batch(
        task,
        Parametrization.depth_mup(),
        seeds=range(6),
        depth=32,
        width=512,
        phi=phi,
        record=Record(steps=(0,)),
    )
    lag1 = np.array([lag_correlation(r, 1)[0] for r in runs])
    se = lag1.std(ddof=1) / math.sqrt(lag1.size)
    assert abs(lag1.mean() - expected) < 5 * se + 1 / 32, (lag1.mean(), se)


def test_diversity_depth_mup_vs_ode():
    """Def. 7.6 in finite nets (L = 128, n = 128, 50 SGD steps on digits): Depth-µP keeps
    κ̂ near 1/2 (Claim 7.5), the ODE scaling (1, 0) loses diversity (Claim 7.4).  Both
    start at κ̂ ≈ 1/2 at init; the margins are 0.1 (finite L, finite n, two seeds)."""
    task = Task.from_dataset("digits", steps=50, batch_size=32, loss="xent")
    lams = np.linspace(0.1, 0.8, 8)
    kappa = {}
    for name in ("depth_mup", "ode"):
        runs = train_finite_batch(
            task,
            Parametrization.preset(name, eta=1.0),
            seeds=range(2),
            depth=128,
            width=128,
            dtype="float32",
            eval_every=0,
            record=Record(steps=(0, 50), backward=False),
        )
        kappa[name] = [diversity_exponent(r, lam=lams, step=s).kappa for r in runs for s in (0, 50)]
    mup0, mup, ode0, ode = (np.mean(kappa[k][i::2]) for k in kappa for i in (0, 1))
    assert abs(mup0 - 0.5) < 0.05 and abs(ode0 - 0.5) < 0.05
    assert abs(mup - 0.5) < 0.1
    assert ode < mup - 0.15


@pytest.mark.slow
def test_abs_more_diverse_than_relu():
    """Fig. 19: at equal settings abs keeps more diversity than relu: paired over six seeds
    (same initial weights and batches), the mean κ̂ difference exceeds 3 of its standard
    errors (measured: ≈ +0.05, about 5 SE)."""
    task = Task.from_dataset("digits", steps=100, batch_size=32, loss="xent")
    lams = np.linspace(0.1, 0.8, 8)
    fits = {}
    for phi in ("relu", "abs"):
        runs = train_finite_batch(
            task,
            Parametrization.depth_mup(eta=1.0),
            seeds=range(6),
            depth=128,
            width=256,
            phi=phi,
            dtype="float32",
            eval_every=0,
            record=Record(steps=(100,), backward=False),
        )
        fits[phi] = [diversity_exponent(r, lam=lams) for r in runs]
    diff = np.array([a.kappa - r.kappa for a, r in zip(fits["abs"], fits["relu"], strict=True)])
    se = diff.std(ddof=1) / math.sqrt(diff.size)
    assert diff.mean() > 3 * se, (diff, se)
