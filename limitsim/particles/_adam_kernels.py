"""Numba kernels of the particle simulator for Adam: updates on partner particles (route R3).

With Adam the update of entry (i, j) of a hidden matrix is a nonlinear function of particle
i's backward history and particle j's forward history (Tensor Programs IVb's nonlinear outer
products), so ``(ΔW_t x)_i = -lr E_j[D_t(i, j) x_j]`` is an expectation over a partner
particle j, estimated on a random cyclic pairing of each replica's particles
(``theory/algorithms.md`` §2 R3).  Layout as in :mod:`limitsim.particles._kernels`.  The
kernels run ``prange`` over (replica, particle) with serial inner loops in a fixed order, so
results do not depend on the number of numba threads.
"""

from __future__ import annotations

import math

from limitsim._numba import jit, prange

__all__ = ["adam_backward", "adam_directions", "adam_forward"]


@jit(parallel=True)
def adam_directions(Yrow, Ycol, n_steps, B, perm, pos, n_partners, cg, beta1, beta2, eps, D):  # type: ignore[no-untyped-def]
    """Summed Adam directions ``D_t(i, j) = Σ_{s<t} Q_s(i, j)`` for particle pairs.

    Entry ``(i, j)`` of the rescaled gradient at step ``s`` is
    ``g̃_s(i, j) = cg Σ_b Yrow[sB+b, i] Ycol[sB+b, j]`` (``Yrow``: backward vectors δh̃,
    ``Ycol``: forward vectors x).  ``Q_s = m̂_s / sqrt(v̂_s + ε)`` with bias-corrected moments
    (ε inside the square root, Def. 6.1).  The partners of particle ``i`` are
    ``perm[(pos[i] + k + 1) mod N]`` for ``k < n_partners`` (a random cyclic pairing).

    Parameters
    ----------
    Yrow, Ycol : ndarray, shape (R, K, N)
    n_steps : int
        Number of past steps ``t``.
    B : int
        Batch size.
    perm, pos : ndarray of int64, shape (R, N)
        A random permutation of the particles and its inverse.
    n_partners : int
    cg, beta1, beta2, eps : float
    D : ndarray, shape (R, N, M)
        Out: ``D[r, i, k] = D_t(i, partner_k(i))``.

    Notes
    -----
    jit-compiled, parallel over (replica, particle); writes into ``D``.  Cost O(N M t B).
    """
    R, _, N = Yrow.shape
    for ri in prange(R * N):
        r = ri // N
        i = ri - r * N
        for kk in range(n_partners):
            j = perm[r, (pos[r, i] + kk + 1) % N]
            m1 = 0.0
            m2 = 0.0
            acc = 0.0
            p1 = 1.0
            p2 = 1.0
            for s in range(n_steps):
                g = 0.0
                for b in range(B):
                    g += Yrow[r, s * B + b, i] * Ycol[r, s * B + b, j]
                g *= cg
                m1 = beta1 * m1 + (1.0 - beta1) * g
                m2 = beta2 * m2 + (1.0 - beta2) * g * g
                p1 *= beta1
                p2 *= beta2
                acc += (m1 / (1.0 - p1)) / math.sqrt(m2 / (1.0 - p2) + eps)
            D[r, i, kk] = acc


@jit(parallel=True)
def adam_forward(D, perm, pos, F, scale, out):  # type: ignore[no-untyped-def]
    """``out[r, b, i] += scale · (1/M) Σ_k D[r, i, k] F[r, b, partner_k(i)]``: (ΔW_t x)_i.

    Notes
    -----
    jit-compiled, parallel over (replica, particle); writes into ``out``.
    """
    R, B, N = F.shape
    M = D.shape[2]
    for ri in prange(R * N):
        r = ri // N
        i = ri - r * N
        for b in range(B):
            acc = 0.0
            for kk in range(M):
                acc += D[r, i, kk] * F[r, b, perm[r, (pos[r, i] + kk + 1) % N]]
            out[r, b, i] += scale * acc / M


@jit(parallel=True)
def adam_backward(D, perm, pos, G, scale, out):  # type: ignore[no-untyped-def]
    """``out[r, b, j] += scale · (1/M) Σ_k D[r, i_k, k] G[r, b, i_k]``: (ΔW_tᵀ y)_j.

    ``i_k = perm[(pos[j] - k - 1) mod N]`` are the particles whose ``k``-th partner is ``j``,
    so the same pairs as :func:`adam_forward` are used, read by column.

    Notes
    -----
    jit-compiled, parallel over (replica, particle); writes into ``out``.
    """
    R, B, N = G.shape
    M = D.shape[2]
    for rj in prange(R * N):
        r = rj // N
        j = rj - r * N
        for b in range(B):
            acc = 0.0
            for kk in range(M):
                i = perm[r, (pos[r, j] - kk - 1) % N]
                acc += D[r, i, kk] * G[r, b, i]
            out[r, b, j] += scale * acc / M
