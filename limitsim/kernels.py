"""Route R1: kernels at initialization, at finite depth and in the depth limit.

At initialization the infinite-width network is Gaussian and its kernels obey deterministic
recursions (``theory/tp6-notes.md`` §3.6, ``theory/algorithms.md`` §2 R1).  With
``c = a² (L/L0)^-2α`` (the squared branch multiplier) and inputs ξ_1..ξ_P (K^0 = X Xᵀ, since U
has unit-variance entries):

=====================  ====================================  ==============================
block                  forward K^l − K^{l−1}                  backward factor on G^l
=====================  ====================================  ==============================
post (depth 1, MS)     c Σ_φ(K̃)                               1 + c V_φ′(K̃)
pre (W φ(x), no MS)    c M_φ(K̃)                               1 + c V_φ′(K̃)
post, block depth 2    c Σ_φ(M_φ(K̃))                          1 + c V_φ′(K̃) ∘ V_φ′(M_φ(K̃))
=====================  ====================================  ==============================

where M_φ(K) = E φ(z_i)φ(z_j) (no mean subtraction inside a block), Σ_φ = Cov, and
G^{l−1} = G^l ∘ factor ∘ N with G^L = 11ᵀ.  K̃ = K^{l−1} without pre-LN; with pre-LN K̃ is
the correlation matrix of K^{l−1} (LayerNorm divides each input's features by their RMS; the
kets are zero-mean, so its mean subtraction is void) and N_ij = 1/sqrt(K_ii K_jj) is the
Jacobian of that division (its rank-one projection term vanishes at n = ∞ because
⟨x̂|Ŵᵀδh̃⟩ = 0 at initialization).  The backward kernel is the same for every output
(independent, identically distributed columns of nV), so one (P, P) matrix per layer is
returned.  The backward recursion assumes the first backward pass sees independent weights
(gradient independence), which holds exactly at t = 0 for a zero-mean output layer: the Ż
terms are multiples of E[φ″(h) δx̃] = 0.

Depth limit (α = 1/2): the finite recursion is Euler's method with step 1/L for
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
from scipy.integrate import solve_ivp

from limitsim import _kernels
from limitsim._kernel_recursion import run_recursion
from limitsim._memory import check_memory
from limitsim.architecture import BLOCKS, Architecture, resolve
from limitsim.nonlinearities import Nonlinearity
from limitsim.parametrization import Parametrization
from limitsim.validation import (
    as_finite_array,
    check_depth,
    check_limit_alpha,
    check_real,
    check_type,
)

__all__ = [
    "BLOCKS",
    "MAX_DEPTH",
    "MAX_ODE_EVALUATIONS",
    "DepthLimitKernels",
    "InitKernels",
    "depth_limit_kernels",
    "init_kernels",
    "kernel_bytes",
]

_ODE_TOL = {"rtol": 1e-11, "atol": 1e-13}
#: Largest depth of the finite-depth recursion: it is Euler's method with step 1/L for the
#: depth ODE, so beyond this it only approaches :func:`depth_limit_kernels` (error O(1/L)).
MAX_DEPTH = 10**6
#: Right-hand-side evaluations allowed per depth-limit ODE solve (a regular solve needs a few
#: hundred; DOP853 uses 12 per step).
MAX_ODE_EVALUATIONS = 20_000


@dataclass(frozen=True, eq=False)
class InitKernels:
    """Forward and backward kernels at initialization (unpacks as ``K, G``).

    Attributes
    ----------
    K : ndarray, shape (L+1, P, P)
        ``K[l] = ⟨x^l(ξ_i) | x^l(ξ_j)⟩``, l = 0..L.
    G : ndarray, shape (L+1, P, P)
        ``G[l] = ⟨δx̃^l(ξ_i) | δx̃^l(ξ_j)⟩`` for the gradient of one output; ``G[L] = 11ᵀ``.
    """

    K: NDArray[np.float64]
    G: NDArray[np.float64]

    def __iter__(self) -> Iterator[NDArray[np.float64]]:
        return iter((self.K, self.G))

    @property
    def depth(self) -> int:
        """Number of blocks L."""
        return int(self.K.shape[0] - 1)


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


def _architecture(arch: Architecture | None, **loose: Any) -> tuple[Architecture, dict[str, Any]]:
    """The route's Architecture (pre block of depth 1) and its :func:`block_increment` options."""
    arch = resolve(arch, **loose)
    arch.require_pre_depth_one("block='pre' supports block_depth=1 only")
    return arch, {"block": arch.block, "block_depth": arch.block_depth, "pre_ln": arch.pre_ln}


def block_increment(
    phi: Nonlinearity, K: NDArray[np.float64], *, block: str, block_depth: int, pre_ln: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """One block's forward increment F(K) and backward factor V(K) (module docstring table).

    Returns
    -------
    forward : ndarray, shape (P, P)
        ``(K^l − K^{l−1}) / c``.
    backward : ndarray, shape (P, P)
        ``(factor − 1) / c`` including the pre-LN Jacobian.
    """
    scale = None
    if pre_ln:
        diag = np.sqrt(np.clip(np.diag(K), 0.0, None))
        scale = np.outer(diag, diag)
        with np.errstate(divide="ignore", invalid="ignore"):
            K = np.where(scale > 0, K / scale, 0.0)
    mean, second, vprime = phi.moments(K)
    if block == "pre":
        forward, backward = second, vprime
    elif block_depth == 1:
        forward, backward = second - np.outer(mean, mean), vprime
    else:
        mean2, second2, vprime2 = phi.moments(second)
        forward, backward = second2 - np.outer(mean2, mean2), vprime * vprime2
    if scale is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            backward = np.where(scale > 0, backward / scale, 0.0)
    return forward, backward


def init_kernels(
    X: ArrayLike,
    phi: str | Nonlinearity | None = None,
    *,
    depth: int,
    param: Parametrization,
    arch: Architecture | None = None,
    block: Literal["post", "pre"] | None = None,
    block_depth: int | None = None,
    pre_ln: bool | None = None,
) -> InitKernels:
    """Kernels K^0..K^L and G^0..G^L of the infinite-width network at initialization.

    Parameters
    ----------
    X : ndarray, shape (P, d)
        Inputs ξ_1..ξ_P; ``K^0 = X Xᵀ``.
    phi : str or Nonlinearity, optional
        Nonlinearity spec (see :func:`limitsim.nonlinearity`); default ``"relu"``.
    depth : int
        Number of blocks L ≥ 1.
    param : Parametrization
        Supplies the branch multiplier a (L/L0)^-α (any α: α < 1/2 shows the blow-up of
        Claim 7.1).
    arch : Architecture, optional
        φ, block, block depth and pre-LN in one value (:class:`limitsim.Architecture`).
        Block depth 2 needs the post block.
    block, block_depth, pre_ln : optional
        Loose alternative to ``arch`` (defaults ``"post"``, 1, False); a value that
        conflicts with ``arch`` raises ValueError.

    Returns
    -------
    InitKernels
        ``K`` and ``G`` of shape (L+1, P, P).

    Raises
    ------
    ValueError
        Before any work: for a depth above :data:`MAX_DEPTH` or kernel arrays larger than
        this machine's memory (:func:`kernel_bytes`).  After the recursion: when a kernel is
        not finite (it overflows float64), naming the first block where it happens.
    """
    X = as_finite_array(X, "X", 2)
    depth = check_depth(depth)
    if depth > MAX_DEPTH:
        raise ValueError(
            f"depth={depth} is more than {MAX_DEPTH} blocks: the finite-depth recursion is "
            "Euler's method for the depth ODE (error O(1/L)); use depth_limit_kernels for "
            "L -> infinity (limitsim kernels prints it as K_limit, G_limit)"
        )
    check_type("param", param, Parametrization)
    arch, options = _architecture(
        arch, phi=phi, block=block, block_depth=block_depth, pre_ln=pre_ln
    )
    P = X.shape[0]
    check_memory(
        kernel_bytes(depth, P),
        what=f"init_kernels at depth={depth} with P={P} inputs",
        state="kernel arrays (K, G and the backward factors)",
        advice="reduce the depth or the number of inputs",
    )
    c = param.branch_multiplier(depth) ** 2
    K = np.empty((depth + 1, P, P))
    factors = np.empty((depth, P, P))
    K[0] = X @ X.T
    G = np.empty_like(K)
    G[depth] = 1.0
    # one compiled call; it stops at the first layer whose moments need quadrature
    done, finite = run_recursion(arch.phi, K, factors, G, c, **options)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow: raised below, by layer
        for layer in range(done, depth + 1):
            forward, backward = block_increment(arch.phi, K[layer - 1], **options)
            K[layer] = K[layer - 1] + c * forward
            factors[layer - 1] = 1.0 + c * backward
        if done <= depth:
            for layer in range(depth, 0, -1):
                G[layer - 1] = G[layer] * factors[layer - 1]
    if done <= depth or not finite:
        _check_finite(K, "K", arch.phi, order=1)
        _check_finite(G, "G", arch.phi, order=-1)
    return InitKernels(K=K, G=G)


def kernel_bytes(depth: int, n_inputs: int) -> int:
    """Bytes :func:`init_kernels` holds at its peak (L = ``depth``, P = ``n_inputs``).

    K and G, float64 arrays of shape (L+1, P, P), the L backward factors (P, P), and the
    boolean masks of the finiteness check, shapes (L+1, P, P) and (L+1,):
    ``P² (25 L + 17) + L + 1`` bytes.  The masks are allocated only where the compiled
    recursion stops early or finds a non-finite entry; a finite result of the compiled
    recursion stays below this bound.
    """
    return n_inputs * n_inputs * (8 * (3 * depth + 2) + depth + 1) + depth + 1


def _check_finite(
    kernels: NDArray[np.float64], label: str, phi: Nonlinearity, *, order: int
) -> None:
    """ValueError naming the first layer (in the order of the recursion) that is not finite."""
    finite = np.isfinite(kernels).reshape(kernels.shape[0], -1).all(axis=1)
    if finite.all():
        return
    layers = np.flatnonzero(~finite)
    first = int(layers[0] if order > 0 else layers[-1])
    raise ValueError(
        f"{label}^{first} is not finite (phi={phi.name!r}): the kernels overflow float64, "
        "or phi's Gaussian expectations are not finite at this variance; reduce the depth, "
        "the branch multiplier a, or the input norms"
    )


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
