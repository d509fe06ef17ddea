"""Route R1 speed: init_kernels against a straightforward numpy loop and neural-tangents.

``test_init_kernels_vs_numpy_loop`` (P = 64 inputs, L = 1024).  Baseline: the same
recursion and the same algorithms written straightforwardly in numpy with a Python loop over
the pairs of inputs (closed form for relu; for tanh the Hermite expansion of
:func:`limitsim.gaussian._moments.gauss_moments_hermite`, coefficients by numpy, one dot product per
pair).  The ratio baseline/limitsim measured in the same run is stored in
``extra_info["speedup"]``.
Compile time of the first call is measured separately in ``compile_times.py``.

``test_init_kernels_vs_neural_tangents`` (P = 8 and 64, L = 64 and 1024; only where
``neural_tangents`` imports: it is not a dependency, install it with jax in a venv with
``--system-site-packages``).  Baseline: neural-tangents' ``kernel_fn`` of the same network,
jitted, returning the NNGP and the NTK (``get=("nngp", "ntk")``, jax's default float32): a
readin ``Dense`` with ``W_std = √d`` (so its kernel is X Xᵀ) followed by
``stax.repeat(block, L)`` of the pre block ``x + a L^-1/2 W relu(x)``, written as
``stax.serial(FanOut(2), parallel(Identity(), serial(Relu(), Dense(W_std=a L^-1/2))),
FanInSum())``.  ``stax.repeat`` (a ``lax.scan``) compiles in seconds and its warm calls were
the faster of the two (P = 8 and 64, L = 64); ``stax.serial`` of the L blocks had not finished
compiling L = 1024 after 16 minutes (5.7 GB resident; ``NT_SERIAL=1`` selects it).  limitsim
computes K and G of the same network (``block="pre"``, float64).  Warm calls of the two are
interleaved in the same process, 15 rounds, and ``extra_info["nt_over_limitsim"]`` is the
ratio of their medians (> 1: limitsim is faster), ``nt_over_limitsim_best`` the ratio of their
fastest rounds; the process CPU time per call of each is recorded too (XLA may use both
cores).  A check that both compute the same K^L comes first.  ``limitsim_fraction_of_bound``:
the time to write K and G of every layer once at this machine's memory bandwidth
(``benchmarks/_machine.py``), divided by limitsim's time; the time per pair and layer of each
side is recorded too (the arithmetic of the moments, not memory, is what bounds both).
"""

import math
import os
import statistics
import time
import warnings

import numpy as np
import pytest

from benchmarks._machine import bandwidth
from benchmarks._peers import neural_tangents_kernel_fn
from limitsim import Parametrization, init_kernels
from limitsim.gaussian._moments import hermite_rule
from limitsim.nonlinearities.registry import DEFAULT_HERMITE_TERMS

P, DEPTH = 64, 1024
PARAM = Parametrization.depth_mup()


def _inputs():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((P, 16))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _relu_pair(kii, kjj, kij):
    s = math.sqrt(kii * kjj)
    rho = min(1.0, max(-1.0, kij / s))
    second = s * (math.sqrt(1 - rho**2) + (math.pi - math.acos(rho)) * rho) / (2 * math.pi)
    mean_i, mean_j = math.sqrt(kii / (2 * math.pi)), math.sqrt(kjj / (2 * math.pi))
    return second - mean_i * mean_j, 0.25 + math.asin(rho) / (2 * math.pi)


def _hermite_coefficients(K, nodes, weights, table):
    """c_k and d_k (for tanh and tanh′) of every input, and the exact diagonals."""
    s = np.sqrt(np.diag(K))[:, None] * nodes[None, :]
    f, g = np.tanh(s), 1 - np.tanh(s) ** 2
    return (f * weights) @ table.T, (g * weights) @ table.T, (f * f) @ weights, (g * g) @ weights


def numpy_loop(X, phi, depth):
    """Straightforward baseline: Python loops over layers and pairs, numpy inside."""
    nodes, weights, table = hermite_rule(DEFAULT_HERMITE_TERMS)
    powers = np.arange(table.shape[0])
    c = PARAM.branch_multiplier(depth) ** 2
    K = X @ X.T
    for _ in range(depth):
        sigma, vprime = np.empty_like(K), np.empty_like(K)
        if phi == "tanh":
            coef, dcoef, diag, ddiag = _hermite_coefficients(K, nodes, weights, table)
        for i in range(P):
            for j in range(i, P):
                if phi == "relu":
                    s, v = _relu_pair(K[i, i], K[j, j], K[i, j])
                elif i == j:
                    s, v = diag[i] - coef[i, 0] ** 2, ddiag[i]
                else:
                    rho = K[i, j] / np.sqrt(K[i, i] * K[j, j])
                    weights_k = rho**powers
                    s = np.dot(coef[i] * coef[j], weights_k) - coef[i, 0] * coef[j, 0]
                    v = np.dot(dcoef[i] * dcoef[j], weights_k)
                sigma[i, j] = sigma[j, i] = s
                vprime[i, j] = vprime[j, i] = v
        K = K + c * sigma
    return K


@pytest.mark.parametrize("phi", ["relu", "tanh"])
def test_init_kernels_vs_numpy_loop(benchmark, phi):
    X = _inputs()
    init_kernels(X, phi, depth=2, param=PARAM)  # warm up the JIT
    # The numpy baseline is slow: time it on a few layers and scale linearly in depth.
    layers = 32
    start = time.perf_counter()
    numpy_loop(X, phi, layers)
    baseline = (time.perf_counter() - start) * DEPTH / layers
    result = benchmark.pedantic(
        init_kernels,
        args=(X, phi),
        kwargs={"depth": DEPTH, "param": PARAM},
        rounds=1,
        iterations=1,
    )
    assert result.K.shape == (DEPTH + 1, P, P)
    ours = benchmark.stats.stats.mean
    benchmark.extra_info["numpy_loop_seconds_extrapolated"] = baseline
    benchmark.extra_info["speedup"] = baseline / ours
    print(
        f"\n{phi}: limitsim {ours:.2f} s, numpy loop ≈ {baseline:.1f} s, "
        f"speedup {baseline / ours:.1f}x"
    )


@pytest.mark.parametrize("phi", ["relu", "tanh"])
def test_baseline_computes_the_same_numbers(phi):
    """The baseline computes the same numbers (so the comparison is fair)."""
    X = _inputs()
    ours = init_kernels(X, phi, depth=3, param=PARAM).K[-1]
    np.testing.assert_allclose(numpy_loop(X, phi, 3), ours, rtol=1e-10)


NT_SIZES = [(8, 64), (8, 1024), (64, 64), (64, 1024)]
NT_ROUNDS = 15


def _neural_tangents_kernel_fn(X, depth):
    """Jitted ``kernel_fn`` of the pre-block resnet (module docstring), or skip."""
    pytest.importorskip("neural_tangents", reason="neural-tangents is not installed (optional)")
    m = PARAM.branch_multiplier(depth)
    return neural_tangents_kernel_fn(X, depth, m, serial=bool(os.environ.get("NT_SERIAL")))


@pytest.mark.parametrize(("n_inputs", "depth"), NT_SIZES)
def test_init_kernels_vs_neural_tangents(benchmark, n_inputs, depth):
    X = _inputs()[:n_inputs]
    neural_tangents = _neural_tangents_kernel_fn(X, depth)

    def ours():
        return init_kernels(X, "relu", depth=depth, param=PARAM, block="pre")

    start = time.perf_counter()
    with warnings.catch_warnings():  # FanIn's warning, at tracing time (this call only)
        warnings.simplefilter("ignore")
        nngp = np.asarray(neural_tangents().nngp)  # compiles
    compile_seconds = time.perf_counter() - start
    # float32: rounding errors of 2^-24 of the kernel's scale per layer, over the depth
    K = ours().K[-1]
    np.testing.assert_allclose(nngp, K, rtol=0, atol=4 * depth * 2.0**-24 * np.abs(K).max())
    calls = max(1, int(2e5 / (n_inputs * n_inputs * depth)))
    times = {ours: [], neural_tangents: []}
    cpu = {ours: 0.0, neural_tangents: 0.0}
    for _ in range(NT_ROUNDS):
        for fn, record in times.items():
            time.sleep(0.02)  # let the other's worker threads (XLA's) go idle first
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                fn()
            record.append((time.perf_counter() - start) / calls)
            cpu[fn] += (time.process_time() - start_cpu) / calls / NT_ROUNDS
    result = benchmark.pedantic(ours, rounds=NT_ROUNDS, iterations=calls)
    assert result.K.shape == (depth + 1, n_inputs, n_inputs)
    median = {fn: statistics.median(record) for fn, record in times.items()}
    best = {fn: min(record) for fn, record in times.items()}
    # The bound: K and G of every layer, float64, written once at the memory bandwidth.  The
    # scalar arithmetic of the moments (an arcsine, square roots and divisions per pair and
    # layer) has no machine rate to compare with; its cost is the time per pair and layer.
    bound = 16.0 * (depth + 1) * n_inputs**2 / bandwidth(1)
    pair_layers = depth * n_inputs * (n_inputs + 1) / 2
    benchmark.extra_info.update(
        limitsim_median_seconds=median[ours],
        nt_median_seconds=median[neural_tangents],
        nt_over_limitsim=median[neural_tangents] / median[ours],
        nt_over_limitsim_best=best[neural_tangents] / best[ours],
        nt_compile_seconds=compile_seconds,
        limitsim_cpu_seconds=cpu[ours],
        nt_cpu_seconds=cpu[neural_tangents],
        bound="memory: K and G of every layer written once",
        bound_seconds=bound,
        limitsim_fraction_of_bound=bound / median[ours],
        limitsim_ns_per_pair_and_layer=1e9 * median[ours] / pair_layers,
        nt_ns_per_pair_and_layer=1e9 * median[neural_tangents] / pair_layers,
    )
    print(
        f"\nP={n_inputs} L={depth}: limitsim {median[ours] * 1e3:.3f} ms, "
        f"neural-tangents {median[neural_tangents] * 1e3:.3f} ms (median of {NT_ROUNDS}); "
        f"NT/limitsim {median[neural_tangents] / median[ours]:.2f} "
        f"(fastest rounds: {best[neural_tangents] / best[ours]:.2f}); "
        f"NT compile {compile_seconds:.1f} s; CPU time per call: limitsim "
        f"{cpu[ours] * 1e3:.3f} ms, NT {cpu[neural_tangents] * 1e3:.3f} ms; limitsim at "
        f"{bound / median[ours]:.0%} of the memory bound ({bound * 1e3:.3f} ms), "
        f"{1e9 * median[ours] / pair_layers:.1f} ns per pair and layer "
        f"(NT {1e9 * median[neural_tangents] / pair_layers:.1f})"
    )
