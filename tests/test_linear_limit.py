"""Route R2 (exact linear limit) against independent routes.

Two references live in this file and are *test references only*:

- ``_dense_program``: Program 1 of the paper written the obvious way — per-example hats,
  every ket a dense coefficient vector, a dense covariance matrix, the Ż sums over *every*
  hat of a matrix (no channel reduction, no implicit own hats, no skipped zero terms);
- ``_finite_sgd``: a plain numpy width-n linear resnet with MS and frozen U, V, trained by SGD
  (``theory/algorithms.md`` §1), used until ``limitsim.train_finite`` is the shared route R4.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import linregress

from limitsim import Parametrization, Record, Task, init_kernels, linear_depth_limit, linear_limit
from limitsim.linear import _kernels as lk
from limitsim.linear.depth import extrapolate_polynomial
from limitsim.linear.limit import _State


# ----------------------------------------------------------------------------- references
def _dense_program(task, param, *, depth, probe=None, steps=(), first_s=0):
    """TEST REFERENCE: Program 1 with per-example hats and a dense covariance.

    ``first_s`` is the first step of the Ż/update sums (the paper prints 1; 0 is correct).
    Returns f (T, B, e), f_eval (T, P, e) or None, and for ``steps`` the kernels
    (x_layers, x_steps, h_steps, dh_layers).
    """
    X, Y = task.X, task.Y
    T, B, d = X.shape
    e, L, R = Y.shape[2], depth, len(steps)
    P = 0 if task.eval_X is None else task.eval_X.shape[0]
    beta = param.branch_multiplier(L)
    rho = param.learning_rate(L) * beta
    N = d + e + 2 * L * T * B + 2 * R * L + T * P * L
    C = np.zeros((N, N))
    C[: d + e, : d + e] = np.eye(d + e)
    xk = np.zeros((T, L + 1, B, N))
    dk = np.zeros((T, L + 1, B, N))
    fwd_hats = {m: [] for m in range(1, L + 1)}
    bwd_hats = {m: [] for m in range(1, L + 1)}
    counter = iter(range(d + e, N))

    def new_hat(ket, hats):
        idx = next(counter)
        for j, other in hats:
            C[idx, j] = C[j, idx] = ket @ C @ other
        C[idx, idx] = ket @ C @ ket
        hats.append((idx, ket.copy()))
        return idx

    def forward(x0, t):
        xs = [x0]
        for m in range(1, L + 1):
            x = xs[-1]
            h = np.zeros(N)
            h[new_hat(x, fwd_hats[m])] = 1.0
            for idx, y in bwd_hats[m]:  # Ż: every backward hat of W_0^m
                h += y * x[idx]
            for s in range(first_s, t):
                for b in range(B):
                    h -= dk[s, m, b] * rho / B * (xk[s, m - 1, b] @ C @ x)
            xs.append(x + beta * h)
        return np.array(xs)

    def backward(seed, t):
        ds = [seed]
        for m in range(L, 0, -1):
            dv = ds[-1]
            g = np.zeros(N)
            g[new_hat(dv, bwd_hats[m])] = 1.0
            for idx, y in fwd_hats[m]:
                g += y * dv[idx]
            for s in range(first_s, t):
                for b in range(B):
                    g -= xk[s, m - 1, b] * rho / B * (dk[s, m, b] @ C @ dv)
            ds.append(dv + beta * g)
        return np.array(ds[::-1])

    f = np.zeros((T, B, e))
    f_eval = np.zeros((T, P, e)) if P else None
    for t in range(T):
        for i in range(P):
            x0 = np.zeros(N)
            x0[:d] = task.eval_X[i]
            f_eval[t, i] = forward(x0, t)[L, d : d + e]
        for b in range(B):
            x0 = np.zeros(N)
            x0[:d] = X[t, b]
            xk[t, :, b] = forward(x0, t)
        f[t] = xk[t, L, :, d : d + e]
        chi = task.chi(f[t], Y[t])
        for b in range(B):
            seed = np.zeros(N)
            seed[d : d + e] = chi[b]
            dk[t, :, b] = backward(seed, t)
    if not steps:
        return f, f_eval, None
    x0 = np.zeros(N)
    x0[:d] = probe
    px = np.array([forward(x0, t) for t in steps])
    seed = np.zeros(N)
    seed[d : d + e] = 1.0
    pd = np.array([backward(seed, t) for t in steps])
    hv = np.diff(px, axis=1) / beta
    kernels = (
        np.einsum("rlN,NM,rkM->rlk", px, C, px),
        np.einsum("rlN,NM,qlM->rql", px, C, px),
        np.einsum("rlN,NM,qlM->rql", hv, C, hv),
        np.einsum("rlN,NM,rkM->rlk", pd[:, 1:], C, pd[:, 1:]),
    )
    return f, f_eval, kernels


def _finite_sgd(task, param, *, depth, width, seed, probe=None, steps=()):
    """TEST REFERENCE: width-n linear resnet with MS, frozen U and V, SGD on the batch mean.

    Returns f (T, B, e) and the probe features ``x^L`` (R, n) at ``steps``.
    """
    rng = np.random.default_rng(seed)
    X, Y = task.X, task.Y
    T, B, d = X.shape
    e, n, L = Y.shape[2], width, depth
    beta, lr = param.branch_multiplier(L), param.learning_rate(L)
    U = rng.standard_normal((n, d))
    W = rng.standard_normal((L, n, n)) / math.sqrt(n)
    V = rng.standard_normal((n, e)) / n

    def ms(v):
        return v - v.mean(axis=0, keepdims=True)

    def forward(x):
        xs = [x]
        for m in range(L):
            xs.append(xs[-1] + beta * ms(W[m] @ xs[-1]))
        return xs

    f = np.zeros((T, B, e))
    feats = []
    for t in range(T + 1):
        if t in steps:
            feats.append(forward(U @ probe[:, None])[-1][:, 0])
        if t == T:
            break
        xs = forward(U @ X[t].T)
        f[t] = (V.T @ xs[-1]).T
        g = V @ task.chi(f[t], Y[t]).T / B
        for m in reversed(range(L)):
            q = beta * ms(g)
            g = g + W[m].T @ q
            W[m] -= lr * q @ xs[m].T
    return f, np.array(feats)


def _random_task(rng, T, B, d, e, loss="mse", eval_P=0, scale=1.0):
    X = rng.standard_normal((T, B, d)) / math.sqrt(d)
    Y = scale * rng.standard_normal((T, B, e))
    if loss == "xent":
        Y = np.abs(Y) / np.abs(Y).sum(axis=-1, keepdims=True)
    kw = {}
    if eval_P:
        kw["eval_X"] = rng.standard_normal((eval_P, d)) / math.sqrt(d)
    return Task.from_batches(X, Y, loss=loss, **kw)


CASES = [
    # (T, B, d, e, L, loss, eval_P, parametrization)
    (3, 2, 2, 1, 3, "mse", 0, Parametrization.depth_mup()),
    (3, 3, 2, 2, 3, "mse", 2, Parametrization(alpha=0.75, gamma=0.25, a=0.7, eta=0.4)),
    (3, 2, 3, 3, 2, "xent", 0, Parametrization.ode(a=1.3, eta=0.8, base_depth=2.0)),
    (3, 1, 1, 1, 4, "mse", 3, Parametrization(alpha=0.5, gamma=0.0, eta=0.3)),
    (2, 3, 4, 2, 3, "mse", 0, Parametrization(alpha=1.0, gamma=0.5, a=0.5, eta=2.0)),
]


# --------------------------------------------------------------------- exactness (dense)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"T{c[0]}B{c[1]}d{c[2]}e{c[3]}L{c[4]}")
def test_matches_dense_program(case):
    """Channels, implicit own hats and skipped zero Ż terms change nothing (to round-off)."""
    T, B, d, e, L, loss, P, param = case
    rng = np.random.default_rng(T * 100 + B * 10 + e)
    task = _random_task(rng, T, B, d, e, loss, P)
    probe = rng.standard_normal(d)
    steps = (0, T - 1, T)
    run = linear_limit(task, param, depth=L, record=Record(steps=steps, probe=probe))
    f_ref, f_eval, kernels = _dense_program(task, param, depth=L, probe=probe, steps=steps)
    tol = 1e-12 * max(1.0, np.abs(f_ref).max())
    np.testing.assert_allclose(run.f, f_ref, rtol=0, atol=tol)
    np.testing.assert_allclose(run.loss, task.value(f_ref, task.Y), rtol=1e-12, atol=1e-14)
    rec = run.recorded
    for name, ref in zip(("x_layers", "x_steps", "h_steps", "dh_layers"), kernels, strict=True):
        np.testing.assert_allclose(getattr(rec, name), ref, rtol=1e-11, atol=1e-12, err_msg=name)
    if P:
        np.testing.assert_allclose(run.f_eval, f_eval, rtol=0, atol=tol)
    else:
        assert run.f_eval is None


def test_eval_on_batch_inputs_equals_training_outputs():
    """Read-out by d basis passes (d < B + P) and by direct passes give the same outputs."""
    rng = np.random.default_rng(7)
    task = _random_task(rng, 3, 4, 2, 2)
    same = Task.from_batches(task.X, task.Y, eval_X=task.X[1])
    run = linear_limit(same, Parametrization.depth_mup(eta=0.7), depth=3)
    np.testing.assert_allclose(run.f_eval[1], run.f[1], rtol=1e-13, atol=1e-15)


# ------------------------------------------------------------ finite width (independent)
FINITE_PARAMS = [
    Parametrization.depth_mup(eta=1.0),
    Parametrization.ode(a=1.5, eta=1.5),
    Parametrization(alpha=0.75, gamma=0.25, a=1.2, eta=0.8, base_depth=2.0),
]
WIDTHS = (64, 128, 256, 512)
SEEDS = 24


def _finite_task():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((3, 2, 2)) / math.sqrt(2)
    Y = np.array([[[1.0], [-0.5]], [[0.8], [-1.0]], [[1.0], [-0.5]]])
    return Task.from_batches(X, Y)


@pytest.fixture(scope="module", params=FINITE_PARAMS, ids=lambda p: p.name)
def finite_runs(request):
    param = request.param
    task = _finite_task()
    L = 4
    fs = np.array(
        [
            [_finite_sgd(task, param, depth=L, width=n, seed=1000 * n + s)[0] for s in range(SEEDS)]
            for n in WIDTHS
        ]
    )
    return param, task, L, fs


def test_finite_width_mean_agrees(finite_runs):
    """The seed mean of f_t at the largest width matches the limit within 5 standard errors."""
    param, task, L, fs = finite_runs
    limit = linear_limit(task, param, depth=L).f
    mean = fs[-1].mean(axis=0)
    se = fs[-1].std(axis=0, ddof=1) / math.sqrt(SEEDS)
    learned = np.abs(limit[1:]) > 0.05
    assert learned.all(), "the task must move f, or the test would be vacuous"
    z = np.abs(mean - limit)[1:] / se[1:]
    assert z.max() < 5.0, f"max |mean − limit|/SE = {z.max():.2f}"


def test_finite_width_error_rate(finite_runs):
    """Per-seed error ‖f_n − f_∞‖ falls like n^{-1/2} (weighted fitted slope, 4 SE)."""
    param, task, L, fs = finite_runs
    limit = linear_limit(task, param, depth=L).f
    sq = ((fs - limit) ** 2)[:, :, 1:].reshape(len(WIDTHS), SEEDS, -1).mean(axis=2)
    mse = sq.mean(axis=1)
    log_rms = 0.5 * np.log(mse)
    sigma = 0.5 * sq.std(axis=1, ddof=1) / math.sqrt(SEEDS) / mse
    x = np.log(WIDTHS)
    w = 1 / sigma**2
    xm = np.sum(w * x) / w.sum()
    slope = np.sum(w * (x - xm) * log_rms) / np.sum(w * (x - xm) ** 2)
    slope_se = 1 / math.sqrt(np.sum(w * (x - xm) ** 2))
    assert abs(slope + 0.5) < 4 * slope_se, f"slope {slope:.3f} ± {slope_se:.3f}"


def test_typo_sum_starts_at_step_zero():
    """Paper §4 prints Σ_{s=1}^{t-1}; read literally, step 0's update never enters: f_1 = 0.

    Finite-width SGD learns at step 1 (f_1 ≠ 0 by many SE) and matches the s = 0 reading,
    which linear_limit implements."""
    param, task, L = Parametrization.depth_mup(), _finite_task(), 4
    printed, _, _ = _dense_program(task, param, depth=L, first_s=1)
    correct, _, _ = _dense_program(task, param, depth=L, first_s=0)
    limit = linear_limit(task, param, depth=L).f
    np.testing.assert_allclose(limit, correct, atol=1e-13)
    assert np.all(printed[1] == 0.0)
    fs = np.array([_finite_sgd(task, param, depth=L, width=256, seed=s)[0] for s in range(16)])
    mean, se = fs.mean(axis=0)[1], fs.std(axis=0, ddof=1)[1] / 4.0
    assert np.all(np.abs(mean - printed[1]) > 10 * se)
    assert np.all(np.abs(mean - limit[1]) < 5 * se)


def test_typo_output_kernel_is_forward_covariance():
    """Thm 4.1 prints ⟨x_s^L|x_t^L⟩ = C_{t,s,1}(1) (the δx̃ covariance χ_t χ_s); finite-width
    features match the forward covariance C_{t,s,0}(1) = Recorded.x_steps[..., L] instead."""
    param, L, n, seeds = Parametrization.depth_mup(), 4, 256, 16
    xi = np.array([0.6, 0.8])
    task = Task.full_batch(xi[None, :], [[1.0]], 3)
    steps = (0, 1, 2, 3)
    run = linear_limit(task, param, depth=L, record=Record(steps=steps, probe=xi))
    kernel = run.recorded.x_steps[:, :, L]
    chi = task.chi(run.f[:, 0], task.Y[:, 0])[:, 0]
    printed = np.outer(chi, chi)[:3, :3]
    feats = np.array(
        [
            _finite_sgd(task, param, depth=L, width=n, seed=s, probe=xi, steps=steps)[1]
            for s in range(seeds)
        ]
    )
    gram = np.einsum("srn,sqn->srq", feats, feats) / n
    mean, se = gram.mean(axis=0), gram.std(axis=0, ddof=1) / math.sqrt(seeds)
    assert np.all(np.abs(mean - kernel) < 5 * se)
    # a reading is rejected when any entry misses by many SE
    assert np.max(np.abs(mean[:3, :3] - printed) / se[:3, :3]) > 10


def test_against_train_finite():
    """Cross-route check with the shared finite trainer (R4) once it provides φ = linear."""
    finite = pytest.importorskip("limitsim.finite.train")
    param, task, L, n, seeds = Parametrization.depth_mup(), _finite_task(), 4, 256, 12
    fs = np.array(
        [
            finite.train_finite(task, param, depth=L, width=n, phi="linear", seed=s).f
            for s in range(seeds)
        ]
    )
    limit = linear_limit(task, param, depth=L).f
    se = fs.std(axis=0, ddof=1) / math.sqrt(seeds)
    assert np.all(np.abs(fs.mean(axis=0) - limit)[1:] < 5 * se[1:])


# ------------------------------------------------------------------- closed forms and R1
def test_initial_kernels_match_route_r1():
    param, L = Parametrization.depth_mup(a=1.3, base_depth=2.0), 6
    rng = np.random.default_rng(3)
    task = _random_task(rng, 2, 2, 3, 2)
    probe = rng.standard_normal(3)
    rec = linear_limit(task, param, depth=L, record=Record(steps=(0,), probe=probe)).recorded
    K, G = init_kernels(probe[None, :], "linear", depth=L, param=param)
    np.testing.assert_allclose(np.diagonal(rec.x_layers[0]), K[:, 0, 0], rtol=1e-13)
    # increments are independent at t = 0: ⟨x^l|x^m⟩ = K^{min(l, m)}
    idx = np.arange(L + 1)
    np.testing.assert_allclose(rec.x_layers[0], K[np.minimum.outer(idx, idx), 0, 0], rtol=1e-13)
    np.testing.assert_allclose(rec.h_steps[0, 0], K[:-1, 0, 0], rtol=1e-13)
    # seed nV·1 over e = 2 outputs: e times R1's single-output G
    np.testing.assert_allclose(np.diagonal(rec.dh_layers[0]), 2 * G[1:, 0, 0], rtol=1e-13)


def test_one_step_closed_form_depth_one():
    """L = 1: f_1[b] = −(λ β²/B) Σ_b' χ_0[b'] (ξ_{0,b'}·ξ_{1,b}) (hand-derived; no Ż at L = 1)."""
    rng = np.random.default_rng(5)
    task = _random_task(rng, 2, 3, 4, 2)
    param = Parametrization(alpha=0.5, gamma=0.5, a=0.9, eta=0.6, base_depth=3.0)
    run = linear_limit(task, param, depth=1)
    beta, lr = param.branch_multiplier(1), param.learning_rate(1)
    chi0 = task.chi(np.zeros((3, 2)), task.Y[0])
    expected = -lr * beta**2 / 3 * (task.X[1] @ task.X[0].T) @ chi0
    np.testing.assert_allclose(run.f[0], 0.0, atol=0)
    np.testing.assert_allclose(run.f[1], expected, rtol=1e-13)


# ------------------------------------------------------------------------- depth limit
def _depth_task():
    rng = np.random.default_rng(0)
    return Task.from_batches(
        rng.standard_normal((4, 2, 2)) / math.sqrt(2), rng.standard_normal((4, 2, 1))
    )


@pytest.mark.parametrize(
    "param", [Parametrization.depth_mup(), Parametrization.ode()], ids=lambda p: p.name
)
def test_depth_convergence_rate(param):
    """f at depth L converges to the Richardson limit at O(1/L): fitted slope −1 ± 0.1.

    The tolerance is the size of the next term, O(1/L²) (checked below: the expansion is in
    integer powers of 1/L, so the local slope over L = 16..128 is −1 + O(1/16))."""
    task = _depth_task()
    limit = linear_depth_limit(task, param, grid=(64, 128, 256, 512))
    depths = np.array([16, 32, 64, 128, 256])
    fs = np.array([linear_limit(task, param, depth=int(L)).f for L in depths])
    err = np.abs(fs - limit.f)[:-1, 1:].max(axis=(1, 2, 3))
    assert limit.f_se.max() < 1e-3 * err.min()
    fit = linregress(np.log(depths[:-1]), np.log(err))
    assert abs(fit.slope + 1) < 0.1, f"slope {fit.slope:.3f}"
    # observed orders: successive differences halve (1/L); after one elimination step they
    # quarter at t = 1 (1/L², not L^-3/2: the half-integer powers of L^-1/2 cancel)
    diffs = np.linalg.norm(np.diff(fs[:, 1:], axis=0).reshape(4, -1), axis=1)
    assert abs(math.log2(diffs[-2] / diffs[-1]) - 1) < 0.1
    eliminated = np.diff(2 * fs[1:, 1] - fs[:-1, 1], axis=0).reshape(3, -1)
    norms = np.linalg.norm(eliminated, axis=1)
    assert abs(math.log2(norms[-2] / norms[-1]) - 2) < 0.2


def test_depth_limit_error_estimate_and_record():
    task = _depth_task()
    param = Parametrization.depth_mup(a=0.8)
    rec = Record(steps=(0, 2))
    coarse = linear_depth_limit(task, param, grid=(16, 32, 64), record=rec)
    fine = linear_depth_limit(task, param, grid=(64, 128, 256, 512), record=rec)
    assert coarse.route == "depth_limit"
    assert np.all(np.abs(coarse.f - fine.f) <= coarse.f_se + fine.f_se + 1e-14)
    for key in ("x_layers", "x_steps", "h_steps", "dh_layers"):
        a, b = getattr(coarse.recorded, key), getattr(fine.recorded, key)
        if key in ("x_layers",):
            b = b[:, ::4][:, :, ::4]
        elif key == "x_steps":
            b = b[:, :, ::4]
        elif key == "h_steps":
            b = b[:, :, 3::4]
        else:
            b = b[:, 3::4][:, :, 3::4]
        err = coarse.recorded.se[key]
        assert np.all(np.abs(a - b) <= 2 * err + 1e-12), key
    # at t = 0 the linear limit is e^{a²} K^0 on the λ grid
    K0 = task.X[0, 0] @ task.X[0, 0]
    lam_grid = np.arange(17) / 16
    np.testing.assert_allclose(
        np.diagonal(fine.recorded.x_layers[0])[::4], np.exp(0.64 * lam_grid) * K0, rtol=1e-6
    )


def test_extrapolate_polynomial_exact_on_polynomials():
    h = 1.0 / np.array([4.0, 8.0, 16.0])
    v = 3.0 + 2.0 * h - 5.0 * h**2
    limit, err = extrapolate_polynomial(h, v)
    assert abs(limit - 3.0) < 1e-12
    assert err > 0


# --------------------------------------------------------------------- feature diversity
def _diversity(param, L, eps_blocks, lam=0.5, T=4):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 2)) / math.sqrt(2)
    task = Task.full_batch(X, [[1.0], [-1.0]], T)
    G = linear_limit(
        task, param, depth=L, record=Record(steps=(T,), backward=False)
    ).recorded.x_layers[0]
    l1 = int(lam * L)
    k = np.asarray(eps_blocks)
    return np.sqrt(G[l1 + k, l1 + k] + G[l1, l1] - 2 * G[l1, l1 + k])


def test_feature_diversity_depth_mup_slope_tends_to_half():
    """Depth-µP after training: log–log slope of d(ε) over ε = k/L, k = 1..8, → 1/2 (κ = 1/2),
    with |slope − 1/2| ∝ 1/L (fitted slope −1 ± 0.1)."""
    depths = np.array([32, 64, 128, 256])
    k = np.array([1, 2, 4, 8])
    slopes = np.array(
        [
            linregress(
                np.log(k / L), np.log(_diversity(Parametrization.depth_mup(), int(L), k))
            ).slope
            for L in depths
        ]
    )
    assert np.all(slopes > 0.5) and np.all(np.diff(slopes) < 0)
    fit = linregress(np.log(depths), np.log(slopes - 0.5))
    assert abs(fit.slope + 1) < 0.1, f"{slopes}, rate {fit.slope:.3f}"


def test_feature_diversity_ode_redundant():
    """(1, 0): d(ε) at ε = 1/32..1/8 is far below Depth-µP's and shrinks with L (Claim 7.4)."""
    depths = (64, 128, 256)
    ode = np.array(
        [_diversity(Parametrization.ode(), L, [L // 32, L // 16, L // 8]) for L in depths]
    )
    mup = np.array(
        [_diversity(Parametrization.depth_mup(), L, [L // 32, L // 16, L // 8]) for L in depths]
    )
    assert np.all(ode < mup / 5)
    assert np.all(np.diff(ode, axis=0) < 0)
    # the ODE curve steepens toward ε¹ as L grows (κ → 0)
    slopes = [linregress(np.log([1 / 32, 1 / 16, 1 / 8]), np.log(d)).slope for d in ode]
    assert np.all(np.diff(slopes) > 0)


# ------------------------------------------------------------------- behaviour and errors
def test_deterministic_and_dataset():
    rng = np.random.default_rng(2)
    task = _random_task(rng, 3, 2, 2, 2, eval_P=2)
    rec = Record(steps=(0, 3))
    a = linear_limit(task, Parametrization.depth_mup(), depth=5, record=rec)
    b = linear_limit(task, Parametrization.depth_mup(), depth=5, record=rec)
    assert np.array_equal(a.f, b.f) and np.array_equal(a.recorded.x_layers, b.recorded.x_layers)
    ds = a.to_dataset()
    assert ds.attrs["route"] == "linear_limit" and ds.attrs["config_depth"] == 5
    assert ds["x_layers"].shape == (2, 6, 6)


def test_divergence_is_reported():
    task = Task.full_batch([[1.0, 0.0]], [[1.0]], 30)
    run = linear_limit(
        task, Parametrization.block_only(eta=4.0), depth=64, record=Record(steps=(0, 30))
    )
    assert run.diverged and run.diverged_step is not None
    assert np.all(np.isnan(run.f[run.diverged_step :]))
    assert np.all(np.isfinite(run.f[: run.diverged_step]))
    assert np.all(np.isfinite(run.recorded.x_layers[0]))
    assert np.all(np.isnan(run.recorded.x_layers[1]))


def test_bad_inputs():
    task = Task.full_batch([[1.0]], [[1.0]], 2)
    p = Parametrization.depth_mup()
    with pytest.raises(ValueError, match="simulate_limit"):
        linear_limit(task, p, depth=2, phi="relu")
    with pytest.raises(ValueError, match="alpha must be >= 1/2"):
        linear_limit(task, Parametrization.standard(), depth=2)
    with pytest.raises(ValueError, match="adam"):
        linear_limit(task, Parametrization.depth_mup(optimizer="adam"), depth=2)
    with pytest.raises(ValueError, match="must not be empty"):
        Task.from_batches(np.zeros((0, 1, 1)), np.zeros((0, 1, 1)))
    with pytest.raises(TypeError, match="Task"):
        linear_limit({"X": [[[1.0]]]}, p, depth=2)
    with pytest.raises(TypeError, match="Parametrization"):
        linear_limit(task, (0.5, 0.5), depth=2)
    with pytest.raises(ValueError, match="depth"):
        linear_limit(task, p, depth=0)
    with pytest.raises(ValueError, match="record steps"):
        linear_limit(task, p, depth=2, record=Record(steps=(3,)))
    with pytest.raises(TypeError, match="Record"):
        linear_limit(task, p, depth=2, record=(0,))
    assert linear_limit(task, p, depth=2, phi="homogeneous:1,1").f.shape == (2, 1, 1)
    with pytest.raises(ValueError, match="alpha \\+ gamma = 1"):
        linear_depth_limit(task, Parametrization(alpha=0.5, gamma=1.0))
    with pytest.raises(ValueError, match="non-integer"):
        linear_depth_limit(task, Parametrization(alpha=0.75, gamma=0.25))
    with pytest.raises(ValueError, match="two distinct"):
        linear_depth_limit(task, p, grid=(8, 8))
    with pytest.raises(ValueError, match="multiple"):
        linear_depth_limit(task, p, grid=(8, 12), record=Record())


# -------------------------------------------------------------------- kernels (py_func)
def _small_state():
    rng = np.random.default_rng(4)
    task = _random_task(rng, 3, 2, 2, 2)
    param = Parametrization.depth_mup(eta=0.5)
    st = _State(
        d=2,
        e=2,
        L=2,
        r=2,
        T=3,
        beta=param.branch_multiplier(2),
        rho=param.learning_rate(2) * param.branch_multiplier(2),
    )
    for t in range(2):
        f = st.readout(t, task.X[t])
        st.update(t, task.chi(f, task.Y[t]).T @ task.X[t] / 2, np.eye(2))
    return st, rng


def test_kernels_match_py_func():
    st, rng = _small_state()
    S, p = 2, 2
    t_of = np.array([1, 2], dtype=np.int64)
    args = (st.store, st.koff, st.off, st.CF, st.CB, st.d, st.e, st.L, st.r)
    N = int(st.off[S])
    xi = rng.standard_normal((p, 2))
    outs = []
    for fn in (lk.forward_passes, lk.forward_passes.py_func):
        o = (
            np.empty((p, N)),
            np.empty((p, st.L + 1, N)),
            np.zeros((p, st.L, S * st.r)),
            np.empty((p, p, st.L + 1)),
        )
        fn(xi, t_of, S, st.beta, st.rho, *args, *o)
        outs.append(o)
    for u, v in zip(*outs, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-14, atol=1e-15)
    outs = []
    for fn in (lk.backward_passes, lk.backward_passes.py_func):
        o = (np.empty((p, st.L + 1, N)), np.zeros((p, st.L, S * st.r)), np.empty((p, p, st.L + 1)))
        fn(xi, t_of, S, st.beta, st.rho, *args, *o)
        outs.append(o)
    for u, v in zip(*outs, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-14, atol=1e-15)
    a = rng.standard_normal(N)
    y1, y2 = np.zeros(N), np.zeros(N)
    lk.apply_covariance(a, 2, 2, st.CF, st.CB, st.off, st.d, st.e, st.L, st.r, y1)
    lk.apply_covariance.py_func(a, 2, 2, st.CF, st.CB, st.off, st.d, st.e, st.L, st.r, y2)
    np.testing.assert_allclose(y1, y2, rtol=1e-14, atol=1e-15)


def test_dot_and_axpy_helpers():
    from limitsim.gaussian._moments import dot1

    rng = np.random.default_rng(9)
    x, y = rng.standard_normal(11), rng.standard_normal(13)
    for fn in (dot1, dot1.py_func):
        assert abs(fn(x[1:10], y[2:11]) - x[1:10] @ y[2:11]) < 1e-14
    # the fixed order of the partial sums, (s0 + s1) + (s2 + s3), s0 taking the tail too:
    # here s0 = 1e16 + 1 = 1e16 (round to even), so the result is 0, not the sequential 2
    u, v = np.array([1e16, 1.0, -1e16, 1.0, 1.0]), np.ones(5)
    s0, s1, s2, s3 = 1e16 + 1.0, 1.0, -1e16, 1.0
    assert dot1(u, v) == dot1.py_func(u, v) == (s0 + s1) + (s2 + s3) == 0.0
    for fn in (lk._axpy1, lk._axpy1.py_func):
        z = y.copy()
        fn(0.5, x, 1, z, 2, 9)
        np.testing.assert_allclose(z[2:11], y[2:11] + 0.5 * x[1:10], rtol=1e-15)


def test_thread_count_invariance():
    from limitsim._numba import get_num_threads, set_num_threads

    rng = np.random.default_rng(10)
    task = _random_task(rng, 3, 3, 2, 2, eval_P=2)
    before = get_num_threads()
    try:
        runs = []
        for threads in (1, min(2, before)):
            set_num_threads(threads)
            runs.append(
                linear_limit(
                    task, Parametrization.depth_mup(), depth=6, record=Record(steps=(0, 3))
                )
            )
    finally:
        set_num_threads(before)
    assert np.array_equal(runs[0].f, runs[1].f)
    assert np.array_equal(runs[0].recorded.dh_layers, runs[1].recorded.dh_layers)


def test_linear_rms_experiment_tiny(tmp_path):
    """Figs. 8/9 experiment: runs on the tiny sizes, plots, and reports its two claims."""
    pytest.importorskip("limitsim.finite.train")
    from limitsim.experiments import linear_rms

    ds = linear_rms.run(linear_rms.SIZES["tiny"])
    assert ds.finite.shape == (2, 2, 3, 6) and np.all(np.isfinite(ds.finite))
    assert np.allclose(ds.limit.sel(quantity="input"), 1.0)  # unit-norm probe, frozen U
    paths = linear_rms.plot(ds, tmp_path)
    assert all(p.exists() for p in paths)
    assert len(linear_rms.claims(ds)) == 2
