"""Route R3 (Tensor-Program Monte Carlo) against R1 (init kernels), R2 (exact linear limit,
two independent implementations) and R4 (finite networks); Monte Carlo error calibration;
numba policy (py_func parity, thread-count invariance); bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from limitsim import Parametrization, Record, Task, init_kernels, linear_limit
from limitsim._numba import get_num_threads, set_num_threads
from limitsim.architecture import Architecture
from limitsim.nonlinearities.registry import nonlinearity
from limitsim.particles import _adam_kernels as pa
from limitsim.particles import _kernels as pk
from limitsim.particles._def_e1 import solve_def_e1
from limitsim.particles.simulate import _particle_init_kernels, simulate_limit

SGD = Parametrization.depth_mup(eta=1.0)


def small_task(steps=4, batch=2, d=3, e=1, seed=3, full_batch=True, loss="mse"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = np.sign(rng.standard_normal((batch, e)))
    if full_batch:
        return Task.full_batch(X, Y, steps, loss=loss)
    Xs = rng.standard_normal((steps, batch, d)) / np.sqrt(d)
    return Task.from_batches(Xs, np.repeat(Y[None], steps, axis=0), loss=loss)


def assert_within(estimate, se, truth, n_se=5.0):
    """|estimate − truth| ≤ n_se·SE entrywise (plus round-off for exactly known entries)."""
    bad = np.abs(estimate - truth) > n_se * se + 1e-10
    assert not bad.any(), f"max z = {np.max(np.abs(estimate - truth) / (se + 1e-300)):.2f}"


# ----------------------------------------------------------------- t = 0 against R1
@pytest.mark.parametrize("phi", ["relu", "abs", "tanh"])
@pytest.mark.parametrize(
    "options",
    [{}, {"block_depth": 2}, {"block": "pre"}, {"pre_ln": True}],
    ids=["post", "bd2", "pre", "preln"],
)
def test_init_kernels_match_route_r1(phi, options):
    X = np.array([[1.0, 0.2], [0.3, -1.0], [1.0, 0.2]])  # includes a repeated input
    param = Parametrization.depth_mup(a=1.5)
    K, G = _particle_init_kernels(
        X, phi, depth=6, param=param, n_particles=8192, n_replicas=16, seed=1, **options
    )
    assert np.all(np.isfinite(K)) and np.all(np.isfinite(G))
    ref = init_kernels(X, phi, depth=6, param=param, **options)
    se = lambda a: a.std(axis=0, ddof=1) / np.sqrt(a.shape[0])  # noqa: E731
    assert_within(K.mean(axis=0), se(K), ref.K)
    assert_within(G.mean(axis=0), se(G), ref.G)


def test_recorded_kernels_at_init_match_route_r1():
    task = small_task(steps=2)
    run = simulate_limit(
        task,
        SGD,
        depth=5,
        phi="abs",
        n_particles=4096,
        record=Record(steps=(0,)),
        progress=False,
    )
    probe = task.X[0, :1]
    ref = init_kernels(probe, "abs", depth=5, param=SGD)
    rec = run.recorded
    assert_within(np.diag(rec.x_layers[0]), np.diag(rec.se["x_layers"][0]), ref.K[:, 0, 0])
    # ⟨δh̃^l|δh̃^l⟩ = V_φ'(K^{l-1}) G^l at initialization (gradient independence)
    vprime = np.array([nonlinearity("abs").vprime(k)[0, 0] for k in ref.K[:-1]])
    assert_within(
        np.diag(rec.dh_layers[0]), np.diag(rec.se["dh_layers"][0]), vprime * ref.G[1:, 0, 0]
    )


def test_recorded_kernels_match_linear_limit_during_training():
    task = small_task(steps=4)
    record = Record(steps=(0, 2, 4))
    run = simulate_limit(
        task, SGD, depth=3, phi="linear", n_particles=8192, record=record, progress=False
    )
    exact = linear_limit(task, SGD, depth=3, record=record)
    for key in ("x_layers", "x_steps", "h_steps", "dh_layers"):
        assert_within(
            getattr(run.recorded, key), run.recorded.se[key], getattr(exact.recorded, key)
        )


# ---------------------------------------------------------- linear φ against R2
@pytest.mark.parametrize(
    "param",
    [Parametrization.depth_mup(eta=0.7, a=1.3), Parametrization.ode(eta=0.5)],
    ids=["depth_mup", "ode"],
)
@pytest.mark.parametrize("full_batch", [True, False], ids=["full_batch", "minibatches"])
def test_linear_matches_exact_linear_limit(param, full_batch):
    task = small_task(steps=5, batch=2, e=2, full_batch=full_batch)
    run = simulate_limit(task, param, depth=4, phi="linear", n_particles=16384, progress=False)
    exact = linear_limit(task, param, depth=4)
    own, _ = solve_def_e1(task, param, nonlinearity("linear"), 4, "corrected")
    np.testing.assert_allclose(own, exact.f, atol=1e-12)  # two independent R2 codes agree
    assert_within(run.f, run.f_se, exact.f)
    assert_within(run.loss, run.loss_se, exact.loss)
    assert not run.diverged and run.route == "particles"


def test_linear_cross_entropy_and_eval():
    task = small_task(steps=4, batch=2, e=3)
    soft = np.abs(task.Y) + np.arange(1, 4)  # probability rows (soft labels)
    task = Task(X=task.X, Y=soft / soft.sum(-1, keepdims=True), loss="xent", eval_X=task.X[0])
    run = simulate_limit(task, SGD, depth=3, phi="linear", n_particles=8192, progress=False)
    exact = linear_limit(task, SGD, depth=3)
    assert_within(run.f, run.f_se, exact.f)
    # the evaluation inputs are the training inputs: same outputs, independent hats
    assert_within(run.f_eval, run.f_eval_se, exact.f)


def test_repeated_inputs_give_no_nan():
    X = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    task = Task.full_batch(X, [[1.0], [1.0], [-1.0]], 4)
    for phi in ("relu", "linear"):
        run = simulate_limit(task, SGD, depth=3, phi=phi, n_particles=2048, progress=False)
        assert np.all(np.isfinite(run.f)) and np.all(np.isfinite(run.f_se))
        np.testing.assert_allclose(run.f[:, 0], run.f[:, 1], atol=1e-12)
    assert_within(run.f, run.f_se, linear_limit(task, SGD, depth=3).f)


# ------------------------------------------------------ Monte Carlo error and its bars
def test_monte_carlo_error_falls_like_inverse_sqrt_n():
    task = small_task(steps=4)
    exact = linear_limit(task, SGD, depth=3).f
    sizes = np.array([1024, 2048, 4096, 8192])
    rms = []
    for n in sizes:
        errs = [
            simulate_limit(
                task, SGD, depth=3, phi="linear", n_particles=int(n), seed=s, progress=False
            ).f
            - exact
            for s in range(12)
        ]
        rms.append(np.sqrt(np.mean(np.square(errs))))
    slope = stats.linregress(np.log(sizes), np.log(rms)).slope
    assert abs(slope + 0.5) < 0.15, slope


def test_standard_errors_are_calibrated():
    """z = (f − exact)/SE over independent runs follows Student's t with R − 1 dof.

    The replica error bars are statistical; each replica also has a bias of order K/N_r
    (K hats per matrix, N_r particles per replica).  Here K/N_r = 8/2048 and the bias is
    below the resolution of 40 runs (see the module docstring of limitsim.particles.simulate).
    """
    task = small_task(steps=4)
    exact = linear_limit(task, SGD, depth=3)
    n_rep = 8
    z_f, z_loss = [], []
    for s in range(40):
        run = simulate_limit(
            task,
            SGD,
            depth=3,
            phi="linear",
            n_particles=16384,
            seed=s,
            n_replicas=n_rep,
            progress=False,
        )
        z_f.append(((run.f - exact.f)[1:] / run.f_se[1:]).ravel())
        z_loss.append((run.loss - exact.loss)[1:] / run.loss_se[1:])
    t_sd = np.sqrt((n_rep - 1) / (n_rep - 3))
    for z in (np.concatenate(z_f), np.concatenate(z_loss)):
        # tolerance: 3 standard errors of a sample s.d. from 40 (correlated) runs
        assert abs(np.std(z) / t_sd - 1) < 3 / np.sqrt(2 * 40), np.std(z)
        assert abs(np.mean(z)) < 3 * t_sd / np.sqrt(40)


# ---------------------------------------------------------------------- Adam
def test_adam_sampled_partners_agree_with_exact():
    task = small_task(steps=3)
    param = Parametrization.depth_mup(eta=0.3, optimizer="adam")
    exact = simulate_limit(task, param, depth=3, phi="relu", n_particles=2048, progress=False)
    sampled = simulate_limit(
        task, param, depth=3, phi="relu", n_particles=2048, seed=1, n_partners=64, progress=False
    )
    se = np.hypot(exact.f_se, sampled.f_se)
    assert_within(sampled.f, se, exact.f)
    assert np.abs(exact.f[-1] - exact.f[0]).max() > 4 * exact.f_se.max()  # it learns


# -------------------------------------------------------------------- numba policy
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_same_result_for_any_thread_count(optimizer):
    task = small_task(steps=3)
    param = Parametrization.depth_mup(eta=0.3, optimizer=optimizer)
    kwargs = dict(
        depth=3,
        phi="relu",
        n_particles=512,
        n_replicas=2,
        progress=False,
        block_depth=2,
        record=Record(steps=(0, 3)),
    )
    threads = get_num_threads()
    try:
        set_num_threads(1)
        one = simulate_limit(task, param, **kwargs)
        set_num_threads(min(2, threads))
        two = simulate_limit(task, param, **kwargs)
    finally:
        set_num_threads(threads)
    np.testing.assert_array_equal(one.f, two.f)
    np.testing.assert_array_equal(one.recorded.x_steps, two.recorded.x_steps)


def _kernel_cases(rng):
    R, K, N, B = 2, 5, 16, 2
    U = rng.standard_normal((R, B, N))
    fam = [np.zeros((R, K, N)) for _ in range(3)]
    rank = np.zeros(R, dtype=np.int64)
    base = np.ones((R, 1, N))  # the constant vector: innovations exactly centred
    pk.append_vectors(
        *fam,
        0,
        rank,
        rng.standard_normal((R, 2, N)),
        rng.standard_normal((R, 2, N)),
        base,
        1e-10,
        np.empty((R, 2, N)),
    )
    perm = np.stack([rng.permutation(N) for _ in range(R)])
    pos = np.argsort(perm, axis=1)
    D = rng.standard_normal((R, N, 3))
    h = rng.standard_normal((R, B, N))
    phi = nonlinearity("tanh")
    sigma = np.ones((R, B))
    Uin = rng.standard_normal((R, 3, N))
    return {
        "append_vectors": (
            lambda: [
                *(a.copy() for a in fam),
                2,
                rank.copy(),
                U,
                rng.standard_normal((R, B, N)),
                base,
                1e-10,
                np.empty((R, B, N)),
            ]
        ),
        "stein_correction": lambda: [fam[2], fam[1], rank, U, 0.5, np.zeros((R, B, N))],
        "memory_product": lambda: [fam[0], fam[1], 2, U, -0.3, np.zeros((R, B, N))],
        "adam_directions": lambda: [
            fam[0],
            fam[1],
            1,
            2,
            perm,
            pos,
            3,
            0.7,
            0.9,
            0.99,
            1e-8,
            np.empty((R, N, 3)),
        ],
        "adam_forward": lambda: [D, perm, pos, U, -0.2, np.zeros((R, B, N))],
        "adam_backward": lambda: [D, perm, pos, U, -0.2, np.zeros((R, B, N))],
        "embed_inputs": lambda: [h[0, :, :3].copy(), Uin, np.empty((R, B, N))],
        "readout": lambda: [h, U[:, :1], np.empty((R, B, 1))],
        "residual_post": lambda: [phi.phi, h, U, 0.4, np.empty((R, B, N)), np.empty((R, B, N))],
        "grad_post": lambda: [phi.dphi, h, U, np.empty((R, B, N))],
        "apply_phi": lambda: [phi.phi, h, np.empty((R, B, N))],
        "mul_dphi": lambda: [phi.dphi, h, U, np.empty((R, B, N))],
        "layer_norm": lambda: [h, np.empty((R, B, N)), np.empty((R, B))],
        "layer_norm_backward": lambda: [h, sigma, U, np.empty((R, B, N))],
    }


@pytest.mark.parametrize("name", sorted(_kernel_cases(np.random.default_rng(0))))
def test_kernel_matches_py_func(name):
    make = _kernel_cases(np.random.default_rng(7))[name]
    kernel = getattr(pa if name.startswith("adam") else pk, name)
    jit_args = make()
    py_args = [a.copy() if isinstance(a, np.ndarray) else a for a in jit_args]
    kernel(*jit_args)
    kernel.py_func(*py_args)
    for a, b in zip(jit_args, py_args, strict=True):
        if isinstance(a, np.ndarray):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------- behaviour
def test_divergence_is_flagged():
    base = small_task(steps=6)
    task = Task(X=base.X, Y=base.Y, eval_X=base.X[0])
    param = Parametrization(alpha=0.5, gamma=0.0, eta=50.0)
    run = simulate_limit(
        task,
        param,
        depth=8,
        phi="relu",
        n_particles=1024,
        record=Record(steps=(0, 6)),
        progress=False,
    )
    assert run.diverged and run.diverged_step is not None
    assert np.all(np.isnan(run.f[run.diverged_step :]))
    assert np.all(np.isfinite(run.f[: run.diverged_step]))
    assert np.all(np.isfinite(run.f_eval[: run.diverged_step]))
    assert np.all(np.isfinite(run.recorded.x_layers[0]))
    assert np.all(np.isnan(run.recorded.x_layers[1]))


def test_progress_bar_and_config(capsys):
    run = simulate_limit(small_task(steps=2), SGD, depth=2, n_particles=512, progress=True)
    assert run.config["depth"] == 2 and run.config["phi"] == "relu"
    assert run.config["n_replicas"] == 8 and run.config["alpha"] == 0.5


def test_bad_input():
    task = small_task(steps=4)
    with pytest.raises(ValueError, match=r"n_particles ≥ 256"):
        simulate_limit(task, SGD, depth=2, n_particles=128, progress=False)
    with pytest.raises(ValueError, match="alpha"):
        simulate_limit(task, Parametrization.standard(), depth=2, progress=False)
    with pytest.raises(ValueError, match="unsupported combination: block='pre'"):
        simulate_limit(task, SGD, depth=2, block="pre", block_depth=2, progress=False)
    with pytest.raises(ValueError, match="unsupported combination: n_partners"):
        simulate_limit(task, SGD, depth=2, n_partners=8, progress=False)
    with pytest.raises(ValueError, match="block_depth"):
        simulate_limit(task, SGD, depth=2, block_depth=3, progress=False)
    with pytest.raises(ValueError, match="n_replicas"):
        simulate_limit(task, SGD, depth=2, n_replicas=0, progress=False)
    with pytest.raises(ValueError, match="record steps"):
        simulate_limit(task, SGD, depth=2, record=Record(steps=(9,)), progress=False)


# ------------------------------------------------------- finite networks (route R4)
CASES = [
    (phi, opt, {"block_depth": bd})
    for phi in ("relu", "abs", "tanh")
    for opt in ("sgd", "adam")
    for bd in (1, 2)
] + [("relu", "sgd", {"block": "pre"}), ("abs", "sgd", {"pre_ln": True})]


@pytest.mark.slow
@pytest.mark.parametrize(("phi", "optimizer", "options"), CASES, ids=str)
def test_finite_networks_approach_the_simulator(phi, optimizer, options):
    """RMS of (finite f − simulator f) over seeds falls like n^{-1/2}; no bias at large n."""
    from limitsim.finite.train import train_finite_batch

    task = small_task(steps=3)
    param = Parametrization.depth_mup(eta=1.0 if optimizer == "sgd" else 0.3, optimizer=optimizer)
    sim = simulate_limit(
        task, param, depth=4, phi=phi, n_particles=16384, progress=False, **options
    )
    widths = np.array([128, 256, 512, 1024, 2048])
    rms = []
    for n in widths:
        runs = train_finite_batch(
            task, param, depth=4, width=int(n), phi=phi, seeds=list(range(16)), **options
        )
        fs = np.array([r.f for r in runs])
        rms.append(np.sqrt(np.mean((fs - sim.f) ** 2)))
    slope = stats.linregress(np.log(widths), np.log(rms)).slope
    print(f"{phi} {optimizer} {options}: fitted slope {slope:.3f}, rms {np.round(rms, 4)}")
    assert abs(slope + 0.5) < 0.15, slope
    mean, se = fs.mean(axis=0), fs.std(axis=0, ddof=1) / np.sqrt(len(fs))
    assert_within(mean, np.hypot(se, sim.f_se), sim.f)


def test_state_larger_than_memory_is_refused_before_allocating():
    task = small_task(steps=4)
    with pytest.raises(ValueError, match=r"n_particles=.*GiB of particle state.*reduce"):
        simulate_limit(task, SGD, depth=64, phi="linear", n_particles=2**34, progress=False)


def test_memory_estimate_matches_the_allocated_families():
    from limitsim.particles._system import Family
    from limitsim.particles.simulate import _lower, memory_bytes

    spec = _lower(SGD, 3, Architecture("relu"), 2, None)
    families = [Family(8, 9, 64) for _ in range(2 * spec.n_matrices)]
    allocated = sum(f.Y.nbytes + f.Q.nbytes + f.E.nbytes for f in families)
    assert memory_bytes(spec, 9, 8 * 64, 64) == allocated


def test_one_replica_has_no_error_bars():
    """n_replicas = 1: one system of all particles; no standard errors (None or empty)."""
    task = small_task(steps=3)
    run = simulate_limit(
        task, SGD, depth=2, n_particles=512, n_replicas=1, record=Record(steps=(1,)), progress=False
    )
    assert run.f_se is None and run.loss_se is None and run.recorded is not None
    assert run.recorded.se == {} and np.isfinite(run.f).all()
