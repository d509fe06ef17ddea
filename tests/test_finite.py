"""Route R4 (finite networks): gradients, optimizers, batching, divergence, init kernels,
the classification's exponents and feature diversity measured in real networks."""

from __future__ import annotations

import ctypes
import dataclasses
import itertools
import math

import numpy as np
import pytest
from scipy import stats

from limitsim import Parametrization, Record, Task
from limitsim.finite import _blas
from limitsim.finite import _kernels as fk
from limitsim.finite._blas import gemm_update
from limitsim.finite._loop import Trainer, memory_bytes
from limitsim.finite.train import _network, check_memory, train_finite, train_finite_batch
from limitsim.measures import feature_learning, fit_exponent, output_change
from limitsim.nonlinearities.registry import nonlinearity

# ------------------------------------------------------------- independent reference
# A plain per-example implementation of theory/algorithms.md §1 (column vectors, no batching,
# no buffers), used with central finite differences as the reference for every gradient.


def ref_output(weights, xi, *, phi, block, block_depth, pre_ln, m):
    """f(ξ) of one network; weights = (Ut (d,n), Wt (L,bd,n,n) with Wt[l,j] = W^T, V (n,e))."""
    Ut, Wt, V = weights
    act = nonlinearity(phi)
    x = Ut.T @ xi
    for layer in range(Wt.shape[0]):
        z = x
        if pre_ln:
            c = x - x.mean()
            z = c / math.sqrt(np.mean(c**2))
        if block == "post":
            a = Wt[layer, 0].T @ z
            for j in range(1, block_depth):
                a = Wt[layer, j].T @ act(a)
            u = act(a)
            x = x + m * (u - u.mean())
        else:
            a = z
            for j in range(block_depth):
                a = Wt[layer, j].T @ act(a)
            x = x + m * a
    return V.T @ x


def ref_loss(weights, task, t, **arch):
    f = np.stack([ref_output(weights, xi, **arch) for xi in task.X[t]])
    return float(task.value(f, task.Y[t]))


def fd_gradient(weights, task, t, h=1e-6, **arch):
    grads = []
    for array in weights:
        g = np.zeros_like(array)
        for idx in np.ndindex(array.shape):
            old = array[idx]
            array[idx] = old + h
            plus = ref_loss(weights, task, t, **arch)
            array[idx] = old - h
            minus = ref_loss(weights, task, t, **arch)
            array[idx] = old
            g[idx] = (plus - minus) / (2 * h)
        grads.append(g)
    return grads


def ref_train(weights, task, param, steps, *, width, depth, **arch):
    """SGD/Adam of algorithms.md §1 with finite-difference gradients; returns weights."""
    weights = [w.copy() for w in weights]
    rates = [
        (param.io_learning_rate("input", width), param.io_gradient_scale("input", width)),
        (param.learning_rate(depth, width), param.gradient_scale(depth, width)),
        (param.io_learning_rate("output", width), param.io_gradient_scale("output", width)),
    ]
    moments = [(np.zeros_like(w), np.zeros_like(w)) for w in weights]
    m = param.branch_multiplier(depth)
    for t in range(steps):
        grads = fd_gradient(
            weights,
            task,
            t,
            phi=arch["phi"],
            block=arch["block"],
            block_depth=arch["block_depth"],
            pre_ln=arch["pre_ln"],
            m=m,
        )
        for w, g, (rate, scale), (m1, m2) in zip(weights, grads, rates, moments, strict=True):
            if param.optimizer == "sgd":
                w -= rate * g
            else:
                g = scale * g
                m1[...] = param.beta1 * m1 + (1 - param.beta1) * g
                m2[...] = param.beta2 * m2 + (1 - param.beta2) * g**2
                mhat = m1 / (1 - param.beta1 ** (t + 1))
                vhat = m2 / (1 - param.beta2 ** (t + 1))
                w -= rate * mhat / np.sqrt(vhat + param.eps)
    return weights


def small_task(loss, rng, steps=2, batch=3, d=3, e=2):
    X = rng.standard_normal((steps, batch, d)) / math.sqrt(d)
    Y = rng.standard_normal((steps, batch, e))
    if loss == "xent":
        Y = np.eye(e)[rng.integers(0, e, (steps, batch))]
    return Task.from_batches(X, Y, loss=loss)


ARCHES = list(itertools.product(("post", "pre"), (1, 2), (False, True)))


@pytest.mark.parametrize("block, block_depth, pre_ln", ARCHES)
@pytest.mark.parametrize("phi", ["relu", "abs", "tanh"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_updates_match_finite_difference_reference(block, block_depth, pre_ln, phi, optimizer, rng):
    """Two steps of the batched trainer = two steps of SGD/Adam on FD gradients of the
    per-example reference, for U, every W^{l,j} and V (all trainable)."""
    width, depth = 5, 2
    loss = "xent" if pre_ln else "mse"
    task = small_task(loss, rng)
    param = Parametrization(
        alpha=0.7, gamma=0.2, a=1.3, eta=0.3, optimizer=optimizer, eps=1e-2, base_depth=1.0
    )
    arch = dict(phi=phi, block=block, block_depth=block_depth, pre_ln=pre_ln)
    net = _network(
        task,
        [param],
        [3],
        depth=depth,
        width=width,
        dtype="float64",
        train_input=True,
        train_output=True,
        **arch,
    )
    start = [net.Ut[0].copy(), net.Wt[:, :, 0].copy(), net.V[0].copy()]
    for t in range(task.steps):
        buf = net.buffers(task.batch_size, store=True)
        f = net.forward(task.X[t], buf)
        net.train_step(task.X[t], np.ascontiguousarray(task.chi(f, task.Y[t])), buf, t)
    expected = ref_train(start, task, param, task.steps, width=width, depth=depth, **arch)
    got = [net.Ut[0], net.Wt[:, :, 0], net.V[0]]
    for name, e, g, s in zip("UWV", expected, got, start, strict=True):
        # FD error ≈ 1e-10 per gradient entry; the step moves entries by ≳ 1e-3.
        assert np.abs(g - s).max() > 1e-4, name
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-7, err_msg=name)


def test_user_nonlinearity_gradients(rng):
    """A non-built-in φ goes through the dispatcher kernel and still matches FD."""
    task = small_task("mse", rng)
    param = Parametrization.depth_mup(eta=0.5)
    arch = dict(phi="x*erf(x)", block="post", block_depth=2, pre_ln=True)
    net = _network(
        task,
        [param],
        [1],
        depth=2,
        width=4,
        dtype="float64",
        train_input=False,
        train_output=False,
        **arch,
    )
    start = [net.Ut[0].copy(), net.Wt[:, :, 0].copy(), net.V[0].copy()]
    buf = net.buffers(task.batch_size, store=True)
    f = net.forward(task.X[0], buf)
    net.train_step(task.X[0], np.ascontiguousarray(task.chi(f, task.Y[0])), buf, 0)
    grads = fd_gradient(
        start,
        task,
        0,
        phi="x*erf(x)",
        block="post",
        block_depth=2,
        pre_ln=True,
        m=param.branch_multiplier(2),
    )
    expected = start[1] - param.learning_rate(2) * grads[1]
    np.testing.assert_allclose(net.Wt[:, :, 0], expected, rtol=0, atol=1e-8)
    np.testing.assert_array_equal(net.Ut[0], start[0])  # frozen by default
    np.testing.assert_array_equal(net.V[0], start[2])


def test_outputs_match_reference_forward(rng):
    task = small_task("mse", rng, steps=3)
    param = Parametrization.depth_mup(eta=0.4)
    run = train_finite(task, param, depth=3, width=6, phi="gelu", block_depth=2, seed=4)
    net = _network(
        task,
        [param],
        [4],
        depth=3,
        width=6,
        phi="gelu",
        block_depth=2,
        block="post",
        pre_ln=False,
        dtype="float64",
        train_input=False,
        train_output=False,
    )
    weights = [net.Ut[0], net.Wt[:, :, 0], net.V[0]]
    f0 = np.stack(
        [
            ref_output(
                weights,
                xi,
                phi="gelu",
                block="post",
                block_depth=2,
                pre_ln=False,
                m=param.branch_multiplier(3),
            )
            for xi in task.X[0]
        ]
    )
    np.testing.assert_allclose(run.f[0], f0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(run.loss, task.value(run.f, task.Y), rtol=1e-12)
    assert run.route == "finite" and not run.diverged and run.config["phi"] == "gelu"


# ----------------------------------------------------------------------- kernels
def _kernel_cases(rng):
    x = rng.standard_normal((2, 3, 5))
    h = rng.standard_normal((2, 3, 5))
    m = np.array([0.5, 2.0])
    w = rng.standard_normal((2, 4, 3))
    g = rng.standard_normal((2, 4, 3))
    rms = np.abs(rng.standard_normal((2, 3))) + 0.5
    vec = np.array([0.1, 0.2])
    user = nonlinearity("leaky_relu:0.3")
    return [
        ("activation_forward", (4, h, np.zeros_like(h), np.zeros_like(h)), (2, 3)),
        (
            "activation_forward_user",
            (user.phi, user.dphi, h, np.zeros_like(h), np.zeros_like(h)),
            (3, 4),
        ),
        ("ms_residual", (h, x, m, np.zeros_like(x)), (3,)),
        ("residual_add", (x, h, m, np.zeros_like(x)), (3,)),
        ("post_block_backward", (x, h, m, np.zeros_like(x)), (3,)),
        ("layer_norm_forward", (x, np.zeros_like(x), np.zeros((2, 3))), (1, 2)),
        ("layer_norm_backward", (h, x, rms, x.copy()), (3,)),
        ("sgd_step", (w.copy(), g, vec), (0,)),
        (
            "adam_step",
            (w.copy(), g, g.copy(), g**2, vec + 1, vec, vec + 0.5, vec + 0.6, vec * 1e-3, 2),
            (0, 2, 3),
        ),
    ]


@pytest.mark.parametrize("index", range(9))
def test_kernels_match_py_func(index, rng):
    name, args, outs = _kernel_cases(rng)[index]
    kernel = getattr(fk, name)
    compiled = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    python = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    kernel(*compiled)
    kernel.py_func(*python)
    for i in outs:
        np.testing.assert_allclose(compiled[i], python[i], rtol=1e-13, atol=1e-14)


def test_builtin_codes_match_nonlinearities(rng):
    g = rng.standard_normal((1, 2, 7)) * 2
    for name, code in fk.BUILTIN_CODES.items():
        u, d = np.empty_like(g), np.empty_like(g)
        fk.activation_forward(code, g, u, d)
        act = nonlinearity(name)
        np.testing.assert_allclose(u, act(g), rtol=1e-14, err_msg=name)
        np.testing.assert_allclose(d, act.derivative(g), rtol=1e-14, err_msg=name)


# ---------------------------------------------------------------------- batching
def test_batched_equals_separate_runs(rng):
    X = rng.standard_normal((6, 8, 5)) / math.sqrt(5)
    task = Task.from_batches(X, np.sin(X[..., :2] * 3), eval_X=X[0, :4])
    base = Parametrization.depth_mup(eta=0.3)
    params = [
        base,
        dataclasses.replace(base, eta=0.05, a=2.0),
        Parametrization.ode(eta=0.2, a=0.7),
        Parametrization(alpha=0.75, gamma=0.25, eta=0.5, base_depth=2),
    ]
    seeds = [0, 0, 5, 7]
    record = Record(steps=(0, 3, 6))
    kw = dict(depth=6, width=32, phi="tanh", block_depth=2, pre_ln=True, record=record)
    batch = train_finite_batch(task, params, seeds=seeds, **kw)
    for run, p, s in zip(batch, params, seeds, strict=True):
        single = train_finite(task, p, seed=s, **kw)
        np.testing.assert_allclose(run.f, single.f, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(run.f_eval, single.f_eval, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(run.loss, single.loss, rtol=1e-11)
        for key in ("x_layers", "x_steps", "h_steps", "dh_layers"):
            np.testing.assert_allclose(
                getattr(run.recorded, key), getattr(single.recorded, key), rtol=1e-10, atol=1e-12
            )
        assert run.config == single.config


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_threads_give_bit_identical_runs(rng, optimizer):
    """Groups of configurations on threads: same bits, divergence and recording included."""
    X = rng.standard_normal((5, 8, 5)) / math.sqrt(5)
    task = Task.from_batches(X, np.sin(X[..., :2] * 3), eval_X=X[0, :4])
    etas = (0.1, 0.3, 1e6, 0.03, 0.2) if optimizer == "sgd" else (0.01, 0.03, 1e3, 0.1, 0.3)
    params = [Parametrization.depth_mup(eta=e, optimizer=optimizer) for e in etas]
    kw = dict(depth=6, width=32, phi="relu", record=Record(steps=(0, 5)), seeds=range(5))
    one = train_finite_batch(task, params, **kw)
    assert one[2].diverged and not one[0].diverged
    for threads in (2, 3, 8):
        for a, b in zip(one, train_finite_batch(task, params, threads=threads, **kw), strict=True):
            np.testing.assert_array_equal(a.f, b.f)
            np.testing.assert_array_equal(a.f_eval, b.f_eval)
            np.testing.assert_array_equal(a.recorded.x_layers, b.recorded.x_layers)
            assert (a.diverged_step, a.config) == (b.diverged_step, b.config)
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        train_finite_batch(task, params, threads=0, **kw)


@pytest.mark.parametrize("library", ["default", "scipy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("a", "b", "rows"), [(128, 128, 64), (100, 37, 5), (33, 700, 1)])
def test_gemm_update_matches_float64_reference(rng, monkeypatch, library, dtype, a, b, rows):
    """``w − c zᵀq`` in one BLAS call, per configuration, within the rounding-error bound
    (numpy's BLAS where found, and scipy's, the fallback).

    Each entry is a length-R sum, a multiply by c and an add: ``|error| ≤ γ_{R+2} Σ|terms|``
    with ``γ_m = m u / (1 − m u)`` (Higham, Thm 3.1 and eq. 3.4; u = eps/2).
    """
    w, z, q = (rng.standard_normal(shape).astype(dtype) for shape in
               [(3, a, b), (3, rows, a), (3, rows, b)])  # fmt: skip
    rate = np.array([1e-3, 0.02, 0.5])
    wide = [array.astype(np.float64) for array in (w, z, q)]
    reference = wide[0] - rate[:, None, None] * np.einsum("kra,krb->kab", wide[1], wide[2])
    scale = np.abs(wide[0]) + rate[:, None, None] * np.einsum(
        "kra,krb->kab", np.abs(wide[1]), np.abs(wide[2])
    )
    u = np.finfo(dtype).eps / 2
    gamma = (rows + 2) * u / (1 - (rows + 2) * u)
    if library == "scipy":
        scipy_gemm = {"float32": _blas._scipy_gemm("sgemm"), "float64": _blas._scipy_gemm("dgemm")}
        monkeypatch.setattr(_blas, "_GEMM", {np.dtype(k): f for k, f in scipy_gemm.items()})
        monkeypatch.setattr(_blas, "_INT", ctypes.c_int)
        monkeypatch.setattr(_blas, "_DIMS", {})
    out = w.copy()
    gemm_update(out, z, q, rate)
    assert np.all(np.abs(out - reference) <= gamma * scale * (1 + 1e-6))
    assert not np.array_equal(out, w)
    with pytest.raises(ValueError, match="C-contiguous"):
        gemm_update(np.asfortranarray(w[0])[None], z[:1], q[:1], rate)
    with pytest.raises(ValueError, match="shapes"):
        gemm_update(w, z[:, :, :-1], q, rate)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_blas_threads_give_bit_identical_runs(rng, dtype):
    """One and two BLAS threads: the same bits (products large enough for BLAS to thread)."""
    X = rng.standard_normal((3, 64, 8)) / math.sqrt(8)
    task = Task.from_batches(X, np.eye(4)[rng.integers(0, 4, (3, 64))], loss="xent")
    param = Parametrization.depth_mup(eta=0.5)
    kw = dict(depth=3, width=512, dtype=dtype, eval_every=0)
    one, two = (train_finite(task, param, blas_threads=t, **kw) for t in (1, 2))
    np.testing.assert_array_equal(one.f, two.f)
    np.testing.assert_array_equal(one.loss, two.loss)


def test_batched_adam_float32_equals_separate(rng):
    task = Task.full_batch(rng.standard_normal((4, 6)), rng.standard_normal((4, 1)), 5)
    params = [Parametrization.depth_mup(optimizer="adam", eta=e) for e in (0.01, 0.03, 0.1)]
    batch = train_finite_batch(
        task, params, seeds=range(3), depth=8, width=64, dtype="float32", block="pre"
    )
    for k, run in enumerate(batch):
        single = train_finite(
            task, params[k], seed=k, depth=8, width=64, dtype="float32", block="pre"
        )
        np.testing.assert_allclose(run.f, single.f, rtol=1e-5, atol=1e-6)


def test_float32_tracks_float64(rng):
    task = Task.full_batch(rng.standard_normal((4, 6)) / 2, rng.standard_normal((4, 1)), 10)
    p = Parametrization.depth_mup(eta=0.5)
    r64 = train_finite(task, p, depth=16, width=128, phi="abs")
    r32 = train_finite(task, p, depth=16, width=128, phi="abs", dtype="float32")
    assert r64.loss[-1] < 0.5 * r64.loss[0]
    np.testing.assert_allclose(r32.loss, r64.loss, rtol=1e-4)


# -------------------------------------------------------------------- divergence
def test_divergence_is_flagged_and_isolated(rng):
    task = Task.full_batch(
        rng.standard_normal((4, 6)),
        3 * rng.standard_normal((4, 2)),
        30,
        eval_X=rng.standard_normal((3, 6)),
    )
    good = Parametrization.depth_mup(eta=0.1)
    bad = Parametrization.depth_mup(eta=1e4)
    with np.errstate(all="raise"):
        runs = train_finite_batch(task, [good, bad, good], seeds=[1, 1, 2], depth=8, width=32)
    assert not runs[0].diverged and not runs[2].diverged
    assert runs[1].diverged and 1 <= runs[1].diverged_step < 30
    t = runs[1].diverged_step
    assert np.isnan(runs[1].f[t:]).all() and np.isnan(runs[1].loss[t:]).all()
    assert np.isnan(runs[1].f_eval[t:]).all()
    assert np.isfinite(runs[1].f[:t]).all() and np.isfinite(runs[1].loss[:t]).all()
    assert runs[1].final_loss() == math.inf
    alone = train_finite(task, good, seed=1, depth=8, width=32)
    np.testing.assert_allclose(runs[0].f, alone.f, rtol=1e-11, atol=1e-12)


def test_learning_rate_sweep_with_divergent_runs_completes(rng):
    task = Task.from_dataset("digits", steps=20, batch_size=16, loss="xent")
    etas = 2.0 ** np.arange(-4, 12, 2)
    params = [Parametrization.depth_mup(eta=float(e)) for e in etas]
    runs = train_finite_batch(
        task, params, depth=8, width=32, dtype="float32", record=Record(steps=(0, 20))
    )
    flags = [r.diverged for r in runs]
    assert not flags[0] and flags[-1], flags
    for r in runs:
        assert r.diverged or np.isfinite(r.loss).all()
        assert r.diverged == (r.diverged_step is not None)
    assert np.isnan(runs[-1].recorded.x_layers[-1]).all()


# ------------------------------------------------------------------- bad inputs
def test_bad_inputs_name_the_parameter(rng):
    task = Task.full_batch(rng.standard_normal((3, 4)), rng.standard_normal((3, 1)), 2)
    p = Parametrization.depth_mup()
    with pytest.raises(ValueError, match="width"):
        train_finite(task, p, depth=4, width=0)
    with pytest.raises(ValueError, match="depth"):
        train_finite(task, p, depth=-1, width=4)
    with pytest.raises(ValueError, match="block"):
        train_finite(task, p, depth=2, width=4, block="middle")
    with pytest.raises(ValueError, match="block_depth"):
        train_finite(task, p, depth=2, width=4, block_depth=3)
    with pytest.raises(ValueError, match="dtype"):
        train_finite(task, p, depth=2, width=4, dtype="float16")
    with pytest.raises(ValueError, match="optimizer"):
        train_finite_batch(task, [p, Parametrization.depth_mup(optimizer="adam")], depth=2, width=4)
    with pytest.raises(ValueError, match="seeds"):
        train_finite_batch(task, [p, p], seeds=[1, 2, 3], depth=2, width=4)
    with pytest.raises(TypeError, match="task"):
        train_finite(task.X, p, depth=2, width=4)
    with pytest.raises(ValueError, match="record steps"):
        train_finite(task, p, depth=2, width=4, record=Record(steps=(5,)))
    with pytest.raises(ValueError, match=r"phi|nonlinearity"):
        train_finite(task, p, depth=2, width=4, phi="nope(")


# ------------------------------------------------------------------------ memory
MEMORY_CASES = [  # (optimizer, dtype, block_depth, pre_ln, eval inputs P, record)
    ("adam", "float32", 2, True, 5, Record(steps=(0, 2))),
    ("sgd", "float64", 1, False, 0, None),
    ("sgd", "float32", 1, False, 3, Record(steps=(3,), backward=False)),
]


def memory_task(rng, P, steps=3, batch=8, d=5, e=3):
    X = rng.standard_normal((steps, batch, d))
    eval_X = rng.standard_normal((P, d)) if P else None
    return Task.from_batches(X, rng.standard_normal((steps, batch, e)), eval_X=eval_X)


@pytest.mark.parametrize(("optimizer", "dtype", "bd", "pre_ln", "P", "record"), MEMORY_CASES)
def test_memory_estimate_counts_the_allocated_arrays(optimizer, dtype, bd, pre_ln, P, record, rng):
    """memory_bytes = every array a Trainer holds after training (weights, Adam moments,
    activation buffers, outputs, probe features) + the per-step (K, B, n) product δx̃^L."""
    task, K, n = memory_task(rng, P), 3, 16
    param = Parametrization.depth_mup(optimizer=optimizer, eta=0.01)
    arch = dict(depth=3, width=n, phi="tanh", block_depth=bd, block="post", pre_ln=pre_ln)
    net = _network(task, [param] * K, list(range(K)), dtype=dtype, **arch)
    trainer = Trainer(task, net, 1e8, record, 1)
    trainer.run(progress=False)
    arrays = [net.Ut, net.Wt, net.V, *(m for pair in net.adam.values() for m in pair)]
    arrays += [a for buf in net._buffers.values() for a in vars(buf).values()]
    arrays += [trainer.f, trainer.loss, trainer.f_eval]
    if trainer.recorder is not None:
        arrays += [trainer.recorder.x, trainer.recorder.h, trainer.recorder.dh]
    held = sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))
    per_step = K * task.batch_size * n * np.dtype(dtype).itemsize
    assert memory_bytes(net.spec, K, task, record, 1) == held + per_step


def test_memory_estimate_bounds_the_traced_peak(rng):
    """tracemalloc's peak over a whole train_finite_batch call (several MB) lies between the
    estimate and 5% above it: what the estimate leaves out (weight draws, the batch, (K, B, e)
    arrays, Python objects) is a few hundred kB here."""
    import tracemalloc

    task = memory_task(rng, 8, batch=16)
    params = [Parametrization.depth_mup(optimizer="adam", eta=0.01)] * 2
    kw = dict(depth=4, width=256, block_depth=2, pre_ln=True, dtype="float32", phi="tanh")
    record = Record(steps=(0, 2))
    train_finite_batch(task, params, record=record, **kw)  # compile outside the trace
    tracemalloc.start()
    try:
        train_finite_batch(task, params, record=record, **kw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    net = _network(task, params, [0, 0], **kw)
    estimate = memory_bytes(net.spec, 2, task, record, 1)
    assert estimate <= peak <= 1.05 * estimate


def test_networks_larger_than_memory_are_refused_before_allocating(rng):
    task = memory_task(rng, 0)
    p = Parametrization.depth_mup()
    match = r"depth=64, width=1048576 .*GiB of weights and activations, more than this machine"
    with pytest.raises(ValueError, match=match):
        train_finite(task, p, depth=64, width=2**20)
    with pytest.raises(ValueError, match=r"8 networks of depth=64"):
        check_memory(task, p, seeds=range(8), depth=64, width=2**20, dtype="float32")
    assert check_memory(task, p, depth=64, width=64) is None


# ------------------------------------------------------------- init kernels (R1)
def test_init_kernels_converge_at_rate_n_to_minus_half(rng):
    """Probe kernels of finite nets → init_kernels, error ∝ n^-1/2 (fitted slope; measured
    −0.51 ± 0.02 for this seed)."""
    fit, errors = init_kernel_errors(rng)
    assert abs(fit.slope + 0.5) < 0.15 + 3 * fit.stderr, (fit.slope, fit.stderr, errors)
    assert errors[-1] < 0.1


def init_kernel_errors(rng):
    """RMS relative error of ⟨x^l|x^l⟩ and ⟨δh̃^l|δh̃^l⟩ against init_kernels, per width."""
    from limitsim.kernels.recursion import init_kernels

    xi = rng.standard_normal(6)
    xi /= np.linalg.norm(xi)
    task = Task.full_batch(xi[None], np.zeros((1, 1)), 1)
    p = Parametrization.depth_mup(a=1.5)
    depth, seeds = 8, list(range(10))
    act = nonlinearity("relu")
    exact = init_kernels(xi[None], "relu", depth=depth, param=p)
    K_exact = exact.K[:, 0, 0]
    # ⟨δh̃^l|δh̃^l⟩ = V_φ'(K^{l-1}) G^l at n = ∞ (gradient independence).
    dh_exact = np.array(
        [
            act.vprime(exact.K[k][None, None, 0, 0].reshape(1, 1))[0, 0] * exact.G[k + 1, 0, 0]
            for k in range(depth)
        ]
    )
    widths = np.array([32, 64, 128, 256, 512])
    errors = []
    for n in widths:
        runs = train_finite_batch(
            task, p, seeds=seeds, depth=depth, width=int(n), record=Record(steps=(0,))
        )
        K = np.stack([np.diag(r.recorded.x_layers[0]) for r in runs])
        dh = np.stack([np.diag(r.recorded.dh_layers[0]) for r in runs])
        rel = np.concatenate([(K / K_exact - 1).ravel(), (dh / dh_exact - 1).ravel()])
        errors.append(np.sqrt(np.mean(rel**2)))
    return stats.linregress(np.log(widths), np.log(errors)), errors


def test_init_kernels_pre_block_and_layer_norm(rng):
    """The other architectures at one large width: within 5 standard errors over seeds."""
    from limitsim.kernels.recursion import init_kernels

    xi = rng.standard_normal(5)
    xi /= np.linalg.norm(xi)
    task = Task.full_batch(xi[None], np.zeros((1, 1)), 1)
    p = Parametrization.depth_mup()
    for arch in (
        dict(block="pre"),
        dict(block="post", block_depth=2),
        dict(block="post", pre_ln=True),
    ):
        runs = train_finite_batch(
            task,
            p,
            seeds=range(8),
            depth=6,
            width=512,
            phi="abs",
            record=Record(steps=(0,), backward=False),
            **arch,
        )
        K = np.stack([np.diag(r.recorded.x_layers[0]) for r in runs])
        exact = init_kernels(xi[None], "abs", depth=6, param=p, **arch).K[:, 0, 0]
        se = K.std(axis=0, ddof=1) / math.sqrt(K.shape[0])
        assert np.all(np.abs(K.mean(axis=0) - exact) <= 5 * se + 1e-12), arch


# ------------------------------------------- classification in finite networks
DEPTHS = (8, 16, 32, 64, 128, 256)


def one_step_exponents(alpha, gamma, width=128, seeds=4):
    """Fitted exponents of the one-step RMS Δf and RMS Δh (block at L/2) against L."""
    task = Task.from_dataset("few_point", steps=2, n_points=2, d_in=8, seed=3)
    p = Parametrization(alpha=alpha, gamma=gamma, eta=0.01)
    df, dh = [], []
    for depth in DEPTHS:
        runs = train_finite_batch(
            task,
            p,
            seeds=range(seeds),
            depth=depth,
            width=width,
            record=Record(steps=(0, 1), backward=False),
        )
        df.append(np.mean([output_change(r, step=1) for r in runs]))
        dh.append(np.mean([feature_learning(r, step=1, fractions=[0.5])[0] for r in runs]))
    return fit_exponent(DEPTHS, df), fit_exponent(DEPTHS, dh)


@pytest.mark.parametrize(
    "alpha, gamma", [(0.5, 0.5), (0.5, 0.0), (1.0, 1.0), (1.0, 0.0), (0.5, 1.0)]
)
def test_one_step_exponents_follow_classification(alpha, gamma):
    """One SGD step: Δf ∝ L^{1−α−γ}, Δh ∝ L^{max(−γ, 1−α−γ)} (App. D.2; Claims 7.2–7.5),
    the exponents behind ``classify`` (limitsim._generated.exponents)."""
    from limitsim import classify
    from limitsim._generated import exponents

    predicted_f = exponents.drift_exponent(alpha, gamma)
    predicted_h = exponents.preactivation_update_exponent(alpha, gamma)
    fit_f, fit_h = one_step_exponents(alpha, gamma)
    assert abs(fit_f.slope - predicted_f) < 0.15, (fit_f, predicted_f)
    assert abs(fit_h.slope - predicted_h) < 0.15, (fit_h, predicted_h)
    c = classify(alpha, gamma)
    assert c.nontrivial == (fit_f.slope > -0.15) and c.stable_training == (fit_f.slope < 0.15)


def test_fused_and_unfused_sgd_updates_agree(monkeypatch):
    """Width 256 (fused BLAS update) against the same run forced onto the gradient product and
    sgd_step: equal to float64 rounding."""
    from limitsim.finite import _net

    rng = np.random.default_rng(3)
    task = Task.from_batches(rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 2)))
    param = Parametrization.depth_mup(eta=0.5)
    fused = train_finite(task, param, depth=3, width=256, seed=1, progress=False)
    monkeypatch.setattr(_net, "FUSED_MIN_WIDTH", 10**9)
    plain = train_finite(task, param, depth=3, width=256, seed=1, progress=False)
    assert _net.Spec(3, 256, 5, 2, None).fused_update is False  # type: ignore[arg-type]
    np.testing.assert_allclose(fused.f, plain.f, rtol=1e-12, atol=1e-14)
    assert np.abs(fused.f[-1] - fused.f[0]).max() > 1e-3  # it trains
