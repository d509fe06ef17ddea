"""Route R2 speed and memory: :func:`limitsim.linear_limit` against a dense-numpy baseline.

Baseline (``dense_numpy``, below): the *same* recursion (channels, implicit own hats) written
with dense numpy arrays — every ket a vector over all ``N = d + e + 2 L T r`` base variables
(no causal truncation), the covariance one dense N×N matrix and every inner product a dense
quadratic form ``u·C·v``.  That is the naive algorithm of ``theory/algorithms.md`` §2 R2:
O(L·N²) = O(T² L³) per step and pass, memory O(N²).  limitsim exploits the block-diagonal
covariance (``Σa`` costs 2 L (t r)² instead of N²) and the causal support of each ket.

- ``test_target``: depth 256, 10 steps, batch 4 (the issue's target, seconds).
- ``test_ratio_vs_dense``: depth 64, 5 steps; ``extra_info["ratio"]`` = baseline / limitsim
  time in the same run (results checked equal).
- ``test_growth_in_depth``: L = 8..1024 at T = 3; ``test_growth_in_steps``: T = 1..50 at
  L = 16.  Fitted exponents of time and of peak traced memory (numpy allocations, tracemalloc)
  over the upper half of each sweep, next to the naive O(T² L (TL)²) and O((TL)²).

Run: ``python -m pytest benchmarks/bench_linear_limit.py --benchmark-only -q -s``.
"""

from __future__ import annotations

import math
import time
import tracemalloc

import numpy as np
from scipy.stats import linregress

from limitsim import Parametrization, Task, linear_limit

PARAM = Parametrization.depth_mup()


def _task(T: int, B: int = 4, d: int = 4, e: int = 1) -> Task:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((T, B, d)) / math.sqrt(d)
    return Task.from_batches(X, rng.standard_normal((T, B, e)))


def dense_numpy(task: Task, param: Parametrization, depth: int) -> np.ndarray:
    """Baseline: the same recursion with dense coefficient vectors and a dense covariance."""
    T, B, d = task.X.shape
    e, L = task.d_out, depth
    r = min(B, e)
    beta = param.branch_multiplier(L)
    rho = param.learning_rate(L) * beta
    N = d + e + 2 * L * T * r
    C = np.zeros((N, N))
    C[: d + e, : d + e] = np.eye(d + e)
    F = d + e + (np.arange(L)[:, None, None] * T + np.arange(T)[None, :, None]) * r
    F = F + np.arange(r)  # F[m, s, j]: forward hat of block m, step s, channel j
    Bk = F + L * T * r
    Z = np.zeros((T, r, L, N))  # z_{s,j}^m
    Wk = np.zeros((T, r, L, N))  # w_{s,j}^{m+1}
    f = np.zeros((T, B, e))

    def passes(start, t, forward):
        a = start.copy()
        v = np.zeros_like(a)
        out = np.zeros((a.shape[0], L, N))
        qs = np.zeros((a.shape[0], L, t, r))
        Kmut = np.zeros((a.shape[0], a.shape[0], L))
        own = np.zeros((a.shape[0], a.shape[0]))
        layers = range(L) if forward else range(L - 1, -1, -1)
        for m in layers:
            y = a @ C + v
            Kmut[:, :, m] = y @ a.T + (v @ a.T).T + own
            own += beta**2 * Kmut[:, :, m]
            out[:, m] = a
            mine, other = (Z, Wk) if forward else (Wk, Z)
            q = np.einsum("pn,srn->psr", y, mine[:t, :, m])
            qs[:, m] = q
            hats, coefs = (F, Bk) if forward else (Bk, F)
            v[:, hats[m, :t].ravel()] = beta * q.reshape(a.shape[0], -1)
            g = a[:, coefs[m, :t]] - rho * q
            a = a + beta * np.einsum("psr,srn->pn", g, other[:t, :, m])
        return a, out, qs, Kmut

    for t in range(T):
        x0 = np.zeros((B, N))
        x0[:, :d] = task.X[t]
        a, *_ = passes(x0, t, True)
        f[t] = a[:, d : d + e]
        chi = task.chi(f[t], task.Y[t])
        A, S = (chi, np.eye(e)) if e <= B else (np.eye(B), chi)
        z0 = np.zeros((r, N))
        z0[:, :d] = A.T @ task.X[t] / B
        _, out, q, K = passes(z0, t, True)
        for j in range(r):  # own hats of step t: z^m carries β on the hats of blocks < m
            Z[t, j] = out[j]
            Z[t, j][:, F[:, t, j]] += beta * np.tri(L, L, -1)
        for m in range(L):
            C[F[m, t][:, None], F[m, :t].ravel()[None, :]] = q[:, m].reshape(r, -1)
            C[F[m, :t].ravel()[:, None], F[m, t][None, :]] = q[:, m].reshape(r, -1).T
            C[F[m, t][:, None], F[m, t][None, :]] = K[:, :, m]
        w0 = np.zeros((r, N))
        w0[:, d : d + e] = S
        _, out, q, K = passes(w0, t, False)
        for j in range(r):  # w^{m+1} carries β on the backward hats of blocks > m
            Wk[t, j] = out[j]
            Wk[t, j][:, Bk[:, t, j]] += beta * np.tri(L, L, -1).T
        for m in range(L):
            C[Bk[m, t][:, None], Bk[m, :t].ravel()[None, :]] = q[:, m].reshape(r, -1)
            C[Bk[m, :t].ravel()[:, None], Bk[m, t][None, :]] = q[:, m].reshape(r, -1).T
            C[Bk[m, t][:, None], Bk[m, t][None, :]] = K[:, :, m]
    return f


def _timed(fn, *args, **kwargs) -> tuple[float, float]:
    """Wall time (best of two) and peak traced memory in bytes of one call."""
    best = math.inf
    for _ in range(2):
        start = time.perf_counter()
        fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    fn(*args, **kwargs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return best, float(peak)


def _exponent(x, y) -> float:
    upper = slice(len(x) // 2, None)
    return float(linregress(np.log(x[upper]), np.log(np.asarray(y)[upper])).slope)


def test_target(benchmark):
    task = _task(10)
    linear_limit(_task(2), PARAM, depth=4)  # JIT warm-up
    benchmark.extra_info["config"] = "depth 256, 10 steps, batch 4, d 4, e 1"
    benchmark.pedantic(linear_limit, args=(task, PARAM), kwargs={"depth": 256}, rounds=3)


def test_ratio_vs_dense(benchmark):
    task = _task(5)
    fast = linear_limit(task, PARAM, depth=64)
    start = time.perf_counter()
    dense = dense_numpy(task, PARAM, 64)
    dense_time = time.perf_counter() - start
    assert np.allclose(fast.f, dense, atol=1e-12)
    result = benchmark.pedantic(linear_limit, args=(task, PARAM), kwargs={"depth": 64}, rounds=5)
    assert result is not None
    benchmark.extra_info["baseline"] = "dense numpy, same recursion, depth 64, 5 steps"
    benchmark.extra_info["baseline_seconds"] = dense_time
    benchmark.extra_info["ratio"] = dense_time / benchmark.stats.stats.min


def test_growth_in_depth(benchmark):
    depths = np.array([8, 16, 32, 64, 128, 256, 512, 1024])
    task = _task(3)
    linear_limit(task, PARAM, depth=4)
    times, peaks = zip(
        *(_timed(linear_limit, task, PARAM, depth=int(L)) for L in depths), strict=True
    )
    benchmark.extra_info.update(
        {
            "depths": depths.tolist(),
            "seconds": list(times),
            "peak_bytes": list(peaks),
            "time_exponent_L": _exponent(depths, times),
            "memory_exponent_L": _exponent(depths, peaks),
            "naive_time_exponent_L (T^2 L (TL)^2)": 3,
            "naive_memory_exponent_L ((TL)^2)": 2,
        }
    )
    print("\nL:", benchmark.extra_info)
    benchmark.pedantic(linear_limit, args=(task, PARAM), kwargs={"depth": 1024}, rounds=1)


def test_growth_in_steps(benchmark):
    steps = np.array([1, 2, 5, 10, 20, 50])
    linear_limit(_task(2), PARAM, depth=16)
    times, peaks = zip(
        *(_timed(linear_limit, _task(int(T)), PARAM, depth=16) for T in steps), strict=True
    )
    benchmark.extra_info.update(
        {
            "steps": steps.tolist(),
            "seconds": list(times),
            "peak_bytes": list(peaks),
            "time_exponent_T": _exponent(steps, times),
            "memory_exponent_T": _exponent(steps, peaks),
            "naive_time_exponent_T (T^2 L (TL)^2)": 4,
            "naive_memory_exponent_T ((TL)^2)": 2,
        }
    )
    print("\nT:", benchmark.extra_info)
    benchmark.pedantic(linear_limit, args=(_task(50), PARAM), kwargs={"depth": 16}, rounds=1)
