"""Hand-written numba kernels (no orchestration): Gaussian expectations and elementwise maps.

Conventions: inputs are arrays and scalars, outputs go into caller-allocated ``out`` arrays,
kernels return None.  Nonlinearities arrive as jitted scalar functions passed as arguments
(one compiled specialisation per function; numba caches each).
"""

from __future__ import annotations

import math

import numpy as np

from limitsim._generated.gaussian import (
    erf_second_moment,
    erf_vprime,
    homogeneous_mean,
    homogeneous_second_moment,
    homogeneous_vprime,
)
from limitsim._numba import SCALAR_FUNCTION, SCALAR_FUNCTION_32, jit, prange, types

_F64 = types.float64[::1]
_F32 = types.float32[::1]
_M64 = types.float64[:, ::1]


@jit(
    signatures=[
        types.void(SCALAR_FUNCTION, _F64, _F64),
        types.void(SCALAR_FUNCTION_32, _F32, _F32),
    ]
)
def map_scalar(fn, x, out):  # type: ignore[no-untyped-def]
    """``out[i] = fn(x[i])`` over flat arrays.

    Notes: jit-compiled; writes into ``out``.
    """
    for i in range(x.size):
        out[i] = fn(x[i])


@jit(inline="always")
def _std_and_correlation(k_ii, k_jj, k_ij):  # type: ignore[no-untyped-def]
    """Standard deviations and the correlation clipped to [-1, 1] (0 when a variance is 0).

    Correlations within 1e-15 of ±1 are snapped to ±1: the arcsine in the closed forms has an
    infinite slope there, so rounding in the square roots would otherwise cost 1e-8.
    """
    s_i = math.sqrt(max(k_ii, 0.0))
    s_j = math.sqrt(max(k_jj, 0.0))
    if s_i == 0.0 or s_j == 0.0:
        return s_i, s_j, 0.0
    rho = k_ij / math.sqrt(k_ii * k_jj)
    if abs(rho) > 1.0 - 1e-15:
        rho = math.copysign(1.0, rho)
    return s_i, s_j, rho


@jit(
    parallel=True,
    signatures=[types.void(SCALAR_FUNCTION, SCALAR_FUNCTION, _M64, _F64, _F64, _F64, _M64, _M64)],
)
def gauss_moments_quadrature(phi, dphi, K, nodes, weights, mean, second, vprime):  # type: ignore[no-untyped-def]
    """Gaussian moments of φ for every pair of a kernel by tensor Gauss–Hermite quadrature.

    Parameters
    ----------
    phi, dphi : jitted scalar functions
    K : ndarray, shape (P, P)
        Covariance of z.
    nodes, weights : ndarray, shape (deg,)
        Probabilists' Gauss–Hermite rule normalised to the standard normal (weights sum to 1).
    mean : ndarray, shape (P,)
        Out: ``E φ(z_i)``.
    second, vprime : ndarray, shape (P, P)
        Out: ``E φ(z_i)φ(z_j)`` and ``E φ′(z_i)φ′(z_j)``.

    Notes
    -----
    jit-compiled, parallel over rows; writes into the outputs.  The pair (z_i, z_j) is
    written as z_i = s_i g₁, z_j = s_j (ρ g₁ + sqrt(1 − ρ²) g₂), which stays valid for
    rank-deficient pairs (|ρ| = 1).
    """
    P = K.shape[0]
    deg = nodes.size
    for i in prange(P):
        s_i = math.sqrt(max(K[i, i], 0.0))
        acc = 0.0
        for a in range(deg):
            acc += weights[a] * phi(s_i * nodes[a])
        mean[i] = acc
        for j in range(i, P):
            s_i, s_j, rho = _std_and_correlation(K[i, i], K[j, j], K[i, j])
            c = s_j * math.sqrt(max(1.0 - rho * rho, 0.0))
            acc2 = 0.0
            accv = 0.0
            for a in range(deg):
                zi = s_i * nodes[a]
                fi = phi(zi)
                gi = dphi(zi)
                base = s_j * rho * nodes[a]
                inner2 = 0.0
                innerv = 0.0
                for b in range(deg):
                    zj = base + c * nodes[b]
                    inner2 += weights[b] * phi(zj)
                    innerv += weights[b] * dphi(zj)
                acc2 += weights[a] * fi * inner2
                accv += weights[a] * gi * innerv
            second[i, j] = acc2
            second[j, i] = acc2
            vprime[i, j] = accv
            vprime[j, i] = accv


@jit
def gauss_moments_homogeneous(c_plus, c_minus, K, mean, second, vprime):  # type: ignore[no-untyped-def]
    """Closed-form moments of φ = c₊ relu(z) − c₋ relu(−z) (arc-cosine kernels).

    Same outputs as :func:`gauss_moments_quadrature`.  Notes: jit-compiled, serial (a layer of
    64 inputs takes ~0.2 ms: less than a thread pool's synchronisation under load); writes
    into the outputs.
    """
    P = K.shape[0]
    for i in range(P):
        mean[i] = homogeneous_mean(math.sqrt(max(K[i, i], 0.0)), c_plus, c_minus)
        for j in range(i, P):
            s_i, s_j, rho = _std_and_correlation(K[i, i], K[j, j], K[i, j])
            m = homogeneous_second_moment(s_i, s_j, rho, c_plus, c_minus)
            v = homogeneous_vprime(s_i, s_j, rho, c_plus, c_minus)
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


def standard_normal_rule(deg: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Hermite nodes and weights for E over N(0, 1) (weights sum to 1)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(deg)
    return nodes, weights / math.sqrt(2.0 * math.pi)


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
