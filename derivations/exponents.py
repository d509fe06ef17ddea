"""Depth exponents of the classification of depthwise parametrizations (Sec. 7, App. D.2).

Every quantity is a sum over blocks of per-block contributions of size Θ(L^e).  Two rules give
the size of a sum over m·L blocks (``tp6-notes.md`` §1.1, "the design principle"):

* *incoherent* sums of independent, zero-mean terms (the init randomness of the blocks) grow
  like the square root of the number of terms: Θ(L^(e + 1/2));
* *coherent* sums of correlated terms (the updates after a gradient step) grow linearly:
  Θ(L^(e + 1)).

Per block: the branch carries L^-α; at init its Gaussian part is Θ(1) and independent across
blocks; after a step the update of W^l moves W^l x by Θ(L^-γ) (γ is the update-size exponent,
footnote 5).  The exponents below are derived from these rules; :mod:`limitsim.classification`
turns them into Claims 7.1–7.6.
"""

from __future__ import annotations

import sympy as sp

from limitsim._codegen import ScalarFunction

GENERATED_DOC = "Depth exponents (powers of L) behind limitsim.classify (Claims 7.1-7.6)."
JIT = False

alpha, gamma, eps = sp.symbols("alpha gamma epsilon", real=True)
HALF = sp.Rational(1, 2)


def incoherent(per_term: sp.Expr, fraction_exponent: sp.Expr = 0) -> sp.Expr:
    """Exponent of a sum of L independent zero-mean Θ(L^per_term) terms."""
    return per_term + HALF + fraction_exponent


def coherent(per_term: sp.Expr) -> sp.Expr:
    """Exponent of a sum of L correlated Θ(L^per_term) terms."""
    return per_term + 1


def derive() -> list[ScalarFunction]:
    """The exponents, as plain Python functions of (α, γ)."""
    branch = -alpha
    init = incoherent(branch)  # x^L − x^0 at init: independent Θ(L^-α) blocks
    update_per_block = branch - gamma  # a L^-α · ΔW x,  ΔW x = Θ(L^-γ)
    drift = coherent(update_per_block)  # Δx, Δf after one step (D.2: Θ(L^(1-α-γ)))
    preact_update = sp.Max(drift, -gamma)  # Δh = W_0 Δx + ΔW x
    preact = sp.Max(0, preact_update)  # h_t = h_0 + Δh, h_0 = Θ(1)
    # Def. 7.7: second-order remainder of a block, L^-α (ΔW x)², compared with L^-1.
    linearization = branch - 2 * gamma + 1
    # Def. 7.6: over ε·L blocks, noise Θ(ε^(1/2) L^(1/2-α)) + drift Θ(ε L^(1-α-γ)); on the
    # stable nontrivial line the drift is Θ(ε) and the noise survives iff 1/2 − α = 0, when
    # it dominates as ε → 0.  κ = 1 − (ε-exponent of the dominant term).
    noise = incoherent(branch)
    noise_symbol = sp.Symbol("noise", real=True)
    kappa = 1 - sp.Piecewise((HALF, sp.Eq(noise_symbol, 0)), (1, True))
    a_ = (alpha,)
    ag = (alpha, gamma)
    return [
        ScalarFunction("init_exponent", a_, (init,), "Size of x^L - x^0 at init: L**e."),
        ScalarFunction("drift_exponent", ag, (drift,), "Size of Δx^L and Δf after a step."),
        ScalarFunction(
            "preactivation_update_exponent", ag, (preact_update,), "Size of Δh^l after a step."
        ),
        ScalarFunction("preactivation_exponent", ag, (preact,), "Size of h_t^l during training."),
        ScalarFunction(
            "linearization_exponent", ag, (linearization,), "Block remainder times L (Def. 7.7)."
        ),
        ScalarFunction("noise_exponent", a_, (noise,), "Init noise over a depth fraction."),
        ScalarFunction(
            "diversity_exponent",
            (noise_symbol,),
            (kappa,),
            "κ on the stable nontrivial line, from noise_exponent (Def. 7.6).",
        ),
    ]
