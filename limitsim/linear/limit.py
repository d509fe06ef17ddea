"""Route R2: the exact infinite-width limit of a linear resnet trained by SGD.

The network (``theory/algorithms.md`` §1, φ = id, block depth 1, post block, frozen U and V)::

    x^0 = U ξ,   x^l = x^{l-1} + β MS(W^l x^{l-1}),   f = Vᵀ x^L,   β = a (L/L0)^-α

trained by SGD with the raw rate λ = η (L/L0)^(α-γ) on the batch-mean loss.  Both factors come
from :meth:`Parametrization.branch_multiplier` and :meth:`Parametrization.learning_rate`; the
update factor of Program 1 is ρ = λβ = η a (L/L0)^-γ.  MS is the identity here: every ket is a
linear combination of zero-mean Gaussians, so ``E|x⟩ = 0`` and ``MS|x⟩ = |x⟩ − E|x⟩ = |x⟩``.

**Coefficient form** (Program 1, Lemma C.1 and App. D.3 of Tensor Programs VI;
``theory/tp6-notes.md`` §3.1–3.3).  At n = ∞ every ket is a deterministic linear combination
of independent groups of Gaussian base variables: ``|U_i⟩`` (one per input coordinate),
``|nV_k⟩`` (one per output) and, for every block and step, the forward hats ``|W_0 x̂⟩`` and the
backward hats ``|W_0ᵀ δ̂⟩``.  Hats of one matrix and direction have the covariance of the vectors
they multiplied; all other pairs are independent, so the covariance is block diagonal.  The Ż
term of ``|W_0 x⟩`` is ``Σ_y |y⟩ ∂|x⟩/∂|W_0ᵀ ŷ⟩``: a coefficient read off the vector.

**Channels.**  The weight update of a step is ``ΔW = −(ρ/n) Σ_b δx̃_b x_bᵀ / B`` and the backward
pass is linear in its seed, so with ``χ = A S`` (A: B×r, S: r×e, r = min(B, e)) the update is
``−(ρ/n) Σ_j w_j z_jᵀ`` with r backward kets ``w_j`` (seeds ``Σ_k S_jk nV_k``) and r forward kets
``z_j = Σ_b A_bj x_b / B``.  By induction on the steps every ket depends on the per-example hats
only through the ``z_j`` hats, so the base variables are per (block, step, channel) instead of
(block, step, example): the same limit, exactly, with r ≤ B (r = 1 for scalar outputs).  Each
example's output is read by a forward pass that is not stored (or, when the input dimension is
smaller, by passes of the d basis inputs: the forward map is linear in the input).

**Paper typos decided here** (tests in ``tests/test_linear_limit.py`` against finite-width SGD):

- the Ż/update sums run over ``s = 0..t−1`` (the paper prints ``s = 1``, which would discard the
  first step's update: ``f_1 = f_0 = 0`` exactly, while finite-width SGD learns at step 1);
- the feature kernel of the last layer is the *forward* covariance ``⟨x_t^L|x_s^L⟩``
  (``C_{t,s,0}(1)``; Thm 4.1 prints ``C_{t,s,1}(1)``, the δx̃ covariance ``χ_t·χ_s``): it is what
  ``Recorded.x_steps[..., L]`` holds, see :mod:`limitsim.linear._record`.

**Cost.**  T steps, L blocks, r channels: memory ``≈ 2 r² L² T²`` floats (every stored ket of step
s lives on the variables of steps ≤ s), time ``≈ 4 L² r² (p + 2r) Σ_t t²`` for p read-out passes
per step: O(T³ L²), against the naive O(T² L (TL)²) of dense quadratic forms.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from limitsim.architecture import Architecture
from limitsim.linear import _kernels as lk
from limitsim.linear._record import record_probe
from limitsim.nonlinearities.registry import Nonlinearity, nonlinearity
from limitsim.parametrization import Parametrization
from limitsim.run import Record, Run, check_training_inputs
from limitsim.task import Task
from limitsim.validation import check_depth, check_limit_alpha, check_positive_real, diverged

__all__ = ["linear_limit"]


def linear_limit(
    task: Task,
    param: Parametrization,
    *,
    depth: int,
    record: Record | None = None,
    phi: str | Nonlinearity = "linear",
    divergence_bound: float = 1e8,
) -> Run:
    """Train the n = ∞ limit of a depth-L linear resnet on ``task`` (route R2, exact).

    Parameters
    ----------
    task : Task
        Batches ``X`` (T, B, d), targets ``Y`` (T, B, e), ``"mse"`` or ``"xent"``, optional
        ``eval_X`` (P, d).
    param : Parametrization
        Any (α ≥ 1/2, γ, a, η, base depth) with ``optimizer="sgd"``.
    depth : int
        Number of blocks L ≥ 1.
    record : Record, optional
        Probe kernels to record (forward-only passes of ``record.probe_for(task.X)`` with the
        weights before each recorded step's update; the backward kernel ``dh_layers`` uses the
        seed ``δx̃^L = nV·1``).
    phi : str or Nonlinearity
        Must be the identity (``"linear"``); accepted for symmetry with ``train_finite``.
    divergence_bound : float
        Outputs with non-finite values or ``|f|`` above this stop the run (``Run.diverged``).

    Returns
    -------
    Run
        ``route="linear_limit"``: ``f`` (T, B, e) before each step's update, ``loss`` (T,),
        ``f_eval`` (T, P, e) when the task has ``eval_X``, ``recorded`` when requested.
        Deterministic (no sampling).

    Raises
    ------
    ValueError
        Nonlinear ``phi`` (use :func:`limitsim.simulate_limit`, the particle simulator), Adam,
        α < 1/2 (unstable at initialization, Claim 7.1), record steps beyond T.
    TypeError
        ``task``, ``param`` or ``record`` of the wrong type.
    """
    L = check_depth(depth)
    _check_inputs(task, param, phi, record)
    bound = check_positive_real("divergence_bound", divergence_bound)
    T, B, d, e = task.steps, task.batch_size, task.d_in, task.d_out
    beta = param.branch_multiplier(L)
    rho = param.learning_rate(L) * beta
    r = min(B, e)
    keep_last = record is not None and record.steps[-1] == T
    state = _State(d=d, e=e, L=L, r=r, T=T, beta=beta, rho=rho)
    f = np.full((T, B, e), np.nan)
    loss = np.full(T, np.nan)
    P = 0 if task.eval_X is None else task.eval_X.shape[0]
    f_eval = None if task.eval_X is None else np.full((T, P, e), np.nan)
    diverged_step = None
    for t in range(T):
        inputs = task.X[t] if task.eval_X is None else np.vstack([task.X[t], task.eval_X])
        out = state.readout(t, inputs)
        if diverged(out, bound):
            diverged_step = t
            break
        f[t] = out[:B]
        loss[t] = task.value(f[t], task.Y[t])
        if f_eval is not None:
            f_eval[t] = out[B:]
        if t < T - 1 or keep_last:
            chi = task.chi(f[t], task.Y[t])
            A, S = (chi, np.eye(e)) if e <= B else (np.eye(B), chi)
            state.update(t, A.T @ task.X[t] / B, S)
    if diverged_step is None and keep_last and not np.all(np.isfinite(state.store)):
        diverged_step = T  # the last update overflowed: only the step-T probe sees it
    recorded = None
    if record is not None:
        done = T if diverged_step is None else diverged_step
        recorded = record_probe(state, record, task, done)
    options: dict[str, Any] = {
        "depth": L,
        "branch_multiplier": beta,
        "learning_rate": param.learning_rate(L),
        "channels": r,
        "divergence_bound": bound,
    }
    return Run(
        f=f,
        loss=loss,
        route="linear_limit",
        param=param,
        arch=Architecture("linear"),
        options=options,
        diverged=diverged_step is not None,
        diverged_step=diverged_step,
        f_eval=f_eval,
        recorded=recorded,
    )


def _check_inputs(task: object, param: object, phi: object, record: object) -> None:
    """The arguments the exact linear limit accepts (SGD, α ≥ 1/2, φ = identity)."""
    check_training_inputs(task, param, record)
    assert isinstance(param, Parametrization)
    if param.optimizer != "sgd":
        raise ValueError(
            f"linear_limit supports optimizer='sgd' only, got {param.optimizer!r}: the Adam limit "
            "is not Gaussian; use limitsim.simulate_limit (particle simulator) or train_finite"
        )
    check_limit_alpha(param.alpha)
    spec = nonlinearity(cast(Any, phi))
    if spec.homogeneous != (1.0, 1.0):
        raise ValueError(
            f"linear_limit is exact for phi = identity ('linear') only, got {spec.name!r}; for "
            "nonlinear phi use limitsim.simulate_limit (the particle simulator, route R3)"
        )


class _State:
    """Stored kets and hat covariances after each completed update (layout: _linear_kernels).

    Attributes
    ----------
    off : ndarray of int64, shape (T+1,)
        ``off[s]``: number of base variables of steps < s (plus U and nV).
    koff : ndarray of int64, shape (T+1,)
        Offsets of each step's stored kets in ``store``.
    store : ndarray, shape (koff[T],)
        Kets ``z_{s,j}^m`` and ``w_{s,j}^{m+1}`` of every completed step s.
    CF, CB : ndarray, shape (L, T r, T r)
        Forward and backward hat covariances per block.
    done : int
        Number of completed updates.
    """

    def __init__(self, *, d: int, e: int, L: int, r: int, T: int, beta: float, rho: float):
        self.d, self.e, self.L, self.r, self.T = d, e, L, r, T
        self.beta, self.rho = beta, rho
        self.off = (d + e + 2 * L * r * np.arange(T + 1)).astype(np.int64)
        sizes = 2 * r * L * self.off[1:]
        self.koff = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.store = np.zeros(int(self.koff[-1]))
        self.CF = np.zeros((L, T * r, T * r))
        self.CB = np.zeros((L, T * r, T * r))
        self.done = 0

    def _args(self) -> tuple[Any, ...]:
        return (self.store, self.koff, self.off, self.CF, self.CB, self.d, self.e, self.L, self.r)

    def _outputs(
        self, p: int, S: int, layers: bool, mutual: bool
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Out arrays of ``p`` passes over ``S`` steps: layer kets, Ż products, kernels."""
        L = self.L
        A = np.empty((p, L + 1 if layers else 0, int(self.off[S])))
        Q = np.zeros((p, L, S * self.r))
        K = np.empty((p, p, L + 1 if mutual else 0))
        return A, Q, K

    def forward(
        self,
        xi: NDArray[np.float64],
        t_of: NDArray[np.int64],
        S: int,
        *,
        layers: bool,
        mutual: bool,
    ) -> tuple[NDArray[np.float64], ...]:
        """Forward passes (see :func:`limitsim.linear._kernels.forward_passes`)."""
        a = np.empty((xi.shape[0], int(self.off[S])))
        A, Q, K = self._outputs(xi.shape[0], S, layers, mutual)
        lk.forward_passes(
            np.ascontiguousarray(xi, dtype=np.float64),
            t_of,
            S,
            self.beta,
            self.rho,
            *self._args(),
            a,
            A,
            Q,
            K,
        )
        return a, A, Q, K

    def backward(
        self,
        seed: NDArray[np.float64],
        t_of: NDArray[np.int64],
        S: int,
        *,
        layers: bool,
        mutual: bool,
    ) -> tuple[NDArray[np.float64], ...]:
        """Backward passes (see :func:`limitsim.linear._kernels.backward_passes`)."""
        A, Q, K = self._outputs(seed.shape[0], S, layers, mutual)
        lk.backward_passes(
            np.ascontiguousarray(seed, dtype=np.float64),
            t_of,
            S,
            self.beta,
            self.rho,
            *self._args(),
            A,
            Q,
            K,
        )
        return A, Q, K

    def readout(self, t: int, inputs: NDArray[np.float64]) -> NDArray[np.float64]:
        """Outputs (P, e) of the network before step t's update on ``inputs`` (P, d)."""
        d = self.d
        basis = d < inputs.shape[0]
        xi = np.eye(d) if basis else inputs
        a, *_ = self.forward(xi, np.full(xi.shape[0], t, np.int64), t, layers=False, mutual=False)
        out = a[:, d : d + self.e]
        if not basis:
            return out
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is checked by the caller
            return inputs @ out

    def update(self, t: int, zeta: NDArray[np.float64], seed: NDArray[np.float64]) -> None:
        """Store the kets of step t's update and their hats' covariances (Program 1, one step).

        The forward kets ``z_j`` start from ``zeta`` (r, d) on U, the backward kets ``w_j``
        from ``seed`` (r, e) on nV.
        """
        assert t == self.done
        r, L, n0, n1, beta = self.r, self.L, int(self.off[t]), int(self.off[t + 1]), self.beta
        t_of = np.full(r, t, np.int64)
        block = self.store[self.koff[t] : self.koff[t + 1]].reshape(2, r, L, n1)
        rows = slice(t * r, (t + 1) * r)
        _, A, Q, K = self.forward(zeta, t_of, t, layers=True, mutual=True)
        block[0, :, :, :n0] = A[:, :L]
        for m in range(L):
            self.CF[m, rows, : t * r] = Q[:, m]
            self.CF[m, : t * r, rows] = Q[:, m].T
            self.CF[m, rows, rows] = K[:, :, m]
        A, Q, K = self.backward(seed, t_of, t, layers=True, mutual=True)
        block[1, :, :, :n0] = A[:, 1:]
        for m in range(L):
            self.CB[m, rows, : t * r] = Q[:, m]
            self.CB[m, : t * r, rows] = Q[:, m].T
            self.CB[m, rows, rows] = K[:, :, m + 1]
        # own hats of step t (closed form, Lemma C.1's 𝟙[t = r ...] terms): z^l carries β on the
        # forward hats of blocks ≤ l, w^l on the backward hats of blocks > l.
        below = beta * np.tri(L, L, -1)
        hats = n0 + np.arange(L) * r
        for j in range(r):
            block[0, j][:, hats + j] = below
            block[1, j][:, hats + L * r + j] = below.T
        self.done = t + 1
