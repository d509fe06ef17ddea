"""The noise-plus-drift model of feature diversity: fit ``d(ε)² = N ε^p + D ε²`` (App. D.2).

Re-exported by :mod:`limitsim.measures`, whose :func:`~limitsim.measures.feature_diversity`
gives the d(ε) fitted here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["NoiseDriftFit", "noise_drift_fit"]


@dataclass(frozen=True)
class NoiseDriftFit:
    """Fit of ``d(ε)² = N ε^p + D ε²``: Brownian noise plus drift (App. D.2).

    In the linear limit the increment ``x^{l+εL} − x^l`` splits into a noise term of size
    ``ε^{1/2} L^{1/2−α}``, a drift term of size ε and a backward-noise term of size
    ``ε L^{1/2−α}`` (``tp6-notes.md`` §2.5), so ``d² ≈ N ε + D ε²`` with ``N ∝ L^{1−2α}``.
    A single log–log slope over a finite ε window mixes the two (κ̂ < 1/2 even for
    Depth-µP); this fit separates them.

    Attributes
    ----------
    noise, exponent, drift : float
        N ≥ 0, p and D ≥ 0; κ = 1 − p/2 is the diversity exponent of the noise term.
    exponent_se : float
        Standard error of p from the fit's Jacobian (NaN when p was fixed).
    eps, d : ndarray, shape (k,)
        The data fitted.
    """

    noise: float
    exponent: float
    drift: float
    exponent_se: float
    eps: NDArray[np.float64]
    d: NDArray[np.float64]

    def drift_share(self, eps: float) -> float:
        """``D ε² / (N ε^p + D ε²)``: the fraction of d² the drift explains at ``eps``."""
        drift = self.drift * eps**2
        return float(drift / (self.noise * eps**self.exponent + drift))


def noise_drift_fit(
    eps: ArrayLike, d: ArrayLike, *, exponent: float | None = None
) -> NoiseDriftFit:
    """Fit ``d² = N ε^p + D ε²`` to feature diversities (:class:`NoiseDriftFit`).

    Parameters
    ----------
    eps, d : array_like, shape (k,)
        ε values and diversities d(ε) > 0 (e.g. :func:`limitsim.measures.feature_diversity`).
    exponent : float, optional
        Fix p (1 for Brownian noise) and fit only N and D, by non-negative least squares on
        relative residuals (rows divided by d²).  Without it, p ∈ [0.25, 2] is fitted too by
        least squares on ``log d²`` (needs at least 4 points).

    Raises
    ------
    ValueError
        Non-positive or non-finite d, mismatched shapes or too few points.
    """
    from scipy import optimize

    e = np.asarray(eps, dtype=np.float64).ravel()
    y = np.asarray(d, dtype=np.float64).ravel() ** 2
    if e.shape != y.shape or not (np.all(np.isfinite(y)) and np.all(y > 0) and np.all(e > 0)):
        raise ValueError("eps and d must have the same shape with finite positive values")
    if exponent is not None:
        if e.size < 2:
            raise ValueError(f"need at least 2 points to fit N and D, got {e.size}")
        design = np.stack([e**exponent, e**2], axis=1) / y[:, None]
        (noise, drift), _ = optimize.nnls(design, np.ones_like(y))
        return NoiseDriftFit(float(noise), float(exponent), float(drift), math.nan, e, np.sqrt(y))
    if e.size < 4:
        raise ValueError(f"need at least 4 points to fit N, p and D, got {e.size}")

    def residual(theta: NDArray[np.float64]) -> NDArray[np.float64]:
        log_noise, p, drift = theta
        return np.asarray(np.log(np.exp(log_noise) * e**p + drift * e**2) - np.log(y))

    start = np.array([math.log(float(np.median(y / e))), 1.0, 0.0])
    fit = optimize.least_squares(
        residual, start, bounds=([-np.inf, 0.25, 0.0], [np.inf, 2.0, np.inf]), method="trf"
    )
    dof = e.size - 3
    s2 = float(fit.fun @ fit.fun) / dof if dof > 0 else math.nan
    try:
        cov = np.linalg.inv(fit.jac.T @ fit.jac) * s2
        se = math.sqrt(max(float(cov[1, 1]), 0.0))
    except np.linalg.LinAlgError:
        se = math.nan
    log_noise, p, drift = (float(v) for v in fit.x)
    return NoiseDriftFit(math.exp(log_noise), p, drift, se, e, np.sqrt(y))
