"""The paper's Def. E.1 recursion in discrete-depth coefficient form (and its corrections).

Every ket ``|x_τ^l⟩``, ``|δx̃_τ^l⟩`` (τ = t·B + b indexes the training vectors) is a linear
combination of base variables (``tp6-notes.md`` §3.1–3.4): ``|U_k⟩, |nV_e⟩`` (identity
covariance), the forward bases ``F(σ, m)`` = ``MS φ(Ŵ^m x_σ^{m-1})`` and the backward bases
``B(σ, m)`` = ``Ŵ^{m⊤} δh̃_σ^m`` of block m.  Bases of different groups are independent; within
block m their covariances are ``V0^m = Σ_φ[C0^m]`` (``C0^m_{τσ} = ⟨x_τ^{m-1}|x_σ^{m-1}⟩``) and
``V1^m``.  With the multiplier ``m_L = a (L/L0)^-α`` and ``u = lr·m_L/B`` (SGD), block l maps

    x_τ^l = x_τ^{l-1}
            + m_L [F(τ,l) + Σ_{σ<tB} V'_{τσ} (∂x_τ^{l-1}/∂B(σ,l) − u C0_{τσ}) δx̃_σ^l]
    δx̃_τ^{l-1} = δx̃_τ^l
            + m_L [B(τ,l) + Σ_{σ<tB} (Vx_{τσ} ∂δx̃_τ^l/∂F(σ,l) − u V'_{τσ} C1_{τσ}) x_σ^{l-1}
                   + same-step term]

with ``V' = V_φ'[C0^l]`` (Def. E.1's law-of-large-numbers replacement of φ'(ĥ_τ)φ'(ĥ_σ)) and
``f_τ = ∂x_τ^L/∂nV``, ``δx̃_τ^L = χ_τ nV``.  Its Euler form in p = l/L is Def. E.1; L → ∞ is
taken by extrapolation in :mod:`limitsim.particles.depth`.  Two variants:

``"printed"`` (Def. E.1 as printed, reading the free indices t', s' of its C formula as
summed): ``V1 = Σ_φ[C1]``, ``Vx = V_{φc|φ'} = Cov(φ'(z), φ'(y))``, no same-step term.

``"corrected"`` (``tp6-notes.md`` §3.4 items 1–3): ``V1 = V' ∘ C1`` (⟨δh̃_τ|δh̃_σ⟩),
``Vx = V'`` (the mean subtraction acts on the ket, not on the derivative, so the Ż factor is
``E φ'(z)φ'(y)``; this restores Prop. 4.4 at φ = id), and App. F.1's same-step term
``|x_τ^{l-1}⟩ E[∂δh̃_τ/∂ĥ_τ]`` with ``E[∂δh̃_τ/∂ĥ_τ] = V'_{ττ} ∂δx̃_τ/∂F(τ,l)
+ Σ_ρ ∂δx̃_τ/∂F(ρ,l) E[φ''(z_τ) MS φ(z_ρ)]``.  For φ = id the corrected recursion is the exact
finite-depth linear limit (Program 1 / Lemma C.1, general a, η, α, γ), which
``tests/test_depth.py`` uses as the independent linear reference.

Not in either variant (a hypothesis for the measured gap to the simulator): in
``E[∂δh̃_τ/∂ĥ_σ]`` (σ < τ), φ′(h_τ) also depends on ĥ_σ through ``ΔW_τ x_τ`` and ``ḣ_τ``
(both contain φ′(ĥ_σ)·δx̃_σ), which adds ``E[φ''(z_τ)φ''(z_σ)]``-weighted terms of the same
order as the ones kept (O(1/L) per block, O(1) in total); App. F.1 drops them by replacing
φ′(h_τ) with φ′(ĥ_τ).  For relu and abs ``E φ''φ''`` is a density at 0 that is infinite for
repeated inputs, so the Taylor expansion behind Def. E.1 is not uniform there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from limitsim.nonlinearities.registry import Nonlinearity
from limitsim.parametrization import Parametrization
from limitsim.task import Task

__all__ = ["VARIANTS", "solve_def_e1"]

VARIANTS = ("printed", "corrected")
_DEGREE = 64


def solve_def_e1(
    task: Task, param: Parametrization, act: Nonlinearity, depth: int, variant: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The discrete Def. E.1 recursion at depth ``depth``.

    Returns
    -------
    f : ndarray, shape (T, B, e)
        Outputs before each step's update.
    C0 : ndarray, shape (L, K, K)
        Forward kernels ``⟨x_τ^{l-1}|x_σ^{l-1}⟩`` of the training vectors (K = T·B).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    state = _Recursion(task, param, act, depth, corrected=variant == "corrected")
    f_out = np.zeros((task.steps, task.batch_size, task.d_out))
    for t in range(task.steps):
        f_out[t] = state.forward(t)
        state.backward(t, task.chi(f_out[t], task.Y[t]))
    return f_out, state.C0


class _Recursion:
    """Coefficients and kernels of the Def. E.1 recursion, one training vector group per step.

    Every vector is a coefficient array over [group G (d + e) | F (σ, block) | B (σ, block)],
    per layer: ``xG, xF, xB`` for the forward vectors ``x^l``, ``dG, dF, dB`` for the
    backward ``δx̃^l``; ``C0``/``C1`` are their kernels, ``V0, V1, Vp, Vx, S`` the Gaussian
    factors of each block (:func:`_block_moments`).
    """

    def __init__(
        self, task: Task, param: Parametrization, act: Nonlinearity, depth: int, corrected: bool
    ) -> None:
        T, B, d, e = task.steps, task.batch_size, task.d_in, task.d_out
        K, L = T * B, depth
        self.task, self.act, self.corrected, self.B, self.d, self.L = task, act, corrected, B, d, L
        self.m = param.branch_multiplier(depth)
        self.u = param.learning_rate(depth) * self.m / B
        self.xG, self.dG = np.zeros((L + 1, K, d + e)), np.zeros((L + 1, K, d + e))
        self.xF, self.dF = np.zeros((L + 1, K, K, L)), np.zeros((L + 1, K, K, L))
        self.xB, self.dB = np.zeros((L + 1, K, K, L)), np.zeros((L + 1, K, K, L))
        self.V0, self.V1 = np.zeros((L, K, K)), np.zeros((L, K, K))
        self.C0, self.C1 = np.zeros((L, K, K)), np.zeros((L, K, K))
        self.Vp, self.Vx, self.S = np.zeros((L, K, K)), np.zeros((L, K, K)), np.zeros((L, K, K))

    def inner(
        self, a: tuple[NDArray[np.float64], ...], b: tuple[NDArray[np.float64], ...]
    ) -> NDArray[np.float64]:
        """Kernel of the vectors with coefficients ``a = (G, F, B)`` and ``b``."""
        out = a[0] @ b[0].T
        out += np.einsum("atm,btm->ab", np.einsum("asm,mst->atm", a[1], self.V0), b[1])
        out += np.einsum("atm,btm->ab", np.einsum("asm,mst->atm", a[2], self.V1), b[2])
        return out

    def forward(self, t: int) -> NDArray[np.float64]:
        """Forward pass of step ``t``'s batch; returns its outputs (B, e)."""
        B, m, u, xG, xF, xB = self.B, self.m, self.u, self.xG, self.xF, self.xB
        idx = np.arange(t * B, (t + 1) * B)
        cur, past = (t + 1) * B, t * B
        xG[0, idx, : self.d] = self.task.X[t]
        for layer in range(1, self.L + 1):
            lo, k = layer - 1, layer - 1  # previous layer index, block index
            C = self.inner(
                (xG[lo, idx], xF[lo, idx], xB[lo, idx]), (xG[lo, :cur], xF[lo, :cur], xB[lo, :cur])
            )
            self.C0[k, idx, :cur] = C
            self.C0[k][:cur, idx] = C.T
            _block_moments(
                self.act,
                self.C0[k, :cur, :cur],
                idx,
                self.V0[k],
                self.Vp[k],
                self.Vx[k],
                self.S[k],
                self.corrected,
            )
            coef = self.Vp[k, idx, :past] * (xB[lo, idx, :past, k] - u * self.C0[k, idx, :past])
            for src, dst in ((self.dG, xG), (self.dF, xF), (self.dB, xB)):
                dst[layer, idx] = dst[lo, idx] + m * np.tensordot(coef, src[layer, :past], 1)
            xF[layer, idx, idx, k] += m
        f: NDArray[np.float64] = xG[self.L, idx, self.d :]
        return f

    def backward(self, t: int, chi: NDArray[np.float64]) -> None:
        """Backward pass of step ``t``'s batch from the loss derivative ``chi`` (B, e)."""
        B, m, u, dG, dF, dB = self.B, self.m, self.u, self.dG, self.dF, self.dB
        idx = np.arange(t * B, (t + 1) * B)
        cur, past = (t + 1) * B, t * B
        dG[self.L, idx, self.d :] = chi
        for layer in range(self.L, 0, -1):
            k, lo = layer - 1, layer - 1
            C = self.inner(
                (dG[layer, idx], dF[layer, idx], dB[layer, idx]),
                (dG[layer, :cur], dF[layer, :cur], dB[layer, :cur]),
            )
            self.C1[k, idx, :cur] = C
            self.C1[k][:cur, idx] = C.T
            if self.corrected:
                self.V1[k, :cur, :cur] = self.Vp[k, :cur, :cur] * self.C1[k, :cur, :cur]
            else:
                self.V1[k, :cur, :cur] = self.act.sigma(self.C1[k, :cur, :cur])
            dxF = dF[layer, idx, :, k]  # ∂δx̃_τ^l / ∂F(σ, l), shape (B, K)
            coef = np.zeros((B, cur))
            coef[:, :past] = (
                self.Vx[k, idx, :past] * dxF[:, :past]
                - u * self.Vp[k, idx, :past] * self.C1[k, idx, :past]
            )
            if self.corrected:
                diag = self.Vp[k, idx, idx] * dxF[np.arange(B), idx]
                coef[np.arange(B), idx] += diag + np.sum(
                    dxF[:, :cur] * self.S[k, idx, :cur], axis=1
                )
            for src, dst in ((self.xG, dG), (self.xF, dF), (self.xB, dB)):
                dst[lo, idx] = dst[layer, idx] + m * np.tensordot(coef, src[lo, :cur], 1)
            dB[lo, idx, idx, k] += m


def _block_moments(
    act: Nonlinearity,
    C: NDArray[np.float64],
    idx: NDArray[np.int64],
    V0: NDArray[np.float64],
    Vp: NDArray[np.float64],
    Vx: NDArray[np.float64],
    S: NDArray[np.float64],
    corrected: bool,
) -> None:
    """Fill rows/columns ``idx`` of the Gaussian factors of one block from its kernel ``C``.

    ``V0 = Σ_φ(C)``, ``Vp = V_φ'(C)``, ``Vx`` = ``Vp`` (corrected) or ``Cov(φ', φ')``
    (printed), and (corrected) ``S_{τρ} = E[φ''(z_τ) MS φ(z_ρ)]``, computed by Gaussian
    integration by parts as ``(E[z_τ φ'(z_τ) MS φ(z_ρ)] − C_τρ V_φ'(C)_τρ)/C_ττ``, which only
    needs φ and φ' (so it holds for kinked φ too).
    """
    cur = C.shape[0]
    mean, second, vprime = act.moments(C)
    sigma = second - np.outer(mean, mean)
    for M, value in ((V0, sigma), (Vp, vprime)):
        M[idx, :cur] = value[idx]
        M[:cur, idx] = value[:, idx]
    if corrected:
        Vx[:cur, :cur] = Vp[:cur, :cur]
        diag = np.diag(C)
        if act.homogeneous is not None:  # Euler: z φ'(z) = φ(z)
            zdphi_phi = sigma
        else:
            zdphi_phi = _zdphi_phi(act, C) - np.outer(_zdphi_mean(act, diag), mean)
        S[:cur, :cur] = (zdphi_phi - C * vprime) / diag[:, None]
    else:
        dmean = _dphi_mean(act, np.diag(C))
        Vx[:cur, :cur] = vprime - np.outer(dmean, dmean)


def _rule(deg: int = _DEGREE) -> tuple[NDArray[Any], NDArray[Any]]:
    nodes, weights = np.polynomial.hermite_e.hermegauss(deg)
    return nodes, weights / np.sqrt(2 * np.pi)


def _dphi_mean(act: Nonlinearity, var: NDArray[np.float64]) -> NDArray[np.float64]:
    """E φ'(z), z ~ N(0, var): (c₊ + c₋)/2 for homogeneous φ, else E[z φ(z)]/var (Stein)."""
    if act.homogeneous is not None:
        return np.full(var.shape, 0.5 * sum(act.homogeneous))
    g, w = _rule()
    s = np.sqrt(var)[:, None]
    mean: NDArray[np.float64] = np.sum(w * g * act(s * g), axis=1) / s[:, 0]
    return mean


def _zdphi_mean(act: Nonlinearity, var: NDArray[np.float64]) -> NDArray[np.float64]:
    """E[z φ'(z)], z ~ N(0, var) (Gauss–Hermite)."""
    g, w = _rule()
    s = np.sqrt(var)[:, None]
    mean: NDArray[np.float64] = np.sum(w * s * g * act.derivative(s * g), axis=1)
    return mean


def _zdphi_phi(act: Nonlinearity, C: NDArray[np.float64]) -> NDArray[np.float64]:
    """E[z_i φ'(z_i) φ(z_j)] for z ~ N(0, C), all pairs (tensor Gauss–Hermite)."""
    g, w = _rule()
    s = np.sqrt(np.diag(C))
    rho = np.clip(C / np.outer(s, s), -1.0, 1.0)
    zi = s[:, None, None, None] * g[None, None, :, None]  # (P, 1, a, 1)
    zj = s[None, :, None, None] * (
        rho[:, :, None, None] * g[None, None, :, None]
        + np.sqrt(1 - rho**2)[:, :, None, None] * g[None, None, None, :]
    )  # (P, P, a, b)
    integrand = zi * act.derivative(zi) * act(zj)
    moments: NDArray[np.float64] = np.einsum("ijab,a,b->ij", integrand, w, w)
    return moments
