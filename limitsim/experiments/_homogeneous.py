"""The positively homogeneous family φ_θ of the nonlinearity experiment, normalised.

``φ_θ(z) = s_θ (c₊ relu(z) − c₋ relu(−z))`` with ``(c₊, c₋) = (cos θ, sin θ)``, i.e. the spec
``homogeneous:<s c₊>,<s c₋>`` (``φ(z) = c₊ z`` for z > 0, ``c₋ z`` for z < 0).  θ = 0 is relu,
−45° abs, 45° linear; φ_θ(−z) is the member at −90° − θ, an exact symmetry of training
(``W → −W``), so the curves over θ are symmetric about abs.

**Normalisation (our choice):** ``s_θ`` makes ``Var φ_θ(z)``, z ~ N(0, 1), equal to
``Var relu(z) = 1/2 − 1/(2π)``.  With mean subtraction the init kernel grows by
``Σ_φ(K) = K Var φ_θ(z)`` per block for homogeneous φ, so every member adds the same init
variance as relu and θ = 0 is exactly relu; without it a member's scale would act as a change of
the multiplier a.  ``Var φ(z) = (c₊² + c₋²)/2 − (c₊ − c₋)²/(2π)`` (E φ = (c₊ − c₋)/√(2π)).

Prediction (``tp6-notes.md`` §4, ours): at initialization the correlation of δh̃ between blocks
is ``(E φ′)² / E φ′² = (c₊ + c₋)² / (2(c₊² + c₋²)) = (1 + sin 2θ)/2`` (scale-free): 1 linear,
1/2 relu, 0 abs.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["ABS_THETA", "family_coefficients", "family_spec", "lag_prediction"]

#: θ of abs (c₋ = −c₊), in degrees.
ABS_THETA = -45.0
RELU_VARIANCE = 0.5 - 1 / (2 * math.pi)


def family_coefficients(theta: float) -> tuple[float, float]:
    """``(s c₊, s c₋)`` of the member at ``theta`` degrees (module docstring)."""
    rad = math.radians(theta)
    c_plus, c_minus = math.cos(rad), math.sin(rad)
    variance = (c_plus**2 + c_minus**2) / 2 - (c_plus - c_minus) ** 2 / (2 * math.pi)
    scale = math.sqrt(RELU_VARIANCE / variance)
    return c_plus * scale, c_minus * scale


def family_spec(theta: float) -> str:
    """The nonlinearity spec of the member at ``theta`` degrees (6 decimals, no ``-0``)."""
    c_plus, c_minus = family_coefficients(theta)
    return f"homogeneous:{c_plus + 0.0:.6f},{c_minus + 0.0:.6f}"


def lag_prediction(theta: ArrayLike) -> NDArray[np.float64]:
    """``(E φ′)² / E φ′² = (1 + sin 2θ)/2`` at init for the members at ``theta`` degrees."""
    return (1.0 + np.sin(2.0 * np.radians(np.asarray(theta, dtype=np.float64)))) / 2.0
