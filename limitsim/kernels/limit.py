"""Route R1 in the depth limit: the kernels at initialization as L → ∞ (α = 1/2).

The finite recursion of :mod:`limitsim.kernels.recursion` is Euler's method with step 1/L for
dK/dλ = a² F(K), so it converges at rate O(1/L); the backward factor integrates to
G(λ) = exp(a² ∫_λ^1 V(K(s)) ds) elementwise.  For α > 1/2 the limit is trivial, K(λ) = K^0
and G = 11ᵀ; for α < 1/2 there is no limit (the diagonal grows like exp(c' L^{1−2α}),
Claim 7.1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from limitsim.architecture import Architecture
from limitsim.gaussian import _moments as _kernels
from limitsim.kernels.recursion import _architecture, block_increment
from limitsim.nonlinearities.registry import Nonlinearity
from limitsim.validation import as_finite_array, check_limit_alpha, check_real

__all__ = ["MAX_ODE_EVALUATIONS", "DepthLimitKernels", "depth_limit_kernels"]

_ODE_TOL = {"rtol": 1e-11, "atol": 1e-13}
#: Right-hand-side evaluations allowed per depth-limit ODE solve (a regular solve needs a few
#: hundred; DOP853 uses 12 per step).
MAX_ODE_EVALUATIONS = 20_000


@dataclass(frozen=True, eq=False)
class DepthLimitKernels:
    """Kernels of the L → ∞ limit at depth fractions λ (unpacks as ``K, G``).

    Attributes
    ----------
    lambdas : ndarray, shape (Λ,)
    K, G : ndarray, shape (Λ, P, P)
        Forward and backward kernels at each λ.
    """

    lambdas: NDArray[np.float64]
    K: NDArray[np.float64]
    G: NDArray[np.float64]

    def __iter__(self) -> Iterator[NDArray[np.float64]]:
        return iter((self.K, self.G))


def depth_limit_kernels(
    X: ArrayLike,
    phi: str | Nonlinearity | None = None,
    *,
    a: float = 1.0,
    lambdas: ArrayLike,
    alpha: float = 0.5,
    arch: Architecture | None = None,
    block: Literal["post", "pre"] | None = None,
    block_depth: int | None = None,
    pre_ln: bool | None = None,
) -> DepthLimitKernels:
    """Kernels of the L → ∞ limit at depth fractions λ ∈ [0, 1].

    Solves dK/dλ = a² F(K), K(0) = X Xᵀ, and G(λ) = exp(a² ∫_λ^1 V(K)) (module docstring)
    with scipy's ``solve_ivp`` (DOP853, rtol 1e-11).  For the positively homogeneous family
    with the default block, the norms are closed-form, K_ii(λ) = K_ii(0) e^{a² v_φ λ} with
    v_φ = Var φ(z) for z ~ N(0, 1), and only the correlations ρ_ij obey the scalar ODE
    dρ/dλ = a² (c_φ(ρ) − v_φ ρ) (``tp6-notes.md`` §3.6).

    Parameters
    ----------
    X : ndarray, shape (P, d)
    phi : str or Nonlinearity
    a : float
        Branch multiplier (the block adds a L^-1/2 MS(φ(h))).
    lambdas : array_like, shape (Λ,)
        Depth fractions in [0, 1] (any order).
    alpha : float
        Branch exponent; 1/2 is the only value with a nontrivial limit.  α > 1/2 returns the
        trivial limit K(λ) = K^0, G = 11ᵀ; α < 1/2 raises (no limit).
    arch, block, block_depth, pre_ln
        As in :func:`init_kernels`.

    Returns
    -------
    DepthLimitKernels
    """
    X = as_finite_array(X, "X", 2)
    lam = np.atleast_1d(np.asarray(lambdas, dtype=np.float64))
    if lam.ndim != 1 or lam.size == 0 or not np.all((lam >= 0) & (lam <= 1)):
        raise ValueError("lambdas must be a non-empty 1-d array of depth fractions in [0, 1]")
    if not check_real("a", a) > 0:
        raise ValueError(f"a must be a finite number > 0, got {a}")
    alpha = check_real("alpha", alpha)
    check_limit_alpha(alpha, "; use init_kernels at finite depth")
    arch, options = _architecture(
        arch, phi=phi, block=block, block_depth=block_depth, pre_ln=pre_ln
    )
    phi_ = arch.phi
    K0 = X @ X.T
    P = K0.shape[0]
    if alpha > 0.5:
        return DepthLimitKernels(
            lambdas=lam,
            K=np.broadcast_to(K0, (lam.size, P, P)).copy(),
            G=np.ones((lam.size, P, P)),
        )
    default_block = arch.block == "post" and arch.block_depth == 1 and not arch.pre_ln
    if phi_.homogeneous is not None and default_block:
        return _homogeneous_limit(K0, phi_.homogeneous, a * a, lam)

    def rhs(_: float, y: NDArray[np.float64]) -> NDArray[np.float64]:
        forward, backward = block_increment(phi_, y[: P * P].reshape(P, P), **options)
        return (a * a) * np.concatenate([forward.ravel(), backward.ravel()])

    y0 = np.concatenate([K0.ravel(), np.zeros(P * P)])
    grid = np.union1d(lam, [1.0])
    what = f"phi={phi_.name!r}, a={a}"
    sol = _solve(rhs, y0, grid, what)
    K_path = sol.y[: P * P].T.reshape(-1, P, P)
    integral = sol.y[P * P :].T.reshape(-1, P, P)
    index = np.searchsorted(grid, lam)
    with np.errstate(over="ignore"):  # overflow: raised by _finite_limit
        G = np.exp(integral[-1] - integral[index])
    return _finite_limit(lam, K_path[index], G, what)


class _OutOfBudget(Exception):
    """Raised inside the right-hand side once MAX_ODE_EVALUATIONS is spent."""


def _solve(
    rhs: Callable[[float, NDArray[np.float64]], NDArray[np.float64]],
    y0: NDArray[np.float64],
    grid: NDArray[np.float64],
    what: str,
) -> Any:
    """``solve_ivp`` on λ ∈ [0, 1] (DOP853), bounded in evaluations, refusing non-finite values.

    Raises
    ------
    ValueError
        When the right-hand side is not finite, when more than :data:`MAX_ODE_EVALUATIONS`
        evaluations are needed, or when the solver stops before λ = 1; each names ``what``
        and λ.
    """
    from scipy.integrate import solve_ivp  # 0.14 s to import: only when a limit is asked for

    count = 0
    reached = 0.0

    def bounded(t: float, y: NDArray[np.float64]) -> NDArray[np.float64]:
        nonlocal count, reached
        count += 1
        reached = max(reached, t)
        if count > MAX_ODE_EVALUATIONS:
            raise _OutOfBudget
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite: raised just below
            out = rhs(t, y)
        if not (np.isfinite(out).all() and np.isfinite(y).all()):
            raise ValueError(
                f"depth-limit ODE ({what}): the kernels or their derivative are not finite at "
                f"depth fraction {t:.3g}; the kernels blow up before depth fraction 1, or "
                "phi's Gaussian expectations are not finite there"
            )
        return out

    try:
        sol = solve_ivp(bounded, (0.0, 1.0), y0, method="DOP853", t_eval=grid, **_ODE_TOL)
    except _OutOfBudget:
        raise ValueError(
            f"depth-limit ODE ({what}) needs more than {MAX_ODE_EVALUATIONS} evaluations "
            f"(reached depth fraction {reached:.3g}): the kernels blow up or vary too fast"
        ) from None
    if not sol.success:
        raise ValueError(
            f"depth-limit ODE ({what}) stopped at depth fraction {reached:.3g}: "
            f"{sol.message} (the kernels blow up before depth fraction 1)"
        )
    return sol


def _finite_limit(
    lam: NDArray[np.float64], K: NDArray[np.float64], G: NDArray[np.float64], what: str
) -> DepthLimitKernels:
    """The result, or ValueError when a kernel overflows float64."""
    if not (np.isfinite(K).all() and np.isfinite(G).all()):
        raise ValueError(
            f"depth-limit kernels ({what}) are not finite: they overflow float64; reduce the "
            "branch multiplier a or the input norms"
        )
    return DepthLimitKernels(lambdas=lam, K=K, G=G)


def _homogeneous_limit(
    K0: NDArray[np.float64], coefficients: tuple[float, float], a2: float, lam: NDArray[np.float64]
) -> DepthLimitKernels:
    """Closed-form norms + scalar correlation ODE for φ = c₊ relu − c₋ relu(−·)."""
    c_plus, c_minus = coefficients
    P = K0.shape[0]
    iu = np.triu_indices(P, k=1)
    diag = np.diag(K0)
    v = _kernels.homogeneous_correlation_rhs_diag(c_plus, c_minus)
    norms = np.sqrt(np.outer(diag, diag))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho0 = np.where(norms > 0, K0 / norms, 0.0)[iu]
    m = rho0.size

    def rhs(_: float, y: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.empty(2 * m)
        _kernels.homogeneous_correlation_rhs(c_plus, c_minus, y[:m], out[:m], out[m:])
        return a2 * out

    grid = np.union1d(lam, [1.0])
    y0 = np.concatenate([rho0, np.zeros(m)])
    what = f"homogeneous phi {coefficients}, a^2={a2}"
    sol = _solve(rhs, y0, grid, what)
    index = np.searchsorted(grid, lam)
    K = np.empty((lam.size, P, P))
    G = np.empty((lam.size, P, P))
    v_sigma, v_prime = v
    with np.errstate(over="ignore", invalid="ignore"):  # overflow: raised by _finite_limit
        for out_i, (k, lam_k) in enumerate(zip(index, lam, strict=True)):
            growth = diag * np.exp(a2 * v_sigma * lam_k)
            scale = np.sqrt(np.outer(growth, growth))
            corr = np.eye(P)
            corr[iu] = sol.y[:m, k]
            corr.T[iu] = sol.y[:m, k]
            K[out_i] = scale * corr
            log_g = np.full((P, P), a2 * v_prime * (1.0 - lam_k))
            log_g[iu] = sol.y[m:, -1] - sol.y[m:, k]
            log_g.T[iu] = log_g[iu]
            G[out_i] = np.exp(log_g)
    # zero-norm inputs have zero kernels (their correlation is meaningless)
    K[:, diag == 0, :] = 0.0
    K[:, :, diag == 0] = 0.0
    return _finite_limit(lam, K, G, what)
