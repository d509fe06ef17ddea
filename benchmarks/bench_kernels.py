"""Route R1 speed: init_kernels for P = 64 inputs, L = 1024, against a straightforward numpy loop.

Baseline: the same recursion and the same algorithms written straightforwardly in numpy with
a Python loop over the pairs of inputs (closed form for relu; for tanh the Hermite expansion
of :func:`limitsim.gaussian._moments.gauss_moments_hermite`, coefficients by numpy, one dot product
per pair).  The ratio
baseline/limitsim measured in the same run is stored in ``extra_info["speedup"]``.
Compile time of the first call is measured separately in ``compile_times.py``.
"""

import math
import time

import numpy as np
import pytest

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
