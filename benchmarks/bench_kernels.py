"""Route R1 speed: init_kernels for P = 64 inputs, L = 1024, against a straightforward numpy loop.

Baseline: the same recursion with Σ_φ and V_φ′ evaluated pair by pair in numpy (closed form
for relu, a vectorised tensor Gauss–Hermite rule of the same degree for tanh).  The ratio
baseline/limitsim measured in the same run is stored in ``extra_info["speedup"]``.
Compile time of the first call is measured separately in ``compile_times.py``.
"""

import math
import time

import numpy as np
import pytest

from limitsim import Parametrization, init_kernels
from limitsim.nonlinearities import nonlinearity

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


def _tanh_pair(kii, kjj, kij, nodes, weights):
    s_i, s_j = math.sqrt(kii), math.sqrt(kjj)
    rho = min(1.0, max(-1.0, kij / (s_i * s_j)))
    zi = s_i * nodes[:, None]
    zj = s_j * (rho * nodes[:, None] + math.sqrt(1 - rho**2) * nodes[None, :])
    w = weights[:, None] * weights[None, :]
    fi, fj = np.tanh(zi), np.tanh(zj)
    mi = np.sum(weights * np.tanh(s_i * nodes))
    mj = np.sum(weights * np.tanh(s_j * nodes))
    return np.sum(w * fi * fj) - mi * mj, np.sum(w * (1 - fi**2) * (1 - fj**2))


def numpy_loop(X, phi, depth):
    """Straightforward baseline: Python loop over layers and pairs, numpy inside a pair."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(48)
    weights = weights / math.sqrt(2 * math.pi)
    c = PARAM.branch_multiplier(depth) ** 2
    K = X @ X.T
    G_factors = []
    for _ in range(depth):
        sigma, vprime = np.empty_like(K), np.empty_like(K)
        for i in range(P):
            for j in range(i, P):
                if phi == "relu":
                    s, v = _relu_pair(K[i, i], K[j, j], K[i, j])
                else:
                    s, v = _tanh_pair(K[i, i], K[j, j], K[i, j], nodes, weights)
                sigma[i, j] = sigma[j, i] = s
                vprime[i, j] = vprime[j, i] = v
        G_factors.append(1 + c * vprime)
        K = K + c * sigma
    return K


@pytest.mark.parametrize("phi", ["relu", "tanh"])
def test_init_kernels_vs_numpy_loop(benchmark, phi):
    X = _inputs()
    init_kernels(X, phi, depth=2, param=PARAM)  # warm up the JIT
    # The numpy baseline is slow: time it on a few layers and scale linearly in depth.
    layers = 64 if phi == "relu" else 2
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


def test_quadrature_degree_agrees_with_baseline():
    """The baseline computes the same numbers (so the comparison is fair)."""
    X = _inputs()[:6]
    ours = init_kernels(X, "tanh", depth=3, param=PARAM).K[-1]
    np.testing.assert_allclose(numpy_loop(X, "tanh", 3), ours, rtol=1e-10)
    assert nonlinearity("tanh").quadrature_degree == 48
