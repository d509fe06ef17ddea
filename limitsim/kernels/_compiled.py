"""Route R1's depth recursion in one compiled call (:func:`limitsim.init_kernels`).

:func:`run_recursion` fills ``K[1..L]`` and ``G[0..L-1]`` of the recursion in the docstring
of :mod:`limitsim.kernels.recursion` with a single call into compiled code,
for every block variant (post or pre block, block depth 1 or 2, with or without pre-LN) and
every φ whose moments are computed in compiled code: the closed forms (positively homogeneous
family, erf) and the Hermite (Mehler) expansion.  Per layer it performs the same floating-point
operations, in the same order, as :func:`limitsim.kernels.recursion.block_increment` with
:meth:`limitsim.Nonlinearity.moments`, calling the same moment kernels of
:mod:`limitsim.gaussian._moments` (the homogeneous closed form reordered into three passes that
compute the same values, :func:`_homogeneous_moments`).

The Hermite expansion is accurate only where every input's coefficient tail is at most
:data:`limitsim.gaussian._expectations.TAIL_TOL`; elsewhere
:func:`limitsim.gaussian._expectations.numerical_moments` switches to adaptive quadrature,
which is not compiled here.  The compiled recursion then stops before that layer and returns
its index, and the caller finishes the recursion layer by layer in Python, so the results are
those of the layer-by-layer path.

The kernels are serial: the results do not depend on the thread count.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from limitsim._generated.gaussian import (
    homogeneous_mean,
    homogeneous_second_moment_angle,
    homogeneous_vprime_angle,
)
from limitsim._numba import SCALAR_FUNCTION, jit, types
from limitsim.gaussian._asin import asin
from limitsim.gaussian._expectations import TAIL_TOL
from limitsim.gaussian._moments import (
    _correlation,
    gauss_moments_erf,
    gauss_moments_hermite,
    hermite_rule,
)
from limitsim.nonlinearities.registry import Nonlinearity

__all__ = ["Recursion", "recursion", "run_recursion"]

#: Block codes: post block of depth 1 (MS), post block of depth 2, pre block.
_POST, _POST2, _PRE = 0, 1, 2

_F64 = types.float64[::1]
_M64 = types.float64[:, ::1]
_T64 = types.float64[:, :, ::1]
_RULE = types.Tuple((_F64, _F64, _M64))  # type: ignore[no-untyped-call]
_DONE = types.Tuple((types.int64, types.boolean))  # type: ignore[no-untyped-call]


@jit(inline="always")
def _homogeneous_moments(c_plus, c_minus, S, s, mean, vprime, std, packed):  # type: ignore[no-untyped-def]
    """:func:`limitsim.gaussian._moments.gauss_moments_homogeneous` at K = ``S[s]`` into
    ``mean[s]``, ``S[s + 1]`` (the second moment) and ``vprime[s]``, in three passes (the same
    operations, so the same values: tested bit for bit).

    ``std`` (P,) and ``packed`` (5, P(P+1)/2) are work arrays.  The first pass computes the
    standard deviations and the correlations of the pairs i ≤ j, packed row by row; the
    second computes the moments of the packed pairs in one flat loop, which the compiler
    vectorizes whole (the arcsine :func:`limitsim.gaussian._asin.asin` has no branch and no
    call); the third unpacks them into the symmetric outputs.  The stage index ``s`` (rather
    than views of the stages) keeps array references out of the layer loop (:func:`_recursion`).
    """
    P = S.shape[1]
    for i in range(P):
        std[i] = math.sqrt(max(S[s, i, i], 0.0))
    t = 0
    for i in range(P):
        for j in range(i, P):
            packed[0, t] = _correlation(S[s, i, i], S[s, j, j], S[s, i, j], std[i], std[j])
            packed[1, t] = std[i]
            packed[2, t] = std[j]
            t += 1
    for t in range(packed.shape[1]):
        rho = packed[0, t]
        theta = asin(rho)
        s_i = packed[1, t]
        s_j = packed[2, t]
        packed[3, t] = homogeneous_second_moment_angle(s_i, s_j, rho, theta, c_plus, c_minus)
        packed[4, t] = homogeneous_vprime_angle(s_i, s_j, rho, theta, c_plus, c_minus)
    t = 0
    for i in range(P):
        mean[s, i] = homogeneous_mean(std[i], c_plus, c_minus)
        for j in range(i, P):
            S[s + 1, i, j] = packed[3, t]
            S[s + 1, j, i] = packed[3, t]
            vprime[s, i, j] = packed[4, t]
            vprime[s, j, i] = packed[4, t]
            t += 1


@jit(inline="always")
def _moments(  # type: ignore[no-untyped-def]
    homogeneous, phi, dphi, rule, S, s, mean, vprime, coef, tail, std, packed
):
    """Moments of φ at covariance K = ``S[s]`` into ``mean[s]``, ``S[s + 1]`` (the second
    moment) and ``vprime[s]``: the closed form of the homogeneous family for
    ``homogeneous = (c₊, c₋)``, else erf's for ``phi = None``, else the Hermite expansion of
    φ, φ′ with the Hermite ``rule``.

    The choice is made by the types (None or not), so each specialisation compiles one of the
    three and prunes the others.  Returns False where the Hermite expansion is not resolved:
    the caller must then use :func:`limitsim.gaussian._expectations.numerical_moments`.
    """
    if homogeneous is not None:
        c_plus, c_minus = homogeneous
        _homogeneous_moments(c_plus, c_minus, S, s, mean, vprime, std, packed)
        return True
    if phi is None:
        gauss_moments_erf(S[s], mean[s], S[s + 1], vprime[s])
        return True
    nodes, weights, table = rule
    gauss_moments_hermite(
        phi, dphi, S[s], nodes, weights, table, mean[s], S[s + 1], vprime[s], coef, tail
    )
    for i in range(tail.shape[0]):  # NaN tails are unresolved, as in numerical_moments
        if not (tail[i, 0] <= TAIL_TOL and tail[i, 1] <= TAIL_TOL):
            return False
    return True


@jit
def _recursion(homogeneous, phi, dphi, rule, K, G, c, block, pre_ln):  # type: ignore[no-untyped-def]
    """Forward recursion K^1..K^L and, when it completes, G^{L-1}..G^0.

    Returns ``(layer, finite)``: the first layer (1..L) whose moments could not be computed
    (``K`` is then filled up to that layer minus one, ``G[l-1]`` holds the backward factor
    of layer l up to that layer minus one), or L + 1 when everything is filled; ``finite``
    tells whether every entry of ``K`` and ``G`` is finite then (True after an early stop).
    The factors are kept in ``G`` until the backward sweep multiplies them in place
    (``G^{l-1} = G^l ∘ factor``): no separate (L, P, P) array is written and read again.  Follows
    :func:`limitsim.kernels.recursion.block_increment` operation by operation.

    Written for small P, where a layer takes well under a microsecond: the layer loop creates
    no array views or tuples of arrays and inlines no helper that takes arrays (the moments
    excepted; those of erf and of the Hermite expansion take views of a stage, small next
    to their own cost), since numba counts references to each such array with atomic
    operations (measured at P = 8: 170 ns per layer for an inlined helper that took the nine
    arrays of the update below, a third of the layer's time).
    """
    depth = K.shape[0] - 1
    P = K.shape[1]
    finite = True
    n_terms = rule[2].shape[0]
    stages = 2 if block == _POST2 else 1
    # S[0] = K̃, S[1] its second moment M_φ(K̃), S[2] = M_φ(M_φ(K̃)) for block depth 2;
    # mean[s] and vprime[s] belong to the stage with input S[s]
    S = np.empty((stages + 1, P, P))
    mean = np.empty((stages, P))
    vprime = np.empty((stages, P, P))
    root = np.empty(P)
    std = np.empty(P)
    packed = np.empty((5, P * (P + 1) // 2))
    scale = np.empty((P, P))
    coef = np.empty((2, P, n_terms))
    tail = np.empty((P, 2))
    layer = 0
    resolved = True
    while resolved and layer < depth:  # no early exit inside the body (docstring)
        layer += 1
        prev = layer - 1
        # the moments' input K̃, a copy (not a view)
        if pre_ln:
            for i in range(P):
                kii = K[prev, i, i]
                root[i] = math.sqrt(kii) if not kii < 0.0 else 0.0  # np.clip keeps NaN
            for i in range(P):
                for j in range(P):
                    scale[i, j] = root[i] * root[j]
                    value = K[prev, i, j]
                    S[0, i, j] = value / scale[i, j] if scale[i, j] > 0 else 0.0
        else:
            for i in range(P):
                for j in range(P):
                    S[0, i, j] = K[prev, i, j]
        # one call site for both stages of block depth 2 (φ of φ, docstring): the inlined
        # moments are compiled once
        stage = 0
        while resolved and stage < stages:
            resolved = _moments(
                homogeneous, phi, dphi, rule, S, stage, mean, vprime, coef, tail, std, packed
            )
            stage += 1
        if not resolved:
            break
        # K^l and the backward factor 1 + c V into G[l-1]: one loop per variant
        if block == _PRE:
            for i in range(P):
                for j in range(P):
                    K[layer, i, j] = K[prev, i, j] + c * S[1, i, j]
                    G[prev, i, j] = vprime[0, i, j]
        elif block == _POST:
            for i in range(P):
                for j in range(P):
                    K[layer, i, j] = K[prev, i, j] + c * (S[1, i, j] - mean[0, i] * mean[0, j])
                    G[prev, i, j] = vprime[0, i, j]
        else:
            for i in range(P):
                for j in range(P):
                    forward = S[2, i, j] - mean[1, i] * mean[1, j]
                    K[layer, i, j] = K[prev, i, j] + c * forward
                    G[prev, i, j] = vprime[0, i, j] * vprime[1, i, j]
        if pre_ln:
            for i in range(P):
                for j in range(P):
                    backward = G[prev, i, j]
                    G[prev, i, j] = backward / scale[i, j] if scale[i, j] > 0 else 0.0
        for i in range(P):
            for j in range(P):
                G[prev, i, j] = 1.0 + c * G[prev, i, j]
                if not math.isfinite(K[layer, i, j]):
                    finite = False
    if not resolved:
        return layer, True
    for layer in range(depth, 0, -1):
        for i in range(P):
            for j in range(P):
                value = G[layer, i, j] * G[layer - 1, i, j]
                G[layer - 1, i, j] = value
                if not math.isfinite(value):  # also where a factor is not finite
                    finite = False
    return depth + 1, finite


@jit(
    signatures=[
        _DONE(
            SCALAR_FUNCTION,
            SCALAR_FUNCTION,
            _RULE,
            _T64,
            _T64,
            types.float64,
            types.int64,
            types.boolean,
        )
    ]
)
def _hermite_recursion(phi, dphi, rule, K, G, c, block, pre_ln):  # type: ignore[no-untyped-def]
    """:func:`_recursion` for φ without a closed form (Hermite expansion).

    Compiled eagerly for first-class scalar functions, so its cache is found again.
    """
    return _recursion(None, phi, dphi, rule, K, G, c, block, pre_ln)


@jit
def _closed_form_recursion(homogeneous, K, G, c, block, pre_ln):  # type: ignore[no-untyped-def]
    """:func:`_recursion` for a closed-form φ: ``homogeneous = (c₊, c₋)`` for the homogeneous
    family, None for erf (one specialisation each, compiled at its first call).  No scalar
    function crosses from Python, which would cost more than the recursion at small P."""
    rule = (np.empty(0), np.empty(0), np.empty((0, 0)))
    return _recursion(homogeneous, None, None, rule, K, G, c, block, pre_ln)


@cache
def _rule(terms: int) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    nodes, weights, table = hermite_rule(terms)
    return nodes, weights, np.ascontiguousarray(table)


#: ``run(K, factors, G, c) -> (done, finite)``: :func:`run_recursion` for one φ and block variant.
Recursion = Callable[
    [NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float], tuple[int, bool]
]


@lru_cache(maxsize=256)
def recursion(phi: Nonlinearity, block: str, block_depth: int, pre_ln: bool) -> Recursion:
    """:func:`run_recursion` with φ and the block variant fixed: the compiled kernel and its
    constants are chosen once per φ and variant, not on every call of
    :func:`limitsim.init_kernels` (whose Python costs as much as tens of layers at small P).

    ``block``, ``block_depth`` and ``pre_ln`` are the fields of a validated
    :class:`limitsim.Architecture`; φ is compared by identity.
    """
    code = _PRE if block == "pre" else _POST if block_depth == 1 else _POST2
    pre_ln = bool(pre_ln)
    kernel: Any
    head: tuple[Any, ...]
    if phi.closed_form is not None:
        kernel, head = _closed_form_recursion, (phi.homogeneous,)
    else:
        kernel, head = _hermite_recursion, (phi.phi, phi.dphi, _rule(phi.hermite_terms))

    def run(
        K: NDArray[np.float64], factors: NDArray[np.float64], G: NDArray[np.float64], c: float
    ) -> tuple[int, bool]:
        done: int
        finite: bool
        done, finite = kernel(*head, K, G, c, code, pre_ln)
        if done <= factors.shape[0]:
            factors[: done - 1] = G[: done - 1]  # the factors computed so far (kept in G)
        return done, finite

    return run


def run_recursion(
    phi: Nonlinearity,
    K: NDArray[np.float64],
    factors: NDArray[np.float64],
    G: NDArray[np.float64],
    c: float,
    *,
    block: str,
    block_depth: int,
    pre_ln: bool,
) -> tuple[int, bool]:
    """Fill the kernels of :func:`limitsim.init_kernels` in one compiled call.

    Parameters
    ----------
    phi : Nonlinearity
    K : ndarray, shape (L+1, P, P), C-contiguous float64
        In: ``K[0]``.  Out: ``K[1..L]`` as far as computed.
    factors : ndarray, shape (L, P, P), float64
        Out, only when the recursion stops early: the backward factors ``1 + c V`` of the
        layers computed (otherwise untouched: they are multiplied into ``G`` directly).
    G : ndarray, shape (L+1, P, P), C-contiguous float64
        In: ``G[L]``.  Out: ``G[0..L-1]`` when the recursion completes (otherwise work
        space).
    c : float
        Squared branch multiplier.
    block, block_depth, pre_ln
        Block variant, validated by the caller (:func:`limitsim.init_kernels`).

    Returns
    -------
    done : int
        L + 1 when ``K`` and ``G`` are complete; otherwise the first layer l whose moments
        need quadrature: ``K[:l]`` and ``factors[:l-1]`` are filled and the caller continues
        from layer l (module docstring), computing ``G`` itself.
    finite : bool
        Whether every entry of the complete ``K`` and ``G`` is finite (True when ``done``
        is at most L: the caller then checks its own result).
    """
    return recursion(phi, block, block_depth, bool(pre_ln))(K, factors, G, c)
