"""Classification of depthwise parametrizations (α, γ): Claims 7.1–7.6 of Tensor Programs VI.

The depth exponents come from ``derivations/exponents.py`` (incoherent sums of independent
init terms, coherent sums of correlated updates); this module only compares them with 0.

Decisions where the paper is loose (``tp6-notes.md`` §2):

- *stable during training* follows Claim 7.2 literally (α + γ ≥ 1 given α ≥ 1/2): x and f are
  bounded.  For α > 1 on that line the preactivations still explode (Claim 7.3), which is
  reported as ``faithful = False``, not as instability.
- *feature learning* (Def. 7.5) is reported only for stable, nontrivial parametrizations
  whose one-step Δh is exactly Θ(1); in the trivial region Δh can be Θ(1) (e.g. (2, 0)) while
  f never moves, and we do not call that feature learning.
- *diversity exponent* κ is defined on stable, nontrivial parametrizations (the whole line
  α + γ = 1, α ≥ 1/2): 1/2 at α = 1/2 and 0 for α > 1/2, including the unfaithful α > 1.
  It is None where unstable or trivial.  *redundant* means κ = 0.
- *layerwise linearization* (Def. 7.7) compares the block's second-order remainder
  L^-α (ΔW x)² with L^-1; it is reported for stable nontrivial parametrizations only
  (Claim 7.6: α ∈ [1/2, 1)).

Exponents are compared with 0 up to ``TOLERANCE`` (floating-point α, γ such as 1/3, 2/3).
"""

from __future__ import annotations

from dataclasses import dataclass

from limitsim._generated import exponents
from limitsim.validation import check_real

__all__ = ["Classification", "classify"]

TOLERANCE = 1e-9


def _sign(value: float) -> int:
    return 0 if abs(value) <= TOLERANCE else (1 if value > 0 else -1)


@dataclass(frozen=True, slots=True)
class Classification:
    """Properties of the depthwise parametrization (α, γ) in the limit n → ∞, then L → ∞."""

    alpha: float
    gamma: float
    stable_init: bool
    stable_training: bool
    nontrivial: bool
    faithful: bool
    feature_learning: bool
    redundant: bool
    layerwise_linearization: bool
    diversity_exponent: float | None

    @property
    def stable(self) -> bool:
        """Stable at initialization and during training (Def. 7.2)."""
        return self.stable_init and self.stable_training

    @property
    def region(self) -> str:
        """Name of the phase-diagram region (Fig. 1)."""
        if not self.stable_init:
            return "unstable at initialization"
        if not self.stable_training:
            return "unstable during training"
        if not self.nontrivial:
            return "trivial"
        if not self.faithful:
            return "unfaithful"
        if self.diversity_exponent == 0.5:
            return "Depth-muP"
        return "redundant"

    def __str__(self) -> str:
        kappa = "undefined" if self.diversity_exponent is None else f"{self.diversity_exponent:g}"
        return f"(alpha, gamma) = ({self.alpha:g}, {self.gamma:g}): {self.region} (kappa {kappa})"


def classify(alpha: float, gamma: float) -> Classification:
    """Classify the depthwise parametrization (α, γ) (Claims 7.1–7.6).

    Parameters
    ----------
    alpha : float
        Branch exponent: blocks are multiplied by L^-α.
    gamma : float
        Update-size exponent: weight updates scale as L^-γ.

    Returns
    -------
    Classification

    Examples
    --------
    >>> str(classify(0.5, 0.5))
    '(alpha, gamma) = (0.5, 0.5): Depth-muP (kappa 0.5)'
    """
    alpha, gamma = check_real("alpha", alpha), check_real("gamma", gamma)
    stable_init = _sign(exponents.init_exponent(alpha)) <= 0
    drift = _sign(exponents.drift_exponent(alpha, gamma))
    stable_training = stable_init and drift <= 0
    nontrivial = stable_init and drift >= 0
    good = stable_training and nontrivial
    faithful = good and _sign(exponents.preactivation_exponent(alpha, gamma)) == 0
    feature_learning = good and _sign(exponents.preactivation_update_exponent(alpha, gamma)) == 0
    linearization = good and _sign(exponents.linearization_exponent(alpha, gamma)) < 0
    noise = _sign(exponents.noise_exponent(alpha))
    kappa = float(exponents.diversity_exponent(noise)) if good else None
    return Classification(
        alpha=alpha,
        gamma=gamma,
        stable_init=stable_init,
        stable_training=stable_training,
        nontrivial=nontrivial,
        faithful=faithful,
        feature_learning=feature_learning,
        redundant=kappa == 0.0,
        layerwise_linearization=linearization,
        diversity_exponent=kappa,
    )
