"""Which user nonlinearities φ limitsim accepts: defined, finite and of limited growth.

The kernels need the Gaussian expectations E φ(z)φ(z′) and E φ′(z)φ′(z′) to be finite, and
their quadratures need φ and φ′ to be finite float64 numbers.  The rule (:data:`RULE`):

1. **Defined for every real x**, shown symbolically: the argument of every ``log`` is
   positive, and the base of every power is nonzero (negative integer exponent), nonnegative
   (positive fractional exponent) or positive (negative fractional or non-constant exponent),
   as sympy's assumptions can prove for real x.  So ``1/x``, ``log(x)``, ``sqrt(x)`` and
   ``Abs(x)**0.5`` (whose φ′ is singular at 0) are refused, while ``1/(1 + exp(-x))``,
   ``log(1 + exp(x))`` and ``Abs(x)**1.5`` pass.  A Dirac delta in φ′ (φ jumps) is refused.
2. **At most exponential growth**: ``log|f(±R)| ≤ 15 R`` for f = φ, φ′ at R = 10², …, 10⁹,
   evaluated with mpmath (no overflow; an intermediate beyond about exp(2⁶⁴) counts as
   too large).  This refuses ``exp(c x²)`` for every c ≥ 1.5·10⁻⁸, so expectations are finite
   for variances up to 10⁷ for all growth of that form; exp(a|x|) itself passes for every a
   that check 3 allows (a ≤ 14).
3. **Finite in float64** on :data:`GRID` (|x| ≤ 50, with 0 and points near 0), evaluated
   with the generated Python code of φ and φ′ (the source numba compiles for the kernels).

Checks 1–2 run before anything is compiled, so refused specs fail in milliseconds.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, Final

import mpmath
import numpy as np

__all__ = ["GRID", "RULE", "check_defined", "check_grid", "check_growth", "is_defined"]

GROWTH_RATE: Final = 15
GROWTH_RADII: Final = tuple(10.0**k for k in range(2, 10))
_NEAR_ZERO: Final = np.array([5e-324, 1e-300, 1e-150, 1e-12, 1e-6, 1e-3])
GRID: Final = np.concatenate([np.linspace(-50.0, 50.0, 1001), _NEAR_ZERO, -_NEAR_ZERO])

RULE: Final = (
    "limitsim accepts φ with φ and φ′ defined and finite at every real x and growing at most "
    f"like exp({GROWTH_RATE}|x|), so that the Gaussian expectations E φ(z)φ(z′) and "
    "E φ′(z)φ′(z′) are finite (see SECURITY.md, 'Nonlinearity specs')"
)

_CTX: Final = mpmath.MPContext()
_CTX.dps = 30
_EXP_CAP: Final = 2.0**64  # exp of more is counted as infinite (its exponent would not fit)
_SATURATE_CAP: Final = 2.0**60  # erf, erfc, tanh, atan: their limit value beyond this
_PERIODIC_CAP: Final = _CTX.mpf(2) ** 1024  # sin, cos of more: not evaluated (NaN)


def _short(expr: Any) -> str:
    text = str(expr)
    return text if len(text) <= 120 else text[:117] + "..."


# ----------------------------------------------------------------- 1. defined
def _undefined_part(expr: Any) -> str | None:
    """The first subexpression not provably defined for every real x, described; or None."""
    import sympy as sp

    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.log) and not node.args[0].is_positive:
            return f"log({_short(node.args[0])}) needs a positive argument"
        if isinstance(node, sp.Pow):
            base, exponent = node.args
            if exponent.is_number and float(exponent).is_integer():
                if exponent < 0 and not base.is_nonzero:
                    return f"{_short(node)} needs {_short(base)} ≠ 0"
            elif exponent.is_number and exponent > 0:
                if not base.is_nonnegative:
                    return f"{_short(node)} needs {_short(base)} ≥ 0"
            elif not base.is_positive:
                return f"{_short(node)} needs {_short(base)} > 0"
    return None


def is_defined(expr: Any) -> bool:
    """Whether ``expr`` is provably defined (no singularity, no Dirac delta) for real x."""
    import sympy as sp

    return not expr.has(sp.DiracDelta) and _undefined_part(expr) is None


def check_defined(phi: Any, dphi: Any) -> None:
    """ValueError unless φ and φ′ are provably defined for every real x (rule 1)."""
    import sympy as sp

    for label, expr in (("φ", phi), ("φ′", dphi)):
        if expr.has(sp.DiracDelta):
            raise ValueError(
                f"φ′ = {_short(expr)} contains a Dirac delta: φ jumps, or sympy keeps a delta "
                "times 0 (as in x*Heaviside(x)); write kinks with Max, Min or Abs, e.g. "
                f"Max(x, 0); {RULE}"
            )
        problem = _undefined_part(expr)
        if problem is not None:
            raise ValueError(
                f"{label}(x) = {_short(expr)} is not defined (or not finite) for every real x: "
                f"{problem}, which sympy cannot show for every real x; {RULE}"
            )


# ------------------------------------------------------------------ 2. growth
def check_growth(phi: Any, dphi: Any, x: Any) -> None:
    """ValueError unless ``log|f(±R)| ≤ 15 R`` for f = φ, φ′ and every R in GROWTH_RADII."""
    for label, expr in (("φ", phi), ("φ′", dphi)):
        for radius in GROWTH_RADII:
            for point in (radius, -radius):
                value = _evaluate(expr, x, _CTX.mpf(point))
                if _CTX.isnan(value) or _CTX.isinf(value):
                    size = "cannot be evaluated (an intermediate overflows)"
                else:
                    if value == 0 or _CTX.log(abs(value)) <= GROWTH_RATE * radius:
                        continue
                    size = f"≈ 10^{float(_CTX.log10(abs(value))):.0f}"
                raise ValueError(
                    f"{label}(x) = {_short(expr)} grows faster than exp({GROWTH_RATE}|x|): "
                    f"{label}({point:g}) {size}; {RULE}"
                )


def _evaluate(expr: Any, x: Any, at: Any) -> Any:
    """``expr`` at ``x = at`` in mpmath, with capped exponentials (NaN/inf, never a hang)."""
    import sympy as sp

    if expr == x:
        return at
    if expr.is_Number or expr.is_NumberSymbol:
        return _CTX.mpf(str(expr.evalf(35)))
    args = [_evaluate(arg, x, at) for arg in expr.args]
    if any(_CTX.isnan(a) for a in args):
        return _CTX.nan
    if isinstance(expr, sp.Add):
        return _CTX.fsum(args)
    if isinstance(expr, sp.Mul):
        return _CTX.fprod(args)
    if isinstance(expr, sp.Pow):
        return _power(*args)
    name = type(expr).__name__
    if name not in _FUNCTIONS:
        raise ValueError(f"cannot check the growth of {name}(...); {RULE}")
    return _FUNCTIONS[name](*args)


def _power(base: Any, exponent: Any) -> Any:
    if base == 0:
        return _CTX.zero if exponent > 0 else (_CTX.one if exponent == 0 else _CTX.inf)
    log_size = exponent * _CTX.log(abs(base))
    if log_size > _EXP_CAP:
        return _CTX.inf
    if log_size < -_EXP_CAP:
        return _CTX.zero
    if _CTX.isint(exponent):
        return _CTX.power(base, int(exponent))
    return _CTX.power(base, exponent) if base > 0 else _CTX.nan


def _capped_exp(a: Any) -> Any:
    if a > _EXP_CAP:
        return _CTX.inf
    return _CTX.zero if a < -_EXP_CAP else _CTX.exp(a)


def _saturating(fn: Callable[[Any], Any], low: Any, high: Any) -> Callable[[Any], Any]:
    def apply(a: Any) -> Any:
        if abs(a) > _SATURATE_CAP:
            return high if a > 0 else low
        return fn(a)

    return apply


def _periodic(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda a: fn(a) if abs(a) <= _PERIODIC_CAP else _CTX.nan


_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    "exp": _capped_exp,
    "log": lambda a: _CTX.log(a) if a > 0 else _CTX.nan,
    "sinh": lambda a: (_capped_exp(a) - _capped_exp(-a)) / 2,
    "cosh": lambda a: (_capped_exp(a) + _capped_exp(-a)) / 2,
    "sin": _periodic(_CTX.sin),
    "cos": _periodic(_CTX.cos),
    "tanh": _saturating(_CTX.tanh, -_CTX.one, _CTX.one),
    "atan": _saturating(_CTX.atan, -_CTX.pi / 2, _CTX.pi / 2),
    "erf": _saturating(_CTX.erf, -_CTX.one, _CTX.one),
    "erfc": _saturating(_CTX.erfc, 2 * _CTX.one, _CTX.zero),
    "Abs": abs,
    "sign": _CTX.sign,
    "Heaviside": lambda a, *_: _CTX.one if a > 0 else (_CTX.zero if a < 0 else _CTX.mpf(0.5)),
    "Max": max,
    "Min": min,
}


# -------------------------------------------------------------------- 3. grid
def check_grid(label: str, fn: Callable[[float], object]) -> None:
    """ValueError unless ``fn`` (the generated Python code of φ or φ′) is finite on GRID."""
    for point in GRID:
        try:
            value = fn(float(point))
        except (ArithmeticError, ValueError):
            value = math.nan
        if not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
            raise ValueError(f"{label}({point:g}) = {value} is not a finite float64; {RULE}")
