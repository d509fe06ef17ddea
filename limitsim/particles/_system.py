"""The particle system of route R3: hat families per matrix, and forward/backward passes.

A :class:`ParticleSystem` holds ``R`` independent replicas of ``N`` particles each, all
advanced together (every array has a leading replica axis).  It knows nothing about tasks
or losses: :mod:`limitsim.particles.simulate` drives it step by step.  The model is
``theory/algorithms.md`` §1 (block depth 1 or 2, post- or pre-nonlin block, optional
pre-LN, frozen input and output layers); the rules are §2 R3.

Per matrix ``W`` (``depth · block_depth`` of them) there are two independent hat families
(Def. 4.1): the *forward* family of the vectors ``u`` that ``W`` multiplied (``W u``) and the
*backward* family of the vectors ``g`` that ``Wᵀ`` multiplied.  ``W_t u`` is

    Ẑ^{W_0 u}  +  Ż^{W_0 u}  +  ΔW_t u
    (hat)         (Stein regression of u     (SGD: -(lr·m/B) Σ_{s<t,b} |g_{s,b}⟩⟨u_{s,b}|u⟩;
                  on the backward family)     Adam: -lr E_j[D_t(i, j) u_j], partner particles)

and ``W_tᵀ g`` the same with the families swapped (its Ż regression includes the forward
hats of the current step: the same-step term through φ′).  Forward Ż regressions at step t
use the backward hats of steps < t only (a prefix of the family; the later ones have zero
Stein coefficients), which matters for the side passes (evaluation inputs, probes) that run
after training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from limitsim.particles import _adam_kernels as pa
from limitsim.particles import _kernels as pk

__all__ = ["Family", "ParticleSystem", "SystemSpec"]

#: Residual-variance ratio below which a new vector counts as dependent (repeated input).
RANK_TOL = 1e-10


@dataclass(frozen=True, kw_only=True)
class SystemSpec:
    """Lowered configuration: numbers and jitted functions only (no Parametrization)."""

    depth: int
    block: str
    block_depth: int
    pre_ln: bool
    multiplier: float  # m = a (L/L0)^-α
    optimizer: str
    sgd_scale: float  # -(SGD learning rate)·m/B
    adam_lr: float  # learning_rate(depth, width=1): η (L/L0)^-γ; the 1/n cancels the mean
    adam_grad_scale: float  # gradient_scale(depth, width=1)·m/B
    beta1: float
    beta2: float
    eps: float
    n_partners: int | None  # None: all other particles of the replica (exact)
    phi: Any
    dphi: Any
    batch: int

    @property
    def n_matrices(self) -> int:
        """Number of hidden matrices, ``depth · block_depth``."""
        return self.depth * self.block_depth


class Family:
    """Hat family of one side of one matrix (see :mod:`limitsim.particles._kernels`).

    Attributes
    ----------
    Y : ndarray, shape (R, capacity, N)
        The vectors ``y_k`` the matrix (or its transpose) has multiplied, in order:
        ``Y[:, k]`` is the k-th vector of every replica (rows ``≥ count`` unused).
    Q : ndarray, shape (R, capacity, N)
        An orthonormal Gram–Schmidt basis of their span, ``⟨Q_i|Q_j⟩ = δ_ij`` (rows
        ``≥ rank[r]`` unused): ``y_k = Σ_j C_kj Q_j``.
    E : ndarray, shape (R, capacity, N)
        One standard-normal innovation per basis vector, orthonormal in the particle inner
        product; the hats are ``Ẑ^{W y_k} = Σ_j C_kj E_j`` (Def. 4.1), so their covariance
        is ``⟨y_k|y_l⟩``.  ``E`` is also the regressor set of the Ż (Stein) terms.
    rank : ndarray of int64, shape (R,)
        Basis vectors per replica (fewer than ``count`` when vectors repeat).
    count : int
        Vectors appended so far (the same in every replica).
    """

    def __init__(self, n_rep: int, capacity: int, n_particles: int) -> None:
        shape = (n_rep, capacity, n_particles)
        self.Y = np.zeros(shape)
        self.Q = np.zeros(shape)
        self.E = np.zeros(shape)
        self.rank = np.zeros(n_rep, dtype=np.int64)
        self.count = 0

    def append(
        self, U: NDArray[np.float64], rng: np.random.Generator, base: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Add the vectors ``U`` (R, B, N); return their hats, sampled conditionally.

        ``base`` (R, n_base, N): orthonormal rows the new innovations are orthogonal to.
        """
        n_new = U.shape[1]
        if self.count + n_new > self.Y.shape[1]:
            raise RuntimeError("hat family capacity exceeded (internal error)")
        eps = rng.standard_normal(U.shape)
        hat = np.empty_like(U)
        pk.append_vectors(
            self.Y, self.Q, self.E, self.count, self.rank, U, eps, base, RANK_TOL, hat
        )
        self.count += n_new
        return hat

    def state(self) -> tuple[int, NDArray[np.int64]]:
        """Size of the family, to :meth:`restore` after a temporary pass."""
        return self.count, self.rank.copy()

    def restore(self, state: tuple[int, NDArray[np.int64]]) -> None:
        """Forget the vectors appended since :meth:`state` was taken."""
        self.count, rank = state
        self.rank[:] = rank

    def add_stein(
        self, F: NDArray[np.float64], out: NDArray[np.float64], rank: NDArray[np.int64]
    ) -> None:
        """``out += Σ_k |y_k⟩ E[∂F/∂Ẑ_k]`` over the first ``rank[r]`` innovations (Ż term).

        Regressing on a prefix of the family is exact when ``F`` does not depend on the
        later hats (their Stein coefficients are zero), and avoids fitting noise to them.
        """
        pk.stein_correction(self.E, self.Q, rank, F, 1.0, out)


class ParticleSystem:
    """R replicas × N particles of the n = ∞ limit of the resnet (route R3).

    Parameters
    ----------
    spec : SystemSpec
    n_rep, n_particles : int
        Replicas and particles per replica.
    d_in, d_out : int
        Input and output dimensions (|U⟩ has ``d_in`` and |nV⟩ ``d_out`` values per particle).
    capacity : int
        Maximal number of vectors per hat family.
    rng : numpy.random.Generator
        The only source of randomness.
    """

    def __init__(
        self,
        spec: SystemSpec,
        *,
        n_rep: int,
        n_particles: int,
        d_in: int,
        d_out: int,
        capacity: int,
        rng: np.random.Generator,
    ) -> None:
        self.spec = spec
        self.rng = rng
        self.n_rep = n_rep
        self.N = n_particles
        # moment matching: |U_k⟩, |nV_e⟩ exactly centred and orthonormal over the particles
        base = rng.standard_normal((n_rep, d_in + d_out, n_particles))
        base -= base.mean(axis=2, keepdims=True)
        for r in range(n_rep):
            q, _ = np.linalg.qr(base[r].T)
            base[r] = q.T * np.sqrt(n_particles)
        self.U = np.ascontiguousarray(base[:, :d_in])
        self.nV = np.ascontiguousarray(base[:, d_in:])
        self.base = np.concatenate([np.ones((n_rep, 1, n_particles)), base], axis=1)
        self.fwd = [Family(n_rep, capacity, n_particles) for _ in range(spec.n_matrices)]
        self.bwd = [Family(n_rep, capacity, n_particles) for _ in range(spec.n_matrices)]
        self._adam: dict[int, tuple[NDArray[Any], NDArray[Any], NDArray[Any]]] = {}
        #: ranks of the backward families after each completed training step (index t)
        self.bwd_ranks: list[list[NDArray[np.int64]]] = [[f.rank.copy() for f in self.bwd]]

    # ------------------------------------------------------------------ matrices
    def _adam_state(self, M: int, n_steps: int) -> tuple[NDArray[Any], ...]:
        """Summed Adam directions on fresh random partner pairs for matrix ``M``."""
        if M not in self._adam:
            s = self.spec
            N = self.N
            n_partners = N - 1 if s.n_partners is None else s.n_partners
            perm = np.argsort(self.rng.random((self.n_rep, N)), axis=1)
            pos = np.argsort(perm, axis=1)
            D = np.empty((self.n_rep, N, n_partners))
            pa.adam_directions(
                self.bwd[M].Y,
                self.fwd[M].Y,
                n_steps,
                s.batch,
                perm,
                pos,
                n_partners,
                s.adam_grad_scale,
                s.beta1,
                s.beta2,
                s.eps,
                D,
            )
            self._adam[M] = (D, perm, pos)
        return self._adam[M]

    def _matrix(self, M: int, V: NDArray[np.float64], n_mem: int, forward: bool) -> Any:
        """``W_t^M V`` (forward) or ``W_t^{M⊤} V`` (backward) for vectors V (R, B, N).

        ``n_mem = t·B`` is the number of training vectors per family that make up the
        weight update ``ΔW_t`` (B per completed step): the passes take it in this form
        because the SGD memory kernel sums over those family rows, while the step index
        ``t = n_mem // B`` selects the backward ranks of step ``t`` and Adam's moments.
        """
        own, other = (self.fwd[M], self.bwd[M]) if forward else (self.bwd[M], self.fwd[M])
        step = n_mem // self.spec.batch
        out = own.append(V, self.rng, self.base)
        # a forward vector at step t depends only on the backward hats of steps < t
        rank = self.bwd_ranks[step][M] if forward else other.rank
        other.add_stein(V, out, rank)
        if n_mem == 0:
            return out
        if self.spec.optimizer == "sgd":
            pk.memory_product(own.Y, other.Y, n_mem, V, self.spec.sgd_scale, out)
        else:
            D, perm, pos = self._adam_state(M, step)
            apply = pa.adam_forward if forward else pa.adam_backward
            apply(D, perm, pos, V, -self.spec.adam_lr, out)
        return out

    # -------------------------------------------------------------------- passes
    def forward(self, X: NDArray[np.float64], n_mem: int) -> tuple[Any, list[Any], list[Any]]:
        """Forward pass of inputs ``X`` (B, d) with the weights ``W_t`` (``n_mem = t·B``).

        Returns ``(xs, hs, caches)``: ``xs[l]`` = x^l (R, B, N) for l = 0..L, ``hs[l-1]`` the
        pre-activation of block l's last φ (``W φ(x)`` for the pre-nonlin block), and the
        caches :meth:`backward` needs.
        """
        s = self.spec
        self._adam = {}
        x = np.empty((self.n_rep, X.shape[0], self.N))
        pk.embed_inputs(X, self.U, x)
        xs, hs, caches = [x], [], []
        for block in range(s.depth):
            M0 = block * s.block_depth
            z, sigma = x, None
            if s.pre_ln:
                z = np.empty_like(x)
                sigma = np.empty(x.shape[:2])
                pk.layer_norm(x, z, sigma)
            x_new = np.empty_like(x)
            if s.block == "pre":
                u = np.empty_like(x)
                pk.apply_phi(s.phi, z, u)
                h = self._matrix(M0, u, n_mem, True)
                x_new[:] = x + s.multiplier * h
                h1 = h
            else:
                h1 = self._matrix(M0, z, n_mem, True)
                h = h1
                if s.block_depth == 2:
                    u2 = np.empty_like(x)
                    pk.apply_phi(s.phi, h1, u2)
                    h = self._matrix(M0 + 1, u2, n_mem, True)
                act = np.empty_like(x)
                pk.residual_post(s.phi, h, x, s.multiplier, x_new, act)
            caches.append((z, sigma, h1, h))
            hs.append(h)
            x = x_new
            xs.append(x)
        return xs, hs, caches

    def backward(
        self, g: NDArray[np.float64], caches: list[Any], n_mem: int
    ) -> tuple[list[Any], list[Any]]:
        """Backward pass from ``δx̃^L = g`` (R, B, N).

        Returns ``(dhs, gs)``: δh̃ of every block (l = 1..L; the vector that the block's last
        matrix transposed multiplies) and ``gs[l]`` = δx̃^l for l = 0..L.  Must follow the
        :meth:`forward` pass whose ``caches`` it receives (same weights).
        """
        s = self.spec
        dhs: list[Any] = [None] * s.depth
        gs: list[Any] = [None] * (s.depth + 1)
        gs[s.depth] = g
        for block in range(s.depth - 1, -1, -1):
            M0 = block * s.block_depth
            z, sigma, h1, h = caches[block]
            dz = np.empty_like(g)
            if s.block == "pre":
                dhs[block] = g
                v = self._matrix(M0, g, n_mem, False)
                pk.mul_dphi(s.dphi, z, v, dz)
            else:
                gl = np.empty_like(g)
                pk.grad_post(s.dphi, h, g, gl)
                dhs[block] = gl
                v = self._matrix(M0 + s.block_depth - 1, gl, n_mem, False)
                if s.block_depth == 2:
                    g1 = np.empty_like(g)
                    pk.mul_dphi(s.dphi, h1, v, g1)
                    v = self._matrix(M0, g1, n_mem, False)
                dz = v
            if s.pre_ln:
                dz2 = np.empty_like(dz)
                pk.layer_norm_backward(z, sigma, dz, dz2)
                dz = dz2
            g = g + s.multiplier * dz
            gs[block] = g
        return dhs, gs

    def readout(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """``f = ⟨nV|x^L⟩`` per replica: (R, B, e)."""
        out = np.empty((self.n_rep, x.shape[1], self.nV.shape[1]))
        pk.readout(x, self.nV, out)
        return out

    def output_gradient(self, chi: NDArray[np.float64]) -> NDArray[np.float64]:
        """``δx̃^L_b = Σ_e χ_{b,e} |nV_e⟩`` (Program 1), χ (R, B, e) → (R, B, N)."""
        grad: NDArray[np.float64] = np.einsum("rbe,ren->rbn", chi, self.nV)
        return grad

    def end_training_step(self) -> None:
        """Mark the end of a training step (for the prefix regressions of later side passes)."""
        self.bwd_ranks.append([f.rank.copy() for f in self.bwd])

    def state(self) -> list[tuple[int, NDArray[np.int64]]]:
        """Sizes of all families (to undo a temporary side pass)."""
        return [f.state() for f in (*self.fwd, *self.bwd)]

    def restore(self, state: list[tuple[int, NDArray[np.int64]]]) -> None:
        """Forget every vector appended since :meth:`state`."""
        for family, st in zip((*self.fwd, *self.bwd), state, strict=True):
            family.restore(st)
