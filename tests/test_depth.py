"""Depth limit: the extrapolations of depth_limit and linear_depth_limit on known expansions in
1/L, the simulator ladder against the exact linear limit, O(1/L) convergence, and the paper's
Def. E.1 recursion (printed and corrected) against independent routes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import limitsim.linear.depth
import limitsim.particles.depth
from limitsim import Parametrization, Run, Task, init_kernels, linear_depth_limit, linear_limit
from limitsim.nonlinearities.registry import nonlinearity
from limitsim.particles._def_e1 import solve_def_e1
from limitsim.particles.depth import compare_def_e1, def_e1, depth_limit

SGD = Parametrization.depth_mup(eta=1.0)


def small_task(steps=4, batch=2, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch, 3))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return Task.full_batch(X, np.sign(rng.standard_normal((batch, 1))), steps)


def exact_linear_infinite_depth(task, param):
    """Exact n = ∞ linear limit extrapolated to L = ∞ from depths 64..512: (f, error)."""
    run = linear_depth_limit(task, param, grid=(64, 128, 256, 512))
    return run.f, run.f_se


# ------------------------------------------------- extrapolation on known expansions in 1/L
ONE = Task.full_batch(np.eye(1), np.ones((1, 1)), 2)


def ladder_of(expansion, se=None):
    """A stand-in for ``simulate_limit``: f = loss = ``expansion(L)``, standard error ``se(L)``."""

    def simulate(task, param, *, depth, **options):
        f = np.full((2, 1, 1), expansion(depth))
        f_se = np.full_like(f, 0.0 if se is None else se(depth))
        options = {"depth": depth}
        return Run(f=f, loss=f[:, 0, 0], route="particles", options=options, f_se=f_se,
                   loss_se=f_se[:, 0, 0])  # fmt: skip

    return simulate


def test_depth_limit_is_exact_on_first_order_expansions(monkeypatch):
    """f(L) = 1.5 + 0.8/L: the extrapolation is 1.5 and its extrapolation error 0; Monte Carlo
    errors se_i propagate through the weights (−L₁, L₂)/(L₂ − L₁) = (−1, 2) of doubling depths."""
    se = {4: 0.3, 8: 0.2, 16: 0.05, 32: 0.01}
    monkeypatch.setattr(
        limitsim.particles.depth, "simulate_limit", ladder_of(lambda L: 1.5 + 0.8 / L, se.get)
    )
    run = depth_limit(ONE, SGD, depths=(4, 8, 16, 32))
    np.testing.assert_allclose(run.f, 1.5, rtol=1e-14)
    np.testing.assert_allclose(run.config["f_extrapolation_error"], 0, atol=1e-14)
    np.testing.assert_allclose(run.f_se, np.hypot(se[16], 2 * se[32]), rtol=1e-14)
    np.testing.assert_allclose(run.loss_se, np.hypot(se[16], 2 * se[32]), rtol=1e-14)
    np.testing.assert_allclose(run.config["ladder_f"][:, 0, 0, 0], [1.7, 1.6, 1.55, 1.525])


def test_depth_limit_error_is_three_times_that_of_a_second_order_term(monkeypatch):
    """f(L) = c + b/L + d/L² at doubling depths L₀, L₁ = 2L₀, L₂ = 2L₁: the first-order
    extrapolation is c − d/(L₁L₂) = c − d/(2L₁²), the previous pair's c − 2d/L₁², so the
    estimated error, their difference 3d/(2L₁²), is exactly 3× the actual error."""
    c, b, d = 1.5, 0.8, -2.0
    expansion = ladder_of(lambda L: c + b / L + d / L**2)
    monkeypatch.setattr(limitsim.particles.depth, "simulate_limit", expansion)
    run = depth_limit(ONE, SGD, depths=(4, 8, 16))
    np.testing.assert_allclose(run.f, c - d / (8 * 16), rtol=1e-14)
    np.testing.assert_allclose(run.f_se, 3 * abs(d / (8 * 16)), rtol=1e-12)


def test_linear_depth_limit_is_exact_on_polynomials_in_one_over_depth(monkeypatch):
    """Neville through K points reproduces a polynomial of degree K − 1 in h = 1/L at h = 0;
    the estimate through all but the coarsest point misses the top term b h^{K−1}, by
    b Π h_i over those K − 1 points (the interpolation error of h^{K−1} at 0), the error
    estimate."""
    coefficients = [0.7, -1.1, 2.5, 4.0]  # of 1, h, h², h³
    grid = (4, 8, 16, 32)

    def linear(task, param, *, depth, **options):
        f = np.full((2, 1, 1), sum(c * depth**-k for k, c in enumerate(coefficients)))
        return Run(f=f, loss=f[:, 0, 0], route="linear_limit", options={"depth": depth})

    monkeypatch.setattr(limitsim.linear.depth, "linear_limit", linear)
    run = linear_depth_limit(ONE, SGD, grid=grid)
    np.testing.assert_allclose(run.f, coefficients[0], rtol=1e-12)
    np.testing.assert_allclose(run.f_se, coefficients[-1] / (8 * 16 * 32), rtol=1e-8)


@pytest.mark.parametrize("depths", [(4, 8), (8, 4, 16)])
def test_depth_ladder_is_checked_before_any_simulation(depths, monkeypatch):
    def simulated(*args, **kwargs):
        pytest.fail("simulated before checking the ladder")

    monkeypatch.setattr(limitsim.particles.depth, "simulate_limit", simulated)
    task = Task.full_batch(np.eye(2), np.ones((2, 1)), 2)
    with pytest.raises(ValueError, match=r"depths must be >= 3 increasing depths"):
        depth_limit(task, Parametrization.depth_mup(), depths=depths)


def test_linear_limit_converges_at_rate_one_over_depth():
    task = small_task()
    depths = np.array([32, 64, 128, 256, 512])  # asymptotic regime of this task
    f = np.stack([linear_limit(task, SGD, depth=int(L)).f for L in depths])
    increments = np.abs(np.diff(f, axis=0)).reshape(len(depths) - 1, -1).max(axis=1)
    slope = stats.linregress(np.log(depths[:-1]), np.log(increments)).slope
    assert abs(slope + 1) < 0.15, slope


def test_simulator_ladder_extrapolation_covers_the_truth():
    """η = 0.5: the ladder 4..32 is in the O(1/L) regime (on the exact ladder, the actual
    error of the extrapolation is ≤ 0.5 of its error estimate; at η = 1 it is not)."""
    task = small_task()
    param = Parametrization.depth_mup(eta=0.5)
    truth, truth_err = exact_linear_infinite_depth(task, param)
    run = depth_limit(
        task, param, phi="linear", depths=(4, 8, 16, 32), n_particles=8192, progress=False
    )
    assert run.route == "depth_limit" and run.config["depths"] == (4, 8, 16, 32)
    # the reference's own extrapolation error is included (it is ~10x smaller than the bar);
    # f at t = 0 is exactly 0 for linear φ (the moment-matched particles reproduce it)
    bar = np.hypot(run.f_se, truth_err)
    assert np.all(np.abs(run.f - truth) <= 3 * bar + 1e-12), (run.f - truth) / bar
    np.testing.assert_allclose(
        run.f_se, np.hypot(run.config["f_mc_se"], run.config["f_extrapolation_error"])
    )


@pytest.mark.parametrize(
    "param",
    [SGD, Parametrization.ode(eta=0.5), Parametrization(alpha=0.75, gamma=0.1, base_depth=2)],
    ids=["depth_mup", "ode", "general"],
)
def test_corrected_def_e1_is_exact_for_linear_phi(param):
    task = small_task()
    exact = linear_limit(task, param, depth=6)
    corrected = def_e1(task, param, phi="linear", depth=6, variant="corrected")
    np.testing.assert_allclose(corrected.f, exact.f, atol=1e-12)
    printed = def_e1(task, param, phi="linear", depth=6, variant="printed")
    # tp6-notes §3.4 item 2: as printed, V_{φc|φ'} = 0 for φ = id drops a Prop. 4.4 term
    assert np.max(np.abs(printed.f - exact.f)) > 1e-3


@pytest.mark.parametrize("phi", ["relu", "tanh"])
@pytest.mark.parametrize("variant", ["printed", "corrected"])
def test_def_e1_at_initialization_is_the_init_kernel_recursion(phi, variant):
    task = small_task(steps=1, batch=3)
    _, C0 = solve_def_e1(task, SGD, nonlinearity(phi), 8, variant)
    ref = init_kernels(task.X[0], phi, depth=8, param=SGD)
    np.testing.assert_allclose(C0, ref.K[:-1], rtol=1e-10, atol=1e-12)


def test_compare_def_e1_against_the_exact_linear_ladder():
    """With φ = linear the corrected Def. E.1 is the exact linear limit at every depth, so its
    extrapolation is first-order Richardson of linear_limit on the same depths: for doubling
    depths 2 f(32) − f(16), with error |2 f(32) − 3 f(16) + f(8)|.  The reported distances
    are those of that reference from the extrapolated simulator."""
    task = small_task(steps=3)
    e1_depths = (8, 16, 32)
    result = compare_def_e1(
        task,
        SGD,
        phi="linear",
        depths=(2, 4, 8),
        e1_depths=e1_depths,
        n_particles=2048,
        progress=False,
    )
    f8, f16, f32 = (linear_limit(task, SGD, depth=L).f for L in e1_depths)
    reference, error = 2 * f32 - f16, np.abs(2 * f32 - 3 * f16 + f8)
    corrected, printed, sim = result.e1["corrected"], result.e1["printed"], result.simulator
    np.testing.assert_allclose(corrected.f, reference, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(corrected.f_se, error, rtol=1e-8, atol=1e-12)
    diff = np.abs(reference - sim.f)
    assert result.distance["corrected"] == pytest.approx(diff.max(), rel=1e-9)
    moved = np.abs(sim.f - sim.f[:1]).max()
    assert result.relative["corrected"] == pytest.approx(diff.max() / moved, rel=1e-9)
    assert result.z["corrected"] == pytest.approx(
        np.max(diff / np.hypot(sim.f_se, error)), rel=1e-6
    )
    # as printed, Def. E.1 drops a Prop. 4.4 term for φ = id (tp6-notes §3.4 item 2)
    assert np.max(np.abs(printed.f - reference)) > 1e-3
    assert result.distance["printed"] == pytest.approx(np.abs(printed.f - sim.f).max(), rel=1e-12)


def test_def_e1_rejects_what_it_does_not_cover():
    task = small_task()
    with pytest.raises(ValueError, match="SGD"):
        def_e1(task, Parametrization.depth_mup(optimizer="adam"), depth=4)
    with pytest.raises(ValueError, match="variant"):
        def_e1(task, SGD, depth=4, variant="guess")
