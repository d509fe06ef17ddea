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

The L → ∞ limit of these recursions is :mod:`limitsim.kernels.limit`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from limitsim._memory import check_memory
from limitsim.architecture import BLOCKS, Architecture, resolve
from limitsim.kernels._compiled import Recursion, recursion
from limitsim.nonlinearities.registry import Nonlinearity
from limitsim.parametrization import Parametrization
from limitsim.validation import (
    as_finite_array,
    check_depth,
    check_type,
)

__all__ = [
    "BLOCKS",
    "MAX_DEPTH",
    "InitKernels",
    "init_kernels",
    "kernel_bytes",
]

#: Largest depth of the finite-depth recursion: it is Euler's method with step 1/L for the
#: depth ODE, so beyond this it only approaches
#: :func:`limitsim.kernels.limit.depth_limit_kernels` (error O(1/L)).
MAX_DEPTH = 10**6


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


def _architecture(arch: Architecture | None, **loose: Any) -> tuple[Architecture, dict[str, Any]]:
    """The route's Architecture (pre block of depth 1) and its :func:`block_increment` options."""
    arch = resolve(arch, **loose)
    arch.require_pre_depth_one("block='pre' supports block_depth=1 only")
    return arch, {"block": arch.block, "block_depth": arch.block_depth, "pre_ln": arch.pre_ln}


#: Types of the loose architecture keywords whose resolution :func:`_route` memoizes.
_PLAIN = (str, int, bool, type(None))


def _route(
    arch: Architecture | None, phi: object, block: object, block_depth: object, pre_ln: object
) -> tuple[Architecture, Mapping[str, Any], Recursion]:
    """:func:`_architecture` and the compiled recursion of its φ and block variant.

    The resolution is memoized for loose keywords of the plain types (the key holds each
    type, so ``1`` and ``True`` stay apart): it depends on their values only, and a value
    that is refused raises on every call (exceptions are not memoized).
    """
    if (
        arch is None
        and type(phi) in _PLAIN
        and type(block) in _PLAIN
        and type(block_depth) in _PLAIN
        and type(pre_ln) in _PLAIN
    ):
        return _plain_route(
            (type(phi), phi),
            (type(block), block),
            (type(block_depth), block_depth),
            (type(pre_ln), pre_ln),
        )
    return _resolved_route(arch, phi, block, block_depth, pre_ln)


def _resolved_route(
    arch: Architecture | None, phi: Any, block: Any, block_depth: Any, pre_ln: Any
) -> tuple[Architecture, Mapping[str, Any], Recursion]:
    arch, options = _architecture(
        arch, phi=phi, block=block, block_depth=block_depth, pre_ln=pre_ln
    )
    return arch, options, recursion(arch.phi, arch.block, arch.block_depth, arch.pre_ln)


@lru_cache(maxsize=256)
def _plain_route(
    *typed: tuple[type, Any],
) -> tuple[Architecture, Mapping[str, Any], Recursion]:
    arch, options, run = _resolved_route(None, *(value for _, value in typed))
    return arch, MappingProxyType(options), run


def _finite_inputs(X: ArrayLike) -> NDArray[np.float64]:
    """``X`` checked by :func:`limitsim.validation.as_finite_array` (``"X"``, 2 dimensions);
    a C-contiguous float64 matrix with finite entries passes without a copy."""
    if (
        type(X) is np.ndarray
        and X.dtype == np.float64
        and X.ndim == 2
        and X.size
        and X.flags.c_contiguous
        and np.isfinite(X).all()
    ):
        return X
    return as_finite_array(X, "X", 2)


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
    X = _finite_inputs(X)
    depth = check_depth(depth)
    if depth > MAX_DEPTH:
        raise ValueError(
            f"depth={depth} is more than {MAX_DEPTH} blocks: the finite-depth recursion is "
            "Euler's method for the depth ODE (error O(1/L)); use depth_limit_kernels for "
            "L -> infinity (limitsim kernels prints it as K_limit, G_limit)"
        )
    check_type("param", param, Parametrization)
    arch, options, run = _route(arch, phi, block, block_depth, pre_ln)
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
    done, finite = run(K, factors, G, c)
    if done <= depth:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: raised below, by layer
            for layer in range(done, depth + 1):
                forward, backward = block_increment(arch.phi, K[layer - 1], **options)
                K[layer] = K[layer - 1] + c * forward
                factors[layer - 1] = 1.0 + c * backward
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
