"""Seed statistics of the n = ∞ transfer losses (:mod:`limitsim.experiments.limit_transfer`).

Each seed of a (optimizer, depth, log2 η) point is an independent, noisy estimate ``f̂_s`` of the
limit's outputs f (T, B).  :func:`log_losses` gives each seed's log loss with the Monte Carlo
variance of f removed (the per-seed curves whose optima make the rows); :func:`seed_mean_log`
estimates the limit's log loss from all seeds with a standard error (the plotted curves and
bands), through the U-statistic of :func:`pair_loss`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from limitsim.stats import jackknife_se

__all__ = ["log_losses", "pair_loss", "seed_mean_log"]


def log_losses(f: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per-seed ``log mean_{t≥1} loss_t``, with the Monte Carlo variance of f removed.

    A seed's squared loss ``½(f̂ − y)²`` overestimates the limit's ``½(f − y)²`` by
    ``½ Var(f̂)`` (``f̂`` is one seed's estimate of f); an O(1/N) bias of the same order as the
    simulator's, and seen as a mean z of +0.45 on the exact linear limit.  Each seed's loss
    subtracts ``½ s²``, ``s²`` the sample variance over the seeds with finite outputs (no
    correction with fewer than two); a corrected loss ≤ 0 gives NaN.

    Parameters
    ----------
    f : ndarray, shape (..., S, T, B)
        Per-seed outputs (NaN from a diverged step on); seeds on axis -3.
    y : ndarray, shape (B,)
        Targets.

    Returns
    -------
    ndarray, shape (..., S)
    """
    f = np.asarray(f, dtype=np.float64)
    finite = np.isfinite(f)
    count = finite.sum(axis=-3, keepdims=True)
    safe = np.maximum(count, 1)
    mean = np.where(finite, f, 0.0).sum(axis=-3, keepdims=True) / safe
    square = np.where(finite, (f - mean) ** 2, 0.0).sum(axis=-3, keepdims=True)
    var = np.where(count >= 2, square / np.maximum(count - 1, 1), 0.0)
    loss = (0.5 * ((f - y) ** 2 - var)).mean(axis=-1)[..., 1:].mean(axis=-1)
    positive = np.where(np.isfinite(loss) & (loss > 0), loss, np.nan)
    with np.errstate(invalid="ignore"):
        out: NDArray[np.float64] = np.log(positive)
    return out


def pair_loss(errors: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
    """The U-statistic ``U = Σ_{s≠s'} ½ ⟨e_s, e_s'⟩ / (S (S − 1))`` and its leave-one-out values.

    ``⟨e_s, e_s'⟩`` is the mean over the columns of the product of rows s and s'.  For
    independent rows with mean d, U is unbiased for ``½ ⟨d, d⟩``.

    Parameters
    ----------
    errors : ndarray, shape (S, J)
        One row per independent seed, S ≥ 2.

    Returns
    -------
    U : float
    leave_one_out : ndarray, shape (S,)
        U without row i (NaN when S < 3).
    """
    S = errors.shape[0]
    gram = 0.5 * (errors @ errors.T) / errors.shape[1]
    pairs = gram.sum() - np.trace(gram)
    rows = gram.sum(axis=1) - np.diag(gram)
    with np.errstate(divide="ignore", invalid="ignore"):
        leave_one_out = (pairs - 2 * rows) / ((S - 1) * (S - 2))
    return float(pairs / (S * (S - 1))), leave_one_out


def seed_mean_log(
    f: NDArray[np.float64], y: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The limit's log loss from independent per-seed outputs, and its standard error.

    With the errors ``e_s = f̂_s − y`` (steps t ≥ 1, flattened) of the S seeds whose outputs
    are finite, the limit's loss ``½ mean_{t≥1, b} (f − y)²`` is estimated by the U-statistic
    of :func:`pair_loss`, the mean over pairs of distinct seeds of ``½ ⟨e_s, e_s'⟩``: the
    product of two independent estimates is unbiased, so U is, without the variance correction
    of :func:`log_losses` (U equals the seed mean of its corrected losses,
    ``½ mean[(f̄ − y)² − s²/S]``, negative ones included).  The standard error of ``log U`` is
    the jackknife over seeds, ``sqrt((S−1)/S Σ_i (log U_(i) − mean_i log U_(i))²)`` with
    ``U_(i)`` the statistic without seed i (``SE_jack(U)/U`` where some ``U_(i) ≤ 0``).

    **Accuracy** (derivation).  Write ``½ ⟨e_s, e_s'⟩ = θ + g_s + g_s' + ψ_ss'`` (Hoeffding),
    ``ζ₁ = Var g``, ``δ = Var ψ``.  Then ``Var U = 4ζ₁/S + 2δ/(S(S−1))`` and the jackknife
    has expectation ``4ζ₁/S + 4δ/(S(S−2))``: exact where the loss is large against the Monte
    Carlo noise of f (ζ₁ dominates), conservative where the noise dominates (near the optimum),
    by at most ``sqrt(2(S−1)/(S−2))`` in the SE (1.53 at S = 8, reached when f = y exactly).
    The former interval, ``sd_s(loss_s)/√S`` of the per-seed corrected losses, counts δ with
    the weight ``2/S`` instead of ``2/(S(S−1))``, S − 1 times too much, and its log losses
    exploded where a few seeds dominate the mean; ``tests/test_experiment_limit_transfer.py``
    checks the two expectations above, ``benchmarks/particle_calibration.py`` the intervals on
    the exact linear limit.

    Parameters
    ----------
    f : ndarray, shape (..., S, T, B)
        Per-seed outputs (NaN from a diverged step on); seeds on axis -3.
    y : ndarray, shape (B,)
        Targets.

    Returns
    -------
    log_loss, se : ndarray, shape (...)
        ``log U`` (NaN when U ≤ 0 or fewer than two seeds are finite) and its standard error
        (NaN with fewer than three finite seeds).
    """
    f = np.asarray(f, dtype=np.float64)
    lead = f.shape[:-3]
    log_loss, se = np.full(lead, np.nan), np.full(lead, np.nan)
    for index in np.ndindex(*lead):
        errors = (f[index][:, 1:] - y).reshape(f.shape[-3], -1)  # (S, (T−1)·B)
        errors = errors[np.isfinite(errors).all(axis=1)]
        S = errors.shape[0]
        if S < 2:
            continue
        U, leave_one_out = pair_loss(errors)
        if not U > 0:
            continue
        log_loss[index] = np.log(U)
        if S < 3:
            continue
        if (leave_one_out > 0).all():
            scaled = np.log(leave_one_out)
        else:
            scaled = leave_one_out / U
        se[index] = jackknife_se(scaled)
    return log_loss, se
