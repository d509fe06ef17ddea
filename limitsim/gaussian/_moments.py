"""Hand-written numba kernels (no orchestration): Gaussian expectations and elementwise maps.

Conventions: inputs are arrays and scalars, outputs go into caller-allocated ``out`` arrays,
kernels return None.  Nonlinearities arrive as jitted scalar functions passed as arguments
(one compiled specialisation per function; numba caches each).
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np

from limitsim._generated.gaussian import (
    erf_second_moment,
    erf_vprime,
    homogeneous_mean,
    homogeneous_second_moment,
    homogeneous_second_moment_angle,
    homogeneous_vprime,
    homogeneous_vprime_angle,
)
from limitsim._numba import SCALAR_FUNCTION, jit, types
from limitsim.gaussian._asin import asin

_F64 = types.float64[::1]
_F32 = types.float32[::1]
_M64 = types.float64[:, ::1]


@jit(inline="always")
def dot1(u, v):  # type: ignore[no-untyped-def]
    """``Σ_i u_i v_i`` of two 1-d arrays in float64, four partial sums in a fixed order.

    The partial sums give the CPU independent dependency chains (without fastmath the
    compiler may not reorder a single reduction); the order is fixed, so the result is
    deterministic and does not depend on the thread count.  Shared by the kernels of every
    route (finite networks, the linear limit, the particle simulator).
    """
    n = u.size
    n4 = n - n % 4
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    for i in range(0, n4, 4):
        s0 += u[i] * v[i]
        s1 += u[i + 1] * v[i + 1]
        s2 += u[i + 2] * v[i + 2]
        s3 += u[i + 3] * v[i + 3]
    for i in range(n4, n):
        s0 += u[i] * v[i]
    return (s0 + s1) + (s2 + s3)


def _map_scalar(fn, x, out):  # type: ignore[no-untyped-def]
    """``out[i] = fn(x[i])`` over flat arrays (float32 arrays are evaluated in float64).

    Notes: jit-compiled by :func:`map_scalar`; writes into ``out``.
    """
    for i in range(x.size):
        out[i] = fn(x[i])


@cache
def map_scalar() -> Any:
    """:func:`_map_scalar` compiled for float64 and float32 arrays, on its first use.

    Eager signatures let every process find its cached code (:func:`limitsim._numba.jit`);
    compiling them here rather than at import keeps the loading of that code out of
    ``import limitsim`` and out of routes that never evaluate φ on an array from Python
    (``benchmarks/compile_times.py``).
    """
    return jit(
        signatures=[
            types.void(SCALAR_FUNCTION, _F64, _F64),
            types.void(SCALAR_FUNCTION, _F32, _F32),
        ]
    )(_map_scalar)


#: Smallest normal float64: below it ``k_ii k_jj`` is subnormal or 0 (digits lost).
_TINY_PRODUCT = 2.2250738585072014e-308


@jit(inline="always")
def _std_and_correlation(k_ii, k_jj, k_ij):  # type: ignore[no-untyped-def]
    """Standard deviations and the correlation clipped to [-1, 1] (0 when a variance is 0).

    The correlation is :func:`_correlation`'s.
    """
    s_i = math.sqrt(max(k_ii, 0.0))
    s_j = math.sqrt(max(k_jj, 0.0))
    return s_i, s_j, _correlation(k_ii, k_jj, k_ij, s_i, s_j)


@jit(inline="always")
def _correlation(k_ii, k_jj, k_ij, s_i, s_j):  # type: ignore[no-untyped-def]
    """Correlation clipped to [-1, 1] (0 when a variance is 0), given the standard deviations
    ``s_i = sqrt(max(k_ii, 0))`` and ``s_j`` (computed once per input by callers that loop
    over pairs: square roots dominate the cost of a pair).

    Correlations within 1e-15 of ±1 are snapped to ±1: the arcsine in the closed forms has an
    infinite slope there, so rounding in the square roots would otherwise cost 1e-8.  The
    product ``k_ii k_jj`` is used where it is a normal float; outside (variances beyond about
    1e154 or below 1e-154, where it overflows or loses digits) ``s_i s_j`` is used instead, so
    the correlation stays right at every finite variance.
    """
    if s_i == 0.0 or s_j == 0.0:
        return 0.0
    product = k_ii * k_jj
    if _TINY_PRODUCT <= product < math.inf:
        rho = k_ij / math.sqrt(product)
    else:
        rho = k_ij / (s_i * s_j)
    if abs(rho) > 1.0 - 1e-15:
        rho = math.copysign(1.0, rho)
    return rho


#: Points between Gauss–Hermite nodes (irrational offsets, |g| ≤ 2.5) at which a series
#: that is claimed converged must reproduce φ; the truncation error there is at most about
#: 40 √(tail) (Christoffel function), far below the allowed miss.
_SERIES_CHECK = (
    -2.3416407864998738,
    -1.1180339887498949,
    -0.3819660112501051,
    0.4142135623730950,
    1.2360679774997898,
    2.0710678118654755,
)
_SERIES_MISS = 1e-2


@jit(inline="always")
def _series_misses(phi, dphi, s, fcoef, dcoef, roots, diag, ddiag):  # type: ignore[no-untyped-def]
    """True when Σ_k fcoef[k] h_k(g) or Σ_k dcoef[k] h_k(g) misses φ(s g) or φ′(s g) at a
    ``_SERIES_CHECK`` point g by more than ``_SERIES_MISS`` of √diag or √ddiag.

    The recursion for h_k runs at all check points at once (independent chains).
    """
    n = len(_SERIES_CHECK)
    g = np.array(_SERIES_CHECK)
    h = np.ones(n)
    h_prev = np.zeros(n)
    f = np.zeros(n)
    d = np.zeros(n)
    for k in range(fcoef.size):
        for t in range(n):
            f[t] += fcoef[k] * h[t]
            d[t] += dcoef[k] * h[t]
            h[t], h_prev[t] = (g[t] * h[t] - roots[k] * h_prev[t]) * (1.0 / roots[k + 1]), h[t]
    for t in range(n):
        if abs(f[t] - phi(s * g[t])) > _SERIES_MISS * math.sqrt(diag):
            return True
        if abs(d[t] - dphi(s * g[t])) > _SERIES_MISS * math.sqrt(ddiag):
            return True
    return False


@jit(
    signatures=[
        types.void(
            SCALAR_FUNCTION,
            SCALAR_FUNCTION,
            _M64,
            _F64,
            _F64,
            _M64,
            _F64,
            _M64,
            _M64,
            types.float64[:, :, ::1],
            _M64,
        )
    ],
)
def gauss_moments_hermite(phi, dphi, K, nodes, weights, table, mean, second, vprime, coef, tail):  # type: ignore[no-untyped-def]
    """Gaussian moments of φ for every pair of a kernel by Hermite (Mehler) expansion.

    With normalised probabilists' Hermite polynomials h_k = He_k/√k! and the coefficients
    c_k(s) = E[φ(s g) h_k(g)] (g ~ N(0, 1)), Mehler's formula gives, for the correlation ρ of
    z_i = s_i g_i and z_j = s_j g_j,

        E φ(z_i) φ(z_j) = Σ_k c_k(s_i) c_k(s_j) ρ^k,

    and the same with φ′ (coefficients d_k).  The coefficients are computed once per input by
    a 1-D Gauss–Hermite rule (``nodes``, ``weights``) against ``table[k, a] = h_k(nodes[a])``,
    so a layer costs O(P·deg·K + P²·K) instead of O(P²·deg²) for a tensor rule.  The series
    is truncated after K = ``table.shape[0]`` terms; since |ρ|^k ≤ 1, Cauchy–Schwarz bounds
    its error by √(T_i T_j) with the tails T_i = Σ_{k≥K} c_k(s_i)² at every correlation.
    The diagonal (ρ = 1) is computed directly by the 1-D rule.

    The tails are returned relative to Var φ(z_i) = Σ_{k≥1} c_k² (for φ′ relative to
    E φ′(z_i)² = Σ_{k≥0} d_k²); they are computed from the rule's own (discrete) coefficients,
    whose Parseval sum is the rule's variance exactly, so the Hermite values of input i are
    accurate when its tails are small (φ(s_i g) is then resolved by the rule).

    Parameters
    ----------
    phi, dphi : first-class jitted scalar functions
    K : ndarray, shape (P, P)
        Covariance of z.
    nodes, weights : ndarray, shape (deg,)
        Probabilists' Gauss–Hermite rule normalised to N(0, 1) (weights sum to 1).
    table : ndarray, shape (K_terms, deg)
        ``h_k(nodes[a])``.
    mean : ndarray, shape (P,)
        Out: ``E φ(z_i)``.
    second, vprime : ndarray, shape (P, P)
        Out: ``E φ(z_i)φ(z_j)`` and ``E φ′(z_i)φ′(z_j)``.
    coef : ndarray, shape (2, P, K_terms)
        Out: c_k(s_i) (row 0) and d_k(s_i) (row 1).
    tail : ndarray, shape (P, 2)
        Out: relative tails of φ's and φ′'s coefficients beyond K terms (0 for a zero
        variance), or infinite where the truncated series misses φ(s_i g) or φ′(s_i g) at
        the ``_SERIES_CHECK`` points between the nodes by more than ``_SERIES_MISS`` of
        their root mean square: then the rule does not resolve them (an oscillation aliased
        by the nodes can look like a converged series).

    Notes
    -----
    jit-compiled, serial; writes into the outputs.
    """
    P = K.shape[0]
    n_terms, deg = table.shape
    fcoef = np.zeros((P, n_terms))  # contiguous work arrays, copied into ``coef`` at the end
    dcoef = np.zeros((P, n_terms))
    fvals = np.empty(deg)
    roots = np.sqrt(np.arange(n_terms + 1.0))
    for i in range(P):
        s = math.sqrt(max(K[i, i], 0.0))
        diag = 0.0
        ddiag = 0.0
        for a in range(deg):
            fa = phi(s * nodes[a])
            ga = dphi(s * nodes[a])
            fvals[a] = fa
            f = weights[a] * fa
            g = weights[a] * ga
            diag += f * fa
            ddiag += g * ga
            for k in range(n_terms):
                fcoef[i, k] += f * table[k, a]
                dcoef[i, k] += g * table[k, a]
        mean[i] = fcoef[i, 0]
        second[i, i] = diag
        vprime[i, i] = ddiag
        var = 0.0
        for a in range(deg):
            d = weights[a] * (fvals[a] - fcoef[i, 0])  # weight first: no needless overflow
            var += d * (fvals[a] - fcoef[i, 0])
        head = 0.0
        dhead = dcoef[i, 0] ** 2
        for k in range(1, n_terms):
            head += fcoef[i, k] ** 2
            dhead += dcoef[i, k] ** 2
        tail[i, 0] = (var - head) / var if var > 0.0 else 0.0
        tail[i, 1] = (ddiag - dhead) / ddiag if ddiag > 0.0 else 0.0
        if _series_misses(phi, dphi, s, fcoef[i], dcoef[i], roots, diag, ddiag):
            tail[i, 0] = tail[i, 1] = math.inf
    for i in range(P):
        for j in range(i + 1, P):
            rho = _std_and_correlation(K[i, i], K[j, j], K[i, j])[2]
            power = 1.0
            acc2 = 0.0
            accv = 0.0
            for k in range(n_terms):
                acc2 += fcoef[i, k] * fcoef[j, k] * power
                accv += dcoef[i, k] * dcoef[j, k] * power
                power *= rho
            second[i, j] = acc2
            second[j, i] = acc2
            vprime[i, j] = accv
            vprime[j, i] = accv
    coef[0] = fcoef
    coef[1] = dcoef


@jit
def gauss_moments_homogeneous(c_plus, c_minus, K, mean, second, vprime):  # type: ignore[no-untyped-def]
    """Closed-form moments of φ = c₊ relu(z) − c₋ relu(−z) (arc-cosine kernels).

    Same outputs as :func:`gauss_moments_hermite`.  The arcsine is
    :func:`limitsim.gaussian._asin.asin` (within 1 ulp), as in the compiled recursion of
    route R1, which computes the same values.  Notes: jit-compiled, serial (a layer of 64
    inputs takes ~0.2 ms: less than a thread pool's synchronisation under load); writes into
    the outputs.
    """
    P = K.shape[0]
    for i in range(P):
        mean[i] = homogeneous_mean(math.sqrt(max(K[i, i], 0.0)), c_plus, c_minus)
        for j in range(i, P):
            s_i, s_j, rho = _std_and_correlation(K[i, i], K[j, j], K[i, j])
            theta = asin(rho)
            m = homogeneous_second_moment_angle(s_i, s_j, rho, theta, c_plus, c_minus)
            v = homogeneous_vprime_angle(s_i, s_j, rho, theta, c_plus, c_minus)
            second[i, j] = m
            second[j, i] = m
            vprime[i, j] = v
            vprime[j, i] = v


@jit
def gauss_moments_erf(K, mean, second, vprime):  # type: ignore[no-untyped-def]
    """Closed-form moments of φ = erf (arcsine kernel).  Notes: jit-compiled; writes outputs."""
    P = K.shape[0]
    for i in range(P):
        mean[i] = 0.0
        for j in range(i, P):
            m = erf_second_moment(K[i, i], K[j, j], K[i, j])
            v = erf_vprime(K[i, i], K[j, j], K[i, j])
            second[i, j] = m
            second[j, i] = m
            vprime[i, j] = v
            vprime[j, i] = v


def hermite_rule(n_terms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes, weights and ``h_k`` table for :func:`gauss_moments_hermite`.

    ``2 n_terms + 8`` Gauss–Hermite nodes for N(0, 1) (weights summing to 1); the projections
    on the first ``n_terms`` normalised polynomials are then exact for polynomial φ of degree
    up to ``n_terms + 15``.  Golub–Welsch: the nodes are the eigenvalues of the Jacobi matrix
    (off-diagonal √k), polished by two Newton steps on h_n, and the weights are the
    Christoffel numbers 1/Σ_{k<n} h_k(x)², which never overflow to NaN (``numpy``'s
    ``hermegauss`` does beyond 370 nodes; ``scipy``'s ``roots_hermitenorm`` loses two digits
    beyond 150).  Nodes whose weight underflows to 0 are dropped.  In float64 the rule stays
    discretely orthonormal, Σ_a w_a h_k h_l = δ_kl to 1e-14, up to 300 terms
    (``MAX_HERMITE_TERMS`` in :mod:`limitsim.gaussian._expectations`); from about 320 terms on the
    polynomials live where the Gaussian weight underflows.
    """
    from scipy.linalg import eigvalsh_tridiagonal

    n = 2 * n_terms + 8
    roots = np.sqrt(np.arange(n + 1.0))
    nodes = eigvalsh_tridiagonal(np.zeros(n), roots[1:n])
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(2):
            h_prev, h = np.zeros(n), np.ones(n)
            for k in range(n):  # ends with h = h_n, h_prev = h_{n-1}
                h_prev, h = h, (nodes * h - roots[k] * h_prev) / roots[k + 1]
            step = h / (roots[n] * h_prev)  # h_n / h_n′ with h_n′ = √n h_{n−1}
            nodes = nodes - np.where(np.isfinite(step), step, 0.0)
        h_prev, h = np.zeros(n), np.ones(n)
        total = np.ones(n)
        for k in range(n - 1):
            h_prev, h = h, (nodes * h - roots[k] * h_prev) / roots[k + 1]
            total += h * h
        weights = 1.0 / total
    keep = weights > 0.0
    nodes, weights = nodes[keep], weights[keep]
    table = np.empty((n_terms, nodes.size))
    table[0] = 1.0
    if n_terms > 1:
        table[1] = nodes
    for k in range(1, n_terms - 1):
        table[k + 1] = (nodes * table[k] - roots[k] * table[k - 1]) / roots[k + 1]
    return nodes, weights, table


@jit
def homogeneous_correlation_rhs_diag(c_plus, c_minus):  # type: ignore[no-untyped-def]
    """``(v_φ, V_φ′(1))`` for unit variance: Var φ(z) and E φ′(z)² of the homogeneous family."""
    mu = homogeneous_mean(1.0, c_plus, c_minus)
    v = homogeneous_second_moment(1.0, 1.0, 1.0, c_plus, c_minus) - mu * mu
    return v, homogeneous_vprime(1.0, 1.0, 1.0, c_plus, c_minus)


@jit
def homogeneous_correlation_rhs(c_plus, c_minus, rho, drho, dlog_g):  # type: ignore[no-untyped-def]
    """Right-hand side of the correlation ODE of the homogeneous family (per unit a²).

    ``drho = c_φ(ρ) − v_φ ρ`` (tp6-notes §3.6) and ``dlog_g = V_φ′(ρ)``, the rate of
    ``log G``; ``c_φ(ρ)`` is the covariance of φ at unit variances.  Notes: jit-compiled;
    writes into ``drho`` and ``dlog_g``.
    """
    mu = homogeneous_mean(1.0, c_plus, c_minus)
    v = homogeneous_second_moment(1.0, 1.0, 1.0, c_plus, c_minus) - mu * mu
    for k in range(rho.size):
        r = min(1.0, max(-1.0, rho[k]))
        c = homogeneous_second_moment(1.0, 1.0, r, c_plus, c_minus) - mu * mu
        drho[k] = c - v * rho[k]
        dlog_g[k] = homogeneous_vprime(1.0, 1.0, r, c_plus, c_minus)
