"""Numba kernels of the Tensor-Program Monte Carlo simulator (route R3; no orchestration).

Layout: every particle vector is a row ``[r, k, :]`` of an array of shape
``(n_replicas, n_vectors, n_particles)``, so the particle loop (the inner loop) is contiguous.
The O(N·K) kernels are serial and do their dense products (Gram–Schmidt projections, Stein
regressions, SGD memory) with BLAS through ``np.dot``: each call is a few milliseconds of
work, for which a parallel region's fork–join costs more than it saves on the shared 2-core
machines this project runs on (measured in ``benchmarks/bench_particles.py``).  The
O(N·M·t·B) Adam kernels (:mod:`limitsim.particles._adam_kernels`) run ``prange`` over
(replica, particle) with serial inner reductions.  So results do not depend on the number of
numba threads (BLAS keeps its own, fixed, threading).  Inner products are particle averages,
``⟨u|v⟩ = Σ_i u_i v_i / N``.

Notation (``theory/algorithms.md`` §2 R3, ``tp6-notes.md`` §3.1): a *family* of a matrix
``W`` holds the vectors ``y_k`` that ``W`` (or ``W^⊤``) has multiplied, in order, with
``Y[k] = y_k``, an orthonormal Gram–Schmidt basis ``Q`` of their span (``⟨Q_i|Q_j⟩ = δ_ij``),
the standard-normal *innovations* ``E`` (one per basis vector, orthonormal in the particle
inner product).  The hats are ``Ẑ^{W y_k} = Σ_j C_kj E_j``
with ``y_k = Σ_j C_kj Q_j``, which gives them the covariance ``⟨y_k|y_l⟩`` (Def. 4.1).

All kernels are jit-compiled and write into caller-allocated outputs.
"""

from __future__ import annotations

import math

import numpy as np

from limitsim._numba import SCALAR_FUNCTION, jit, types
from limitsim.gaussian._moments import dot1

# Kernels taking φ are compiled eagerly with first-class function arguments, so their cache is
# reused across processes and nonlinearities (see limitsim._numba.jit).
_A3 = types.float64[:, :, :]

__all__ = [
    "append_vectors",
    "apply_phi",
    "embed_inputs",
    "grad_post",
    "layer_norm",
    "layer_norm_backward",
    "memory_product",
    "mul_dphi",
    "readout",
    "residual_post",
    "stein_correction",
]


@jit(inline="always")
def _axpy1(c, x, y):  # type: ignore[no-untyped-def]
    """``y += c x`` for 1-d arrays."""
    for i in range(y.size):
        y[i] += c * x[i]


@jit
def append_vectors(Y, Q, E, k0, rank, U, eps, base, tol, hat):  # type: ignore[no-untyped-def]
    """Append vectors to a hat family and sample their hats conditionally on the earlier ones.

    Parameters
    ----------
    Y, Q, E : ndarray, shape (R, K, N)
        Family vectors, orthonormal basis and innovations (updated in place).
    k0 : int
        Number of vectors already in the family (the new ones go to ``k0 .. k0+B-1``).
    rank : ndarray of int64, shape (R,)
        Number of basis vectors (innovations) of each replica (updated).
    U : ndarray, shape (R, B, N)
        The new vectors ``y``.
    eps : ndarray, shape (R, B, N)
        Standard normals: the innovation of each new vector that is not in the span, made
        exactly orthonormal to ``base`` and to the family's earlier innovations (moment
        matching: the hats' particle covariance then equals the particle inner products
        ``⟨y|y'⟩`` exactly, and hats are exactly centred and uncorrelated with |U⟩, |nV⟩).
    base : ndarray, shape (R, n_base, N)
        Orthonormal rows every innovation is made orthogonal to (constant, |U⟩, |nV⟩).
    tol : float
        A vector whose residual variance after projection is ``<= tol·⟨y|y⟩`` is treated as
        dependent (repeated inputs): it gets no innovation and its hat is an exact linear
        combination of the earlier hats (no NaN for rank-deficient families).
    hat : ndarray, shape (R, B, N)
        Out: ``Ẑ^{W y} = Σ_j ⟨Q_j|y⟩ E_j + sqrt(v) E_new``, Gaussian with
        ``Cov(Ẑ^{Wy}, Ẑ^{Wy'}) = ⟨y|y'⟩`` jointly with the earlier hats (Def. 4.1).

    Notes
    -----
    jit-compiled; writes into the outputs.  Classical Gram–Schmidt
    with one re-orthogonalisation pass (CGS2) for both ``Q`` and ``E``.
    """
    R, B, N = U.shape
    K = Y.shape[1]
    for r in range(R):
        resid = np.empty(N)
        for b in range(B):
            k = k0 + b
            q = rank[r]
            for i in range(N):
                Y[r, k, i] = U[r, b, i]
                resid[i] = U[r, b, i]
                hat[r, b, i] = 0.0
            uu = dot1(resid, resid) / N
            coef = np.zeros(q)
            _project_out(Q[r], q, resid, coef)
            if q > 0:
                hat[r, b] += np.dot(coef, E[r, :q])
            v = dot1(resid, resid) / N
            if v > tol * uu and q < K:
                s = math.sqrt(v)
                for i in range(N):
                    Q[r, q, i] = resid[i] / s
                    E[r, q, i] = eps[r, b, i]
                _project_out(base[r], base.shape[1], E[r, q], np.zeros(base.shape[1]))
                _project_out(E[r], q, E[r, q], np.zeros(q))
                nrm = math.sqrt(dot1(E[r, q], E[r, q]) / N)
                for i in range(N):
                    E[r, q, i] /= nrm
                    hat[r, b, i] += s * E[r, q, i]
                rank[r] = q + 1


@jit(inline="always")
def _project_out(basis, q, v, coef):  # type: ignore[no-untyped-def]
    """Remove from ``v`` its components on the orthonormal rows ``basis[:q]`` (CGS2, BLAS).

    ``coef`` (q,) accumulates the removed coefficients ``⟨basis_j|v⟩``.
    """
    if q == 0:
        return
    N = v.size
    rows = basis[:q]
    for _ in range(2):
        c = np.dot(rows, v) / N
        coef += c
        v -= np.dot(c, rows)


@jit
def stein_correction(E, Q, rank, F, scale, out):  # type: ignore[no-untyped-def]
    """Add the Ż coupling term of a family to ``out`` (Stein's lemma as a regression).

    ``out[r, b] += scale · Σ_j γ_j Q_j`` with ``γ_j = ⟨E_j|F_b⟩``, the least-squares
    coefficients of ``F_b`` on the family's innovations (orthonormal in the particle inner
    product, so no Gram matrix is needed).  By Stein's lemma ``γ_j → E[∂F/∂E_j]``, and
    ``Σ_j Q_j E[∂F/∂E_j] = Σ_k y_k E[∂F/∂Ẑ^{W y_k}]``: the Ż term of Def. 4.1 / App. B,
    ``|W ẋ⟩ = Σ_y |y⟩ E[∂|x⟩/∂|W^⊤ ŷ⟩]`` (hats are ``C E``, vectors ``C Q``, same ``C``).

    Parameters
    ----------
    E, Q : ndarray, shape (R, K, N)
        Innovations and basis of the family (first ``rank[r]`` rows used).
    rank : ndarray of int64, shape (R,)
    F : ndarray, shape (R, B, N)
        The dependent variables (the vectors being multiplied by the other side of ``W``).
    scale : float
    out : ndarray, shape (R, B, N)
        Accumulated into.

    Notes
    -----
    jit-compiled; writes into ``out``.
    """
    R, _, N = F.shape
    for r in range(R):
        q = rank[r]
        if q > 0:
            gamma = np.dot(E[r, :q], F[r].T) * (scale / N)  # (q, B)
            out[r] += np.dot(gamma.T, Q[r, :q])


@jit
def memory_product(Ykey, Yval, n_mem, F, scale, out):  # type: ignore[no-untyped-def]
    """SGD weight-update term: ``out[r, b] += scale · Σ_{k<n_mem} Yval_k ⟨Ykey_k | F_b⟩``.

    Forward: ``ΔW_t x = -(lr·m/B) Σ_{s<t, b} |δh̃_{s,b}⟩ ⟨x_{s,b}|x⟩`` (keys = forward vectors,
    values = backward vectors); backward ``ΔW_tᵀ y`` with the roles swapped (Program 1).

    Parameters
    ----------
    Ykey, Yval : ndarray, shape (R, K, N)
    n_mem : int
        Number of stored training vectors that the update contains.
    F : ndarray, shape (R, B, N)
    scale : float
    out : ndarray, shape (R, B, N)
        Accumulated into.

    Notes
    -----
    jit-compiled; writes into ``out``.
    """
    R, _, N = F.shape
    if n_mem == 0:
        return
    for r in range(R):
        w = np.dot(Ykey[r, :n_mem], F[r].T) * (scale / N)  # (n_mem, B)
        out[r] += np.dot(w.T, Yval[r, :n_mem])


@jit
def embed_inputs(X, U, out):  # type: ignore[no-untyped-def]
    """``|x^0_b⟩ = Σ_k ξ_{b,k} |U_k⟩``: ``out[r, b] = X[b] @ U[r]``, X (B, d), U (R, d, N).

    Notes
    -----
    jit-compiled; writes into ``out`` (R, B, N).
    """
    R, B, N = out.shape
    d = X.shape[1]
    for rb in range(R * B):
        r = rb // B
        b = rb - r * B
        for i in range(N):
            acc = 0.0
            for k in range(d):
                acc += X[b, k] * U[r, k, i]
            out[r, b, i] = acc


@jit
def readout(x, nV, out):  # type: ignore[no-untyped-def]
    """``f_{b,e} = ⟨nV_e | x_b⟩``: ``out[r, b, e] = Σ_i nV[r, e, i] x[r, b, i] / N``.

    Notes
    -----
    jit-compiled; writes into ``out`` (R, B, e).
    """
    R, B, N = x.shape
    n_out = nV.shape[1]
    for rb in range(R * B):
        r = rb // B
        b = rb - r * B
        for e in range(n_out):
            out[r, b, e] = dot1(nV[r, e], x[r, b]) / N


@jit(signatures=[types.void(SCALAR_FUNCTION, _A3, _A3, types.float64, _A3, _A3)])
def residual_post(phi, h, x, m, out, act):  # type: ignore[no-untyped-def]
    """Post-nonlin block output: ``out = x + m·MS(φ(h))``, MS = particle mean subtraction.

    ``act`` receives ``φ(h)`` (R, B, N).  Notes: jit-compiled; writes into ``out``, ``act``.
    """
    R, B, N = h.shape
    for rb in range(R * B):
        r = rb // B
        b = rb - r * B
        acc = 0.0
        for i in range(N):
            a = phi(h[r, b, i])
            act[r, b, i] = a
            acc += a
        mean = acc / N
        for i in range(N):
            out[r, b, i] = x[r, b, i] + m * (act[r, b, i] - mean)


@jit(signatures=[types.void(SCALAR_FUNCTION, _A3, _A3, _A3)])
def grad_post(dphi, h, g, out):  # type: ignore[no-untyped-def]
    """Backward through a post-nonlin block: ``out = φ'(h) ⊙ MS(g)`` (δh̃ of §1).

    Notes: jit-compiled; writes into ``out`` (R, B, N).
    """
    R, B, N = h.shape
    for rb in range(R * B):
        r = rb // B
        b = rb - r * B
        acc = 0.0
        for i in range(N):
            acc += g[r, b, i]
        mean = acc / N
        for i in range(N):
            out[r, b, i] = dphi(h[r, b, i]) * (g[r, b, i] - mean)


@jit(signatures=[types.void(SCALAR_FUNCTION, _A3, _A3)])
def apply_phi(phi, h, out):  # type: ignore[no-untyped-def]
    """``out = φ(h)`` elementwise.  Notes: jit-compiled; writes into ``out``."""
    R, B, N = h.shape
    for rb in range(R * B):
        r = rb // B
        b = rb - r * B
        for i in range(N):
            out[r, b, i] = phi(h[r, b, i])


@jit(signatures=[types.void(SCALAR_FUNCTION, _A3, _A3, _A3)])
def mul_dphi(dphi, h, v, out):  # type: ignore[no-untyped-def]
    """``out = φ'(h) ⊙ v``.  Notes: jit-compiled; writes into ``out``."""
    R, B, N = h.shape
    for rb in range(R * B):
        r = rb // B
        b = rb - r * B
        for i in range(N):
            out[r, b, i] = dphi(h[r, b, i]) * v[r, b, i]


@jit
def layer_norm(x, out, sigma):  # type: ignore[no-untyped-def]
    """Pre-LN in the limit: ``out = (x - E x)/σ``, ``σ = sqrt(E (x - E x)²)`` over particles.

    ``sigma`` (R, B) receives σ.  Notes: jit-compiled; writes into ``out`` and ``sigma``.
    """
    R, B, N = x.shape
    for rb in range(R * B):
        r = rb // B
        b = rb - r * B
        acc = 0.0
        for i in range(N):
            acc += x[r, b, i]
        mean = acc / N
        acc = 0.0
        for i in range(N):
            acc += (x[r, b, i] - mean) ** 2
        s = math.sqrt(acc / N)
        sigma[r, b] = s
        for i in range(N):
            out[r, b, i] = (x[r, b, i] - mean) / s


@jit
def layer_norm_backward(y, sigma, v, out):  # type: ignore[no-untyped-def]
    """Transpose Jacobian of :func:`layer_norm` at output ``y``: ``(v - E v - y ⟨y|v⟩)/σ``.

    Notes: jit-compiled; writes into ``out`` (R, B, N).
    """
    R, B, N = y.shape
    for rb in range(R * B):
        r = rb // B
        b = rb - r * B
        mean = 0.0
        yv = 0.0
        for i in range(N):
            mean += v[r, b, i]
            yv += y[r, b, i] * v[r, b, i]
        mean /= N
        yv /= N
        for i in range(N):
            out[r, b, i] = (v[r, b, i] - mean - y[r, b, i] * yv) / sigma[r, b]
