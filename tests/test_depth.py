"""Depth limit: Richardson extrapolation of the simulator ladder, O(1/L) convergence, and the
paper's Def. E.1 recursion (printed and corrected) against independent routes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from limitsim import Parametrization, Task, init_kernels, linear_limit
from limitsim._def_e1 import solve_def_e1
from limitsim.depth import compare_def_e1, def_e1, depth_limit, extrapolate_first_order
from limitsim.nonlinearities import nonlinearity

SGD = Parametrization.depth_mup(eta=1.0)


def small_task(steps=4, batch=2, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch, 3))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return Task.full_batch(X, np.sign(rng.standard_normal((batch, 1))), steps)


def exact_linear_infinite_depth(task, param):
    """Exact n = ∞ linear limit at depths 64..512, extrapolated (error printed by the test)."""
    depths = (64, 128, 256, 512)
    ladder = np.stack([linear_limit(task, param, depth=L).f for L in depths])
    return extrapolate_first_order(ladder, None, depths)


def test_richardson_on_a_known_expansion():
    depths = (4, 8, 16, 32)
    L = np.array(depths, dtype=float)[:, None]
    values = 1.5 + 0.8 / L - 2.0 / L**2 + 3.0 / L**3
    estimate, mc, err = extrapolate_first_order(values, None, depths)
    assert np.all(mc == 0)
    assert abs(estimate[0] - 1.5) <= err[0]  # the error estimate covers the truth
    pure = 1.5 + 0.8 / L
    np.testing.assert_allclose(extrapolate_first_order(pure, None, depths)[0], 1.5, rtol=1e-12)
    with pytest.raises(ValueError, match="depths"):
        extrapolate_first_order(values[:2], None, depths[:2])


@pytest.mark.parametrize("depths", [(4, 8), (8, 4, 16)])
def test_depth_ladder_is_checked_before_any_simulation(depths, monkeypatch):
    import limitsim.depth

    def simulated(*args, **kwargs):
        pytest.fail("simulated before checking the ladder")

    monkeypatch.setattr(limitsim.depth, "simulate_limit", simulated)
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
    truth, _, truth_err = exact_linear_infinite_depth(task, param)
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


def test_compare_def_e1_reports_distances():
    task = small_task(steps=3)
    result = compare_def_e1(
        task,
        SGD,
        phi="relu",
        depths=(2, 4, 8),
        e1_depths=(8, 16, 32),
        n_particles=2048,
        progress=False,
    )
    for variant in ("printed", "corrected"):
        assert np.isfinite(result.distance[variant]) and result.distance[variant] >= 0
        assert np.isfinite(result.z[variant]) and result.relative[variant] >= 0
        assert result.e1[variant].f.shape == result.simulator.f.shape


def test_def_e1_rejects_what_it_does_not_cover():
    task = small_task()
    with pytest.raises(ValueError, match="SGD"):
        def_e1(task, Parametrization.depth_mup(optimizer="adam"), depth=4)
    with pytest.raises(ValueError, match="variant"):
        def_e1(task, SGD, depth=4, variant="guess")
