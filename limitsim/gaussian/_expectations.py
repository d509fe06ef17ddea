"""Gaussian expectations of φ without a closed form, to a stated accuracy at any variance.

For z ~ N(0, K), :func:`numerical_moments` returns E φ(z_i), E φ(z_i)φ(z_j) and
E φ′(z_i)φ′(z_j) with errors at most ``RTOL`` times √(E φ(z_i)² E φ(z_j)²) (for the first
two) and √(E φ′(z_i)² E φ′(z_j)²), or raises ValueError.  The method is chosen per input and
pair, from the cheapest:

1. The Hermite (Mehler) expansion with Gauss–Hermite coefficients
   (:func:`limitsim.gaussian._moments.gauss_moments_hermite`) for every input whose coefficient tail
   beyond the truncation is at most ``TAIL_TOL`` of its variance (for φ′: of E φ′²).
   Cauchy–Schwarz bounds the truncation error of a pair of such inputs by ``TAIL_TOL`` times
   the scale above at every correlation.  Smooth φ at moderate variance take this path only
   (with 128 terms, tanh at unit variance does, at variance 1000 it does not:
   ``tests/test_expectations.py``).
2. For the other inputs (:func:`limitsim.gaussian._quadrature.gauss_moments_quadrature`): moments
   by adaptive Gauss–Kronrod quadrature split at φ's kinks (:func:`kink_points`) and at 0,
   and Hermite coefficients by a composite rule; a pair then uses the Mehler series where
   its error bound (the tails times |ρ|^K plus the coefficient errors) is small enough,
   i.e. away from |ρ| = 1;
3. and otherwise adaptive two-variable quadrature (an outer variable and an inner
   conditional expectation).

Error estimates of paths 2 and 3 are checked against ``RTOL``: a finite entry that cannot be
integrated to that accuracy raises.  Entries whose expectation overflows float64 are ±inf or
NaN, as with the closed forms (the callers' finiteness guards report them).  Relative accuracy of
Σ_φ = M − E φ E φ follows where Var φ(z_i) is not much smaller than E φ(z_i)² (every
built-in).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from limitsim.gaussian import _moments as _kernels

__all__ = [
    "MAX_HERMITE_TERMS",
    "QUAD_TOL",
    "RTOL",
    "TAIL_TOL",
    "kink_points",
    "numerical_moments",
]

#: Guaranteed accuracy (relative to the scales in the module docstring); else ValueError.
RTOL = 1e-8
#: Largest relative coefficient tail for which an input uses the Hermite expansion.
TAIL_TOL = 1e-9
#: Relative target of the quadrature (its error estimates are then checked against ``RTOL``).
QUAD_TOL = 1e-10
#: Most Hermite terms whose Gauss–Hermite rule is still orthonormal in float64 (tested).
MAX_HERMITE_TERMS = 300
#: Polynomial arguments of a kink up to this degree are solved for their real roots.
_MAX_KINK_DEGREE = 8


def numerical_moments(
    name: str,
    phi: Any,
    dphi: Any,
    points: NDArray[np.float64],
    rule: tuple[NDArray[np.float64], ...],
    K: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """``(E φ(z_i), E φ(z_i)φ(z_j), E φ′(z_i)φ′(z_j))`` for z ~ N(0, K) (module docstring).

    Parameters
    ----------
    name : str
        Spec of φ, for error messages.
    phi, dphi : numba dispatchers
        Scalar φ and φ′.
    points : ndarray, shape (n,)
        Breakpoints of the quadrature: φ's kinks and 0.
    rule : (nodes, weights, table)
        Hermite rule of :func:`limitsim.gaussian._moments.hermite_rule`.
    K : ndarray, shape (P, P), C-contiguous float64
        Covariance of z.

    Returns
    -------
    mean : ndarray, shape (P,)
    second, vprime : ndarray, shape (P, P)

    Raises
    ------
    ValueError
        When the error estimate of a finite entry exceeds ``RTOL``.  An entry whose
        expectation overflows float64 (or where φ is not finite) is returned as ±inf or NaN,
        as by the closed forms, for the caller's finiteness guard to report (``init_kernels``
        names the first such layer).
    """
    P = K.shape[0]
    mean, second, vprime = np.empty(P), np.empty((P, P)), np.empty((P, P))
    nodes, weights, table = rule
    coef, tail = np.empty((2, P, table.shape[0])), np.empty((P, 2))
    _kernels.gauss_moments_hermite(
        phi, dphi, K, nodes, weights, table, mean, second, vprime, coef, tail
    )
    resolved = np.all(tail <= TAIL_TOL, axis=1)  # NaN tails (φ not finite) are unresolved
    if resolved.all():
        return mean, second, vprime
    from limitsim.gaussian import _quadrature  # compiles its kernel (seconds, once) on first use

    errors = (np.zeros(P), np.zeros((P, P)), np.zeros((P, P)))  # of mean, second, vprime
    _quadrature.gauss_moments_quadrature(
        phi, dphi, K, points, resolved, QUAD_TOL, coef, mean, second, vprime, *errors
    )
    mean_err, second_err, vprime_err = errors
    d2, dv = np.abs(np.diag(second)), np.abs(np.diag(vprime))
    with np.errstate(invalid="ignore", over="ignore"):
        excess = (  # finite entries only (NaN comparisons are False)
            (second_err > RTOL * np.sqrt(np.outer(d2, d2))) & np.isfinite(second),
            (vprime_err > RTOL * np.sqrt(np.outer(dv, dv))) & np.isfinite(vprime),
            np.diag((mean_err > RTOL * np.sqrt(d2)) & np.isfinite(mean)),
        )
    for what, bad in zip(("E φφ", "E φ′φ′", "E φ"), excess, strict=True):
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ValueError(_describe(name, K, i, j, f"cannot integrate {what} to {RTOL:g}"))
    return mean, second, vprime


def _describe(name: str, K: NDArray[np.float64], i: int, j: int, what: str) -> str:
    rho = K[i, j] / np.sqrt(K[i, i] * K[j, j]) if K[i, i] * K[j, j] > 0 else 0.0
    return (
        f"nonlinearity {name!r}: {what} for z ~ N(0, K) at variances "
        f"({K[i, i]:.6g}, {K[j, j]:.6g}) and correlation {rho:.6g}"
    )


def kink_points(expr: Any) -> tuple[float, ...]:
    """Real points where the sympy expression ``expr`` in one variable may have a kink or jump.

    Zeros of the arguments of ``Abs``, ``sign`` and ``Heaviside``, of the pairwise differences
    of the arguments of ``Max`` and ``Min``, and of ``lhs − rhs`` of every ``Piecewise``
    condition.  Only arguments that are polynomials of degree at most 8 are solved (for their
    real roots); other kinks are left to the adaptive refinement of the quadrature, which
    converges there too, only with more panels.

    Parameters
    ----------
    expr : sympy.Expr
        φ as a function of its single free symbol.

    Returns
    -------
    tuple of float
        Sorted, distinct points.
    """
    import sympy as sp

    (x,) = expr.free_symbols or {sp.Symbol("x")}
    arguments: list[Any] = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Abs | sp.sign | sp.Heaviside):
            arguments.append(node.args[0])
        elif isinstance(node, sp.Max | sp.Min):
            arguments += [a - b for k, a in enumerate(node.args) for b in node.args[k + 1 :]]
        elif isinstance(node, sp.Piecewise):
            for _, condition in node.args:
                arguments += [r.lhs - r.rhs for r in condition.atoms(sp.core.relational.Relational)]
    points: set[float] = set()
    for argument in arguments:
        if not argument.has(x) or not argument.is_polynomial(x):
            continue
        poly = sp.Poly(sp.nsimplify(argument, rational=True), x)
        if poly.degree() > _MAX_KINK_DEGREE:
            continue
        points.update(float(root) for root in poly.real_roots())
    return tuple(sorted(points))
