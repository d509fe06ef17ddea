"""Numba kernels of the exact linear limit (route R2, :mod:`limitsim.linear.limit`).

Layout shared with :class:`limitsim.linear.limit._State` (``d`` inputs, ``e`` outputs, ``L``
blocks, ``r`` channels per step; ``off[s] = d + e + 2 L r s``):

- a ket is a coefficient vector over the base variables ``[U (d) | nV (e) | step 0 | step 1 |
  …]``; the block of step ``s`` holds the forward hats ``F(m, s, j)`` at
  ``off[s] + m r + j`` and the backward hats ``B(m, s, j)`` at ``off[s] + L r + m r + j``
  (``m`` = block index 0..L−1, ``j`` = channel);
- covariance: identity on U and nV, ``CF[m]`` (T r, T r) on block m's forward hats
  (entries ``⟨z_s^m|z_{s'}^m⟩``), ``CB[m]`` on its backward hats (``⟨w_s^{m+1}|w_{s'}^{m+1}⟩``),
  zero elsewhere (hats of different matrices are independent);
- the stored kets of step ``s`` (support ``off[s+1]``) sit in the flat ``store`` from
  ``koff[s]``: ``z_{s,j}^m`` (input of block m+1, m = 0..L−1) at
  ``koff[s] + (j L + m) off[s+1]`` and ``w_{s,j}^{m+1}`` at ``koff[s] + ((r + j) L + m) off[s+1]``.

A *pass* propagates ``p`` temporary kets through the network with the weights of step
``t_of[b]`` (Program 1, Sec. 4 of the paper; ``theory/tp6-notes.md`` §3.1): the Ż coefficient
is read off the coefficient vector, the weight update enters through inner products with the
stored kets, and the pass's own new hats ``W_0 x̂`` are kept *implicitly* through ``v``, the
vector of their covariances with the stored hats (so ``⟨x|q⟩ = (Σa + v)·a_q`` for a stored ket
``q``).  All kernels are serial (no ``prange``): results are bit-for-bit reproducible.
"""

from __future__ import annotations

import numpy as np

from limitsim._numba import jit
from limitsim.gaussian._moments import dot1

__all__ = ["apply_covariance", "backward_passes", "forward_passes"]


@jit(inline="always")
def _axpy1(c, x, x0, y, y0, n):  # type: ignore[no-untyped-def]
    """``y[y0+i] += c x[x0+i]`` for i < n."""
    for i in range(n):
        y[y0 + i] += c * x[x0 + i]


@jit
def apply_covariance(a, t_a, S, CF, CB, off, d, e, L, r, y):  # type: ignore[no-untyped-def]
    """Covariance-weighted coefficients ``y = Σ a`` on the base variables of steps < S.

    Parameters
    ----------
    a : ndarray, shape (≥ off[t_a],)
        Coefficient vector supported on the variables of steps < ``t_a``.
    t_a, S : int
        Support of ``a`` and horizon of ``y`` (``t_a ≤ S``).
    CF, CB : ndarray, shape (L, T r, T r)
        Forward and backward hat covariances per block.
    off : ndarray of int64, shape (T+1,)
    d, e, L, r : int
    y : ndarray, shape (≥ off[S],)
        Out: ``y[:off[S]]``.

    Notes
    -----
    jit-compiled; writes into ``y``.  Cost ``2 L (S r)(t_a r)``: the covariance is block
    diagonal over (block, direction), so ``Σ`` never forms a dense matrix.
    """
    for i in range(d + e):
        y[i] = a[i]
    Lr = L * r
    for m in range(L):
        for s in range(S):
            for j in range(r):
                row = s * r + j
                acc_f = 0.0
                acc_b = 0.0
                for s2 in range(t_a):
                    base = off[s2] + m * r
                    for j2 in range(r):
                        col = s2 * r + j2
                        acc_f += CF[m, row, col] * a[base + j2]
                        acc_b += CB[m, row, col] * a[base + Lr + j2]
                y[off[s] + m * r + j] = acc_f
                y[off[s] + Lr + m * r + j] = acc_b


@jit(inline="always")
def _mutual(a, y, v, t_of, off, beta2, own, K_out, layer):  # type: ignore[no-untyped-def]
    """``K_out[b, c, layer] = ⟨x_b|x_c⟩`` for all pairs; then ``own += β² K`` (own-hat part)."""
    p = a.shape[0]
    for b in range(p):
        for c in range(b, p):
            nb = off[t_of[b]]
            nc = off[t_of[c]]
            val = dot1(y[b, :nc], a[c, :nc]) + dot1(v[c, :nb], a[b, :nb]) + own[b, c]
            K_out[b, c, layer] = val
            K_out[c, b, layer] = val
    for b in range(p):
        for c in range(p):
            own[b, c] += beta2 * K_out[b, c, layer]


@jit(inline="always")
def _covariances(a, y, v, t_of, S, CF, CB, off, d, e, L, r):  # type: ignore[no-untyped-def]
    """``y[b] = Σ a[b] + v[b]`` for every pass b: covariances with the stored variables."""
    for b in range(a.shape[0]):
        apply_covariance(a[b], t_of[b], S, CF, CB, off, d, e, L, r, y[b])
        for i in range(off[S]):
            y[b, i] += v[b, i]


@jit(inline="always")
def _scratch(p, N, n_hats):  # type: ignore[no-untyped-def]
    """Zeroed work arrays of ``p`` passes.

    Coefficients ``a``, ``v``, ``y`` (p, N), the own-hat kernel (p, p) and the Ż coefficients
    of one block (n_hats,).
    """
    return np.zeros((p, N)), np.zeros((p, N)), np.zeros((p, N)), np.zeros((p, p)), np.zeros(n_hats)


@jit(inline="always")
def _block_step(  # type: ignore[no-untyped-def]
    a, y, v, g, t_of, S, m, beta, rho, store, koff, off, L, r, Q_out, key, hat
):
    """One block of a pass (forward: ``key = 0, hat = 0``; backward: ``key = r, hat = L r``).

    The pass's hat of block m+1 gets the Ż inner products ``Q_out[b, m]`` with the stored
    kets of slot ``key`` (z for the forward pass, w for the backward) and its coefficients
    ``v`` on the family ``hat``; then ``a`` takes the update terms along the stored kets of
    the other slot, with coefficients read from the other family (before any is updated).
    """
    Lr = L * r
    for b in range(a.shape[0]):
        for s in range(S):
            n1 = off[s + 1]
            for j in range(r):
                start = koff[s] + ((key + j) * L + m) * n1
                q = dot1(y[b, :n1], store[start : start + n1])
                Q_out[b, m, s * r + j] = q
                v[b, off[s] + hat + m * r + j] = beta * q
        t = t_of[b]
        for s in range(t):  # read every Ż coefficient before updating a
            for j in range(r):
                g[s * r + j] = a[b, off[s] + (Lr - hat) + m * r + j] - rho * Q_out[b, m, s * r + j]
        for s in range(t):
            n1 = off[s + 1]
            for j in range(r):
                start = koff[s] + (((r - key) + j) * L + m) * n1
                _axpy1(beta * g[s * r + j], store, start, a[b], 0, n1)


@jit
def forward_passes(  # type: ignore[no-untyped-def]
    xi, t_of, S, beta, rho, store, koff, off, CF, CB, d, e, L, r, a_out, A_out, Q_out, K_out
):
    """Forward passes of ``p`` probe kets through the linear resnet with the weights of step t.

    For block ``m + 1`` (Program 1 with multiplier β and update factor ρ = η a L^-γ)::

        |W_t x⟩ = |W_0 x̂⟩ + Σ_{s<t, j} |w_{s,j}^{m+1}⟩ (∂|x⟩/∂|B(m, s, j)⟩ − ρ ⟨z_{s,j}^m | x⟩)
        |x^{m+1}⟩ = |x^m⟩ + β |W_t x⟩

    The sum runs over s = 0..t−1.  The paper (Sec. 4, expansion after Def. 4.1) prints
    ``Σ_{s=1}``, which would drop the first step's update (then ``f_1 = f_0 = 0``);
    finite-width SGD decides for s = 0 (``tests/test_linear_limit.py``).

    Parameters
    ----------
    xi : ndarray, shape (p, d)
        Inputs: ``|x^0⟩ = Σ_i ξ_i |U_i⟩``.
    t_of : ndarray of int64, shape (p,)
        Step whose weights each pass uses (stored kets of steps < t enter); ``t ≤ S``.
    S : int
        Horizon: inner products with the stored ``z`` of all steps < S are computed (Q_out).
    beta, rho : float
        Branch multiplier ``a (L/L0)^-α`` and update factor (learning rate × multiplier).
    store, koff, off, CF, CB, d, e, L, r
        The stored kets and covariances (module docstring).
    a_out : ndarray, shape (p, off[S])
        Out: coefficients of ``x^L`` on the stored variables (``a_out[:, d:d+e]`` = f).
    A_out : ndarray, shape (p, nA, off[S])
        Out: coefficients of ``x^l`` for l < nA (nA = 0 records nothing).
    Q_out : ndarray, shape (p, L, S r)
        Out: ``⟨x^m | z_{s,j}^m⟩`` = covariance of the pass's hat of block m+1 with
        ``F(m, s, j)``.
    K_out : ndarray, shape (p, p, nK)
        Out: ``⟨x_b^l | x_c^l⟩`` for l < nK (nK = 0 or L+1).

    Notes
    -----
    jit-compiled; writes into the outputs.  Cost per pass ``≈ 4 L² (t r)²`` flops.
    """
    p = xi.shape[0]
    N = off[S]
    nA = A_out.shape[1]
    nK = K_out.shape[2]
    a, v, y, own, g = _scratch(p, N, S * r)
    for b in range(p):
        for i in range(d):
            a[b, i] = xi[b, i]
    for m in range(L):
        _covariances(a, y, v, t_of, S, CF, CB, off, d, e, L, r)
        if m < nA:
            A_out[:, m, :] = a
        if m < nK:
            _mutual(a, y, v, t_of, off, beta * beta, own, K_out, m)
        _block_step(a, y, v, g, t_of, S, m, beta, rho, store, koff, off, L, r, Q_out, 0, 0)
    if L < nA:
        A_out[:, L, :] = a
    if L < nK:
        _covariances(a, y, v, t_of, S, CF, CB, off, d, e, L, r)
        _mutual(a, y, v, t_of, off, beta * beta, own, K_out, L)
    a_out[:, :] = a


@jit
def backward_passes(  # type: ignore[no-untyped-def]
    seed, t_of, S, beta, rho, store, koff, off, CF, CB, d, e, L, r, A_out, Q_out, K_out
):
    """Backward passes ``δx̃^{l-1} = δx̃^l + β W_t^{l⊤} δx̃^l`` of ``p`` kets (Program 1).

    For block ``m + 1``, with ``|δ⟩ = |δx̃^{m+1}⟩``::

        |W_t^⊤ δ⟩ = |W_0^⊤ δ̂⟩ + Σ_{s<t, j} |z_{s,j}^m⟩ (∂|δ⟩/∂|F(m, s, j)⟩ − ρ ⟨w_{s,j}^{m+1} | δ⟩)

    (the Ż sum also runs over the forward hats of step t itself, but ``δx̃_t`` has no component
    on them in a linear network: their coefficients vanish, so they are skipped).

    Parameters
    ----------
    seed : ndarray, shape (p, e)
        ``|δx̃^L⟩ = Σ_k seed_k |nV_k⟩``.
    t_of, S, beta, rho, store, koff, off, CF, CB, d, e, L, r
        As in :func:`forward_passes`.
    A_out : ndarray, shape (p, L+1, off[S]) or (p, 0, off[S])
        Out: coefficients of ``δx̃^l``, l = 0..L (when recorded).
    Q_out : ndarray, shape (p, L, S r)
        Out: ``⟨δx̃^{m+1} | w_{s,j}^{m+1}⟩`` (covariance of the pass's backward hat of block
        m+1 with ``B(m, s, j)``).
    K_out : ndarray, shape (p, p, L+1) or (p, p, 0)
        Out: ``⟨δx̃_b^l | δx̃_c^l⟩``, l = 0..L (when recorded).

    Notes
    -----
    jit-compiled; writes into the outputs.
    """
    p = seed.shape[0]
    N = off[S]
    record_a = A_out.shape[1] > 0
    record_k = K_out.shape[2] > 0
    a, v, y, own, g = _scratch(p, N, S * r)
    for b in range(p):
        for k in range(e):
            a[b, d + k] = seed[b, k]
    for m in range(L - 1, -1, -1):
        _covariances(a, y, v, t_of, S, CF, CB, off, d, e, L, r)
        if record_a:
            A_out[:, m + 1, :] = a
        if record_k:
            _mutual(a, y, v, t_of, off, beta * beta, own, K_out, m + 1)
        _block_step(a, y, v, g, t_of, S, m, beta, rho, store, koff, off, L, r, Q_out, r, L * r)
    if record_a:
        A_out[:, 0, :] = a
    if record_k:
        _covariances(a, y, v, t_of, S, CF, CB, off, d, e, L, r)
        _mutual(a, y, v, t_of, off, beta * beta, own, K_out, 0)
