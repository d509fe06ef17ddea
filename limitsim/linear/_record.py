"""Probe kernels of the exact linear limit (:class:`limitsim.Recorded` for route R2).

After training, the probe ξ is sent through forward-only passes with the weights of each
recorded step t (the stored kets of steps < t enter), and through backward passes seeded with
``δx̃^L = nV·1``.  A pass's ket at layer l is ``a^l + β Σ_{m<l} F_m`` (forward) or
``a^l + β Σ_{m≥l} B_m`` (backward): ``a^l`` on the stored base variables, ``F_m``/``B_m`` the
pass's own hats of block m+1, whose covariances with the stored hats (``Q``) and with each other
(``K``) the kernels return.  With ``E[l, m] = Σ_{s,j} a^l[F(m,s,j)] Q[m, (s,j)]``::

    ⟨x^l|x^k⟩ = a^l·Σ·a^k + β Σ_{m<k} E[l,m] + β Σ_{m<l} E[k,m] + β² Σ_{m<min(l,k)} ⟨x^m|x^m⟩
    β² ⟨h_t^l|h_s^l⟩ = Δa_t Σ Δa_s + β (Δa_t·Q_s + Δa_s·Q_t) + β² ⟨x_t^{l-1}|x_s^{l-1}⟩

(Δa = a^l − a^{l−1}, the increment of block l besides its own hat) and the backward analogue
with ``m ≥ l``.  ``x_steps[..., L] = ⟨x_t^L|x_s^L⟩`` is the forward covariance of the last
layer — ``C_{t,s,0}(1)`` in the paper's Γ/C notation; Thm 4.1 prints ``C_{t,s,1}(1)``, the δx̃
covariance, a typo decided against finite-width SGD in ``tests/test_linear_limit.py``.
Since φ = id and MS is the identity on kets, ``δh̃^l = δx̃^l``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from limitsim.linear import _kernels as lk
from limitsim.run import Record, Recorded
from limitsim.task import Task

__all__ = ["record_probe"]


def record_probe(state: Any, record: Record, task: Task, done: int) -> Recorded:
    """Kernels of ``record.probe_for(task.X)`` at ``record.steps`` (NaN beyond step ``done``).

    Parameters
    ----------
    state : limitsim.linear.limit._State
        The trained state (``done`` completed updates).
    record : Record
    task : Task
    done : int
        Last step whose weights are known (steps after a divergence are NaN).
    """
    steps = np.asarray(record.steps, dtype=np.int64)
    R, L = steps.size, state.L
    x_layers = np.full((R, L + 1, L + 1), np.nan)
    x_steps = np.full((R, R, L + 1), np.nan)
    h_steps = np.full((R, R, L), np.nan)
    dh_layers = np.full((R, L, L), np.nan) if record.backward else None
    ok = np.flatnonzero(steps <= min(done, state.done))
    if ok.size:
        with np.errstate(over="ignore", invalid="ignore"):  # a run near divergence gives inf
            _record(state, record, task, steps, ok, x_layers, x_steps, h_steps, dh_layers)
    return Recorded(
        steps=steps,
        x_layers=x_layers,
        x_steps=x_steps,
        h_steps=h_steps,
        dh_layers=dh_layers,
    )


def _record(
    state: Any,
    record: Record,
    task: Task,
    steps: NDArray[np.int64],
    ok: NDArray[np.intp],
    x_layers: NDArray[np.float64],
    x_steps: NDArray[np.float64],
    h_steps: NDArray[np.float64],
    dh_layers: NDArray[np.float64] | None,
) -> None:
    """Fill the recorded kernels of the probes at ``steps[ok]`` (module docstring)."""
    L = state.L
    S = int(steps[ok].max())
    probe = np.repeat(record.probe_for(task.X)[None, :], ok.size, axis=0)
    _, A, Q, K = state.forward(probe, steps[ok], S, layers=True, mutual=True)
    Y = _covariance_rows(state, A, steps[ok], S)
    iF = _hat_index(state, S, backward=False)
    beta = state.beta
    E = np.einsum("blsmj,bmsj->blm", A[:, :, iF], Q.reshape(ok.size, L, S, state.r))
    for i, b in enumerate(ok):
        cE = np.concatenate([np.zeros((L + 1, 1)), np.cumsum(E[i], axis=1)], axis=1)
        own = np.concatenate([[0.0], np.cumsum(K[i, i, :L])])
        x_layers[b] = (
            Y[i] @ A[i].T
            + beta * (cE + cE.T)
            + beta**2 * own[np.minimum.outer(np.arange(L + 1), np.arange(L + 1))]
        )
    x_steps[np.ix_(ok, ok)] = K
    dA, dY = np.diff(A, axis=1), np.diff(Y, axis=1)
    own_hat = dA[:, np.arange(L)[:, None, None], iF.transpose(1, 0, 2)]  # (p, L, S, r)
    cross = np.einsum("bmsj,cmsj->bcm", own_hat, Q.reshape(ok.size, L, S, state.r))
    h_steps[np.ix_(ok, ok)] = (
        np.einsum("bln,cln->bcl", dY, dA) / beta**2
        + (cross + cross.transpose(1, 0, 2)) / beta
        + K[:, :, :L]
    )
    if dh_layers is not None:
        seed = np.ones((ok.size, state.e))
        A, Q, K = state.backward(seed, steps[ok], S, layers=True, mutual=True)
        Y = _covariance_rows(state, A, steps[ok], S)
        iB = _hat_index(state, S, backward=True)
        E = np.einsum("blsmj,bmsj->blm", A[:, :, iB], Q.reshape(ok.size, L, S, state.r))
        for i, b in enumerate(ok):
            dh_layers[b] = _backward_gram(A[i], Y[i], E[i], K[i, i], beta)


def _backward_gram(
    A: NDArray[np.float64],
    Y: NDArray[np.float64],
    E: NDArray[np.float64],
    K: NDArray[np.float64],
    beta: float,
) -> NDArray[np.float64]:
    """``⟨δx̃^l|δx̃^k⟩`` for l, k = 1..L from one backward pass (module docstring)."""
    L = E.shape[1]
    suffix = np.cumsum(E[:, ::-1], axis=1)[:, ::-1]  # Σ_{m ≥ k} E[l, m], k = 0..L-1
    cE = np.concatenate([suffix, np.zeros((L + 1, 1))], axis=1)[1:, 1:]
    tail = np.cumsum(K[::-1])[::-1]  # Σ_{i ≥ k} ⟨δ^i|δ^i⟩
    own = np.append(tail[1:], 0.0)  # own[k] = Σ_{m ≥ k} Var(B_m) = Σ_{i > k} ⟨δ^i|δ^i⟩
    idx = np.arange(1, L + 1)
    gram: NDArray[np.float64] = (
        Y[1:] @ A[1:].T + beta * (cE + cE.T) + beta**2 * own[np.maximum.outer(idx, idx)]
    )
    return gram


def _covariance_rows(
    state: Any, A: NDArray[np.float64], t_of: NDArray[np.int64], S: int
) -> NDArray[np.float64]:
    """``Σ a`` for every layer of every pass (A: (p, L+1, off[S]))."""
    Y = np.zeros_like(A)
    for b in range(A.shape[0]):
        for layer in range(A.shape[1]):
            lk.apply_covariance(
                A[b, layer],
                int(t_of[b]),
                S,
                state.CF,
                state.CB,
                state.off,
                state.d,
                state.e,
                state.L,
                state.r,
                Y[b, layer],
            )
    return Y


def _hat_index(state: Any, S: int, *, backward: bool) -> NDArray[np.intp]:
    """Indices (S, L, r) of the forward (or backward) hats ``(s, m, j)`` of steps < S."""
    L, r = state.L, state.r
    s = state.off[:S, None, None]
    m = np.arange(L)[None, :, None]
    j = np.arange(r)[None, None, :]
    index: NDArray[np.intp] = (s + m * r + j + (L * r if backward else 0)).astype(np.intp)
    return index
