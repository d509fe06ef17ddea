"""Built-in nonlinearities φ and their derivatives φ′, φ″, differentiated symbolically.

φ″ is emitted only where it is an ordinary function: for the kinked positively homogeneous
functions (relu, abs) it is a distribution (a Dirac mass at 0), so it is left out and
routes that would need it use Stein's lemma instead (``theory/tp6-notes.md`` §3.4, §3.5).
"""

from __future__ import annotations

import sympy as sp

from limitsim._codegen import ScalarFunction

GENERATED_DOC = "Built-in nonlinearities φ, φ′ and (where it exists) φ″ as numba scalar functions."

x = sp.Symbol("x", real=True)

#: name -> (expression, whether φ″ exists as a function)
BUILTINS: dict[str, tuple[sp.Expr, bool]] = {
    "linear": (x, True),
    "relu": (sp.Piecewise((x, x > 0), (0, True)), False),
    "abs": (sp.Abs(x), False),
    "erf": (sp.erf(x), True),
    "tanh": (sp.tanh(x), True),
    "gelu": (x * (1 + sp.erf(x / sp.sqrt(2))) / 2, True),
    "silu": (x / (1 + sp.exp(-x)), True),
}


def derivatives(expr: sp.Expr, order: int) -> list[sp.Expr]:
    """``[φ, φ′, …]`` up to ``order``.

    Plain differentiation, no ``simplify``: it keeps overflow-safe forms such as
    ``1 - tanh(x)**2`` instead of ``cosh(x)**-2``.
    """
    out = [expr]
    for _ in range(order):
        out.append(sp.diff(out[-1], x))
    return out


def derive() -> list[ScalarFunction]:
    """One scalar function per built-in and derivative order."""
    functions = []
    for name, (expr, smooth) in BUILTINS.items():
        exprs = derivatives(expr, 2 if smooth else 1)
        labels = ("phi", "dphi", "d2phi")
        for label, e in zip(labels, exprs, strict=False):
            doc = f"{label} of {name}: {sp.latex(e)}."
            functions.append(ScalarFunction(f"{label}_{name}", (x,), (e,), doc))
    return functions
