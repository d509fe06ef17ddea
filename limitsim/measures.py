"""Measures of trained resnets, computed from a Run's recorded probe kernels (any route).

Every function takes a :class:`limitsim.Run` with ``recorded`` (or the
:class:`limitsim.Recorded` itself) and uses only the kernels of the probe input, so finite
networks (``⟨u|v⟩ = u·v/n``) and the limit routes (expectations of kets) are measured by the
same code (``theory/algorithms.md`` §3).  ``step`` selects a recorded step (default: the last
one recorded); layers are ``l = 0..L`` (``x^l``), blocks ``l = 1..L`` (``h^l``, ``δh̃^l``).

- Feature diversity ``d_t(λ, ε) = ‖x_t^{⌊(λ+ε)L⌋} − x_t^{⌊λL⌋}‖/√n`` in kernel form
  ``d² = K[a,a] + K[b,b] − 2K[a,b]`` (Def. 7.6), its exponent κ̂ and the normalised curves of
  the paper's Figs. 17–19.
- Cross-layer correlation of ``δh̃`` (Sec. 8.3: φ′ decorrelates the gradients of blocks).
- Feature learning ``RMS(h_t^l − h_s^l)`` and faithfulness ``RMS(h_t^l)`` (Defs. 7.3, 7.5).
- Output change ``RMS(f_t − f_s)`` and fitted depth exponents (App. D.2, Claims 7.2–7.3).
- Coordinate-check tables across widths and depths (:func:`coordinate_check`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from limitsim._noise_drift import NoiseDriftFit, noise_drift_fit
from limitsim.run import Recorded, Run

__all__ = [
    "DiversityFit",
    "ExponentFit",
    "NoiseDriftFit",
    "coordinate_check",
    "diversity_exponent",
    "faithfulness",
    "feature_diversity",
    "feature_learning",
    "fit_exponent",
    "gradient_correlation",
    "lag_correlation",
    "noise_drift_fit",
    "normalized_diversity",
    "output_change",
]

#: Depth fractions of the coordinate check (input, L/4, L/2, 3L/4, last layer; Figs. 8–9).
COORDINATE_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class DiversityFit:
    """Least-squares fit of ``log d`` against ``log ε`` (Def. 7.6).

    Attributes
    ----------
    kappa, kappa_se : float
        κ̂ = 1 − slope and its standard error (that of the slope).
    slope, intercept : float
    eps, d : ndarray, shape (k,)
        The ε values (multiples of 1/L) and diversities used in the fit.
    """

    kappa: float
    kappa_se: float
    slope: float
    intercept: float
    eps: NDArray[np.float64]
    d: NDArray[np.float64]


@dataclass(frozen=True)
class ExponentFit:
    """Fitted power law ``|value| ∝ depth^slope`` (least squares on logs)."""

    slope: float
    stderr: float
    intercept: float


# ------------------------------------------------------------------- diversity
def feature_diversity(
    run: Run | Recorded,
    eps: ArrayLike,
    *,
    lam: float | Sequence[float] = 0.5,
    step: int | None = None,
) -> NDArray[np.float64]:
    """Feature diversity ``d_t(λ, ε)`` for each ε, shape of ``eps``.

    ``a = ⌊(λ+ε)L⌋``, ``b = ⌊λL⌋`` and ``d² = K[a,a] + K[b,b] − 2K[a,b]`` with
    ``K = recorded.x_layers`` at ``step``.  A sequence ``lam`` averages ``d²`` over the λ
    values (less noisy than a single λ).  ``a`` must not exceed L.
    """
    rec, r = _select(run, step)
    K = rec.x_layers[r]
    L = K.shape[0] - 1
    eps = np.asarray(eps, dtype=np.float64)
    total = np.zeros(eps.shape)
    lams = np.atleast_1d(np.asarray(lam, dtype=np.float64))
    for value in lams:
        b = math.floor(value * L + 1e-9)
        a = np.floor((value + eps) * L + 1e-9).astype(int)
        if b < 0 or np.any(a > L) or np.any(eps < 0):
            raise ValueError(f"λ = {value} and ε = {eps} reach outside layers 0..{L}")
        total += K[a, a] + K[b, b] - 2 * K[a, b]
    return np.sqrt(np.maximum(total / lams.size, 0.0))


def diversity_exponent(
    run: Run | Recorded,
    *,
    lam: float | Sequence[float] = 0.5,
    eps_range: tuple[float, float] = (1 / 256, 1 / 16),
    step: int | None = None,
) -> DiversityFit:
    """κ̂ = 1 − slope of ``log d`` against ``log ε`` over ``ε = k/L`` in ``eps_range``.

    Def. 7.6: ``d = Ω(ε^{1−κ})``; Depth-µP gives κ = 1/2 (Brownian increments, Claim 7.5),
    α ∈ (1/2, 1] gives κ = 0 (Claim 7.4).  ε runs over the multiples of 1/L in the range
    (at least ε = 1/L when L < 256: "what the depth allows"); at least three are needed.
    The standard error is the least-squares one; the d at nested ε are correlated, so it is
    a lower bound on the real uncertainty.
    """
    rec, _ = _select(run, step)
    L = rec.depth
    low, high = eps_range
    if not 0 < low < high:
        raise ValueError(f"eps_range must satisfy 0 < low < high, got {eps_range}")
    ks = np.arange(max(1, math.ceil(low * L - 1e-9)), math.floor(high * L + 1e-9) + 1)
    if ks.size < 3:
        raise ValueError(
            f"depth L = {L} gives {ks.size} multiples of 1/L in eps_range {eps_range}; "
            "need at least 3 (use a deeper network or a wider range)"
        )
    eps = ks / L
    d = feature_diversity(rec, eps, lam=lam, step=step)
    if np.any(d <= 0) or not np.all(np.isfinite(d)):
        raise ValueError("feature diversity is zero or not finite; cannot fit its exponent")
    fit = stats.linregress(np.log(eps), np.log(d))
    return DiversityFit(
        kappa=1.0 - float(fit.slope),
        kappa_se=float(fit.stderr),
        slope=float(fit.slope),
        intercept=float(fit.intercept),
        eps=eps,
        d=d,
    )


def normalized_diversity(
    run: Run | Recorded,
    eps: ArrayLike,
    *,
    lam: float | Sequence[float] = 0.5,
    step: int | None = None,
    eps_ref: float = 1 / 256,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The normalised curves of Figs. 17 and 18–19.

    Returns
    -------
    scaled : ndarray
        ``c d(ε)`` with ``c d(ε_ref) = 1`` (Fig. 17).
    ratio : ndarray
        ``d(ε) / (c′ ε^{1/2})`` with ``c′ d(ε_ref) / ε_ref^{1/2} = 1`` (Figs. 18–19): flat when
        κ = 1/2, rising like ε^{1/2} when the features are redundant.
    """
    eps = np.asarray(eps, dtype=np.float64)
    d = feature_diversity(run, eps, lam=lam, step=step)
    ref = float(feature_diversity(run, eps_ref, lam=lam, step=step))
    if not ref > 0:
        raise ValueError(f"d(eps_ref = {eps_ref}) is zero: the depth is below 1/eps_ref")
    return d / ref, (d / np.sqrt(eps)) / (ref / math.sqrt(eps_ref))


# ---------------------------------------------------------- gradients, features
def gradient_correlation(run: Run | Recorded, *, step: int | None = None) -> NDArray[np.float64]:
    """Correlation ``⟨δh̃^l|δh̃^m⟩ / sqrt(⟨δh̃^l|δh̃^l⟩⟨δh̃^m|δh̃^m⟩)``, shape (L, L) (Sec. 8.3)."""
    rec, r = _select(run, step)
    if rec.dh_layers is None:
        raise ValueError("the run has no backward kernels (record with Record(backward=True))")
    G = rec.dh_layers[r]
    norm = np.sqrt(np.clip(np.diag(G), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(G / np.outer(norm, norm))


def lag_correlation(
    run: Run | Recorded, lags: ArrayLike, *, step: int | None = None
) -> NDArray[np.float64]:
    """Mean over l of the δh̃ correlation between blocks l and l + lag, for each lag.

    The paper's prediction for homogeneous φ at init is ``(E φ′)² / E φ′²``: 1 for linear,
    1/2 for relu, 0 for abs (``tp6-notes.md`` §4).
    """
    C = gradient_correlation(run, step=step)
    lags = np.atleast_1d(np.asarray(lags, dtype=int))
    if np.any(lags < 0) or np.any(lags >= C.shape[0]):
        raise ValueError(f"lags must lie in [0, {C.shape[0] - 1}], got {lags}")
    return np.array([np.nanmean(np.diagonal(C, offset=int(k))) for k in lags])


def feature_learning(
    run: Run | Recorded,
    *,
    step: int | None = None,
    ref_step: int = 0,
    fractions: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """``RMS(h_t^l − h_s^l)`` of the probe between recorded steps s = ``ref_step`` and t.

    Returns shape (L,) for blocks 1..L, or one value per depth fraction λ ∈ (0, 1] (block
    ``max(1, ⌈λL⌉)``).  Θ(1) in L for Depth-µP (Def. 7.5); the one-step size scales as
    ``L^{max(−γ, 1−α−γ)}``.
    """
    rec, r = _select(run, step)
    s = rec.step_index(ref_step)
    H = rec.h_steps
    diff = np.sqrt(np.maximum(H[r, r] + H[s, s] - 2 * H[r, s], 0.0))
    return _at_blocks(diff, fractions)


def faithfulness(
    run: Run | Recorded, *, step: int | None = None, fractions: ArrayLike | None = None
) -> NDArray[np.float64]:
    """``RMS(h_t^l)`` per block (or per depth fraction): Θ(1) iff faithful (Def. 7.3)."""
    rec, r = _select(run, step)
    return _at_blocks(np.sqrt(np.maximum(rec.h_steps[r, r], 0.0)), fractions)


def output_change(run: Run, *, step: int = 1, ref_step: int = 0) -> float:
    """``RMS(f_t − f_s)`` over examples and outputs.

    Uses ``f_eval`` (fixed evaluation inputs) when the run has it, else ``f`` (then only
    meaningful when both steps train on the same batch, e.g. a full-batch task).
    """
    f = run.f_eval if run.f_eval is not None else run.f
    if not (0 <= ref_step < f.shape[0] and 0 <= step < f.shape[0]):
        raise ValueError(f"steps must lie in [0, {f.shape[0] - 1}], got {ref_step}, {step}")
    return float(np.sqrt(np.mean((f[step] - f[ref_step]) ** 2)))


def fit_exponent(depths: ArrayLike, values: ArrayLike) -> ExponentFit:
    """Fit ``|values| ∝ depths^slope`` by least squares on logs (scipy.stats.linregress)."""
    x = np.log(np.asarray(depths, dtype=np.float64))
    y = np.log(np.abs(np.asarray(values, dtype=np.float64)))
    if x.shape != y.shape or x.size < 3 or not np.all(np.isfinite(y)):
        raise ValueError("need at least 3 depths with finite nonzero values of the same shape")
    fit = stats.linregress(x, y)
    return ExponentFit(float(fit.slope), float(fit.stderr), float(fit.intercept))


# ------------------------------------------------------------ coordinate check
def coordinate_check(
    runs: Sequence[Run], *, fractions: Sequence[float] = COORDINATE_FRACTIONS
) -> Any:
    """RMS of x, h and f (and of their changes since step 0) over width × depth × step.

    Parameters
    ----------
    runs : sequence of Run
        Finite runs with ``recorded`` (same recorded steps, including step 0); runs with the
        same ``config["width"]`` and ``config["depth"]`` (e.g. several seeds) are averaged.
    fractions : sequence of float
        Depth fractions λ: layer ``round(λL)`` for x, block ``max(1, ⌈λL⌉)`` for h.

    Returns
    -------
    xarray.Dataset
        Dimensions ``width``, ``depth``, ``step``, ``fraction``; variables ``x_rms``,
        ``x_delta``, ``h_rms``, ``h_delta`` (width, depth, step, fraction), ``f_rms``,
        ``f_delta`` (width, depth, step), each with a ``*_se`` standard error over seeds
        (NaN for a single seed).  ``f`` entries are NaN at the final step ``T`` (no output
        is computed after the last update).
    """
    import xarray as xr

    if not runs:
        raise ValueError("coordinate_check needs at least one run")
    steps = _common_steps(runs)
    widths = sorted({int(r.config["width"]) for r in runs})
    depths = sorted({int(r.config["depth"]) for r in runs})
    fr = np.asarray(fractions, dtype=np.float64)
    names = ("x_rms", "x_delta", "h_rms", "h_delta", "f_rms", "f_delta")
    shape = (len(widths), len(depths), steps.size)
    values = {k: np.full((*shape, fr.size), np.nan) for k in names[:4]}
    values.update({k: np.full(shape, np.nan) for k in names[4:]})
    errors = {k: np.full_like(v, np.nan) for k, v in values.items()}
    for i, width in enumerate(widths):
        for j, depth in enumerate(depths):
            group = [r for r in runs if (r.config["width"], r.config["depth"]) == (width, depth)]
            if not group:
                continue
            table = [_coordinate_row(r, steps, fr) for r in group]
            for key in names:
                samples = np.stack([row[key] for row in table])
                values[key][i, j] = samples.mean(axis=0)
                if len(group) > 1:
                    errors[key][i, j] = samples.std(axis=0, ddof=1) / math.sqrt(len(group))
    dims4, dims3 = ("width", "depth", "step", "fraction"), ("width", "depth", "step")
    data = {}
    for key in names:
        dims = dims4 if key in names[:4] else dims3
        data[key] = (dims, values[key])
        data[f"{key}_se"] = (dims, errors[key])
    coords = {"width": widths, "depth": depths, "step": steps, "fraction": fr}
    return xr.Dataset(data, coords=coords)


def _coordinate_row(
    run: Run, steps: NDArray[np.int64], fr: NDArray[np.float64]
) -> dict[str, NDArray[np.float64]]:
    rec = run.recorded
    assert rec is not None
    L, r0 = rec.depth, rec.step_index(0)
    layers = np.rint(fr * L).astype(int)
    X, H = rec.x_steps, rec.h_steps
    idx = np.arange(steps.size)
    xd = np.stack([X[r, r] + X[r0, r0] - 2 * X[r, r0] for r in idx])
    hd = np.stack([H[r, r] + H[r0, r0] - 2 * H[r, r0] for r in idx])
    row = {
        "x_rms": np.sqrt(np.maximum(X[idx, idx][:, layers], 0)),
        "x_delta": np.sqrt(np.maximum(xd[:, layers], 0)),
        "h_rms": np.stack([_at_blocks(np.sqrt(np.maximum(H[r, r], 0)), fr) for r in idx]),
        "h_delta": np.stack([_at_blocks(np.sqrt(np.maximum(d, 0)), fr) for d in hd]),
    }
    f = run.f_eval if run.f_eval is not None else run.f
    f_rms = np.full(steps.size, np.nan)
    f_delta = np.full(steps.size, np.nan)
    for k, t in enumerate(steps):
        if t < f.shape[0]:
            f_rms[k] = np.sqrt(np.mean(f[t] ** 2))
            f_delta[k] = np.sqrt(np.mean((f[t] - f[0]) ** 2))
    row["f_rms"], row["f_delta"] = f_rms, f_delta
    return row


# ---------------------------------------------------------------------- helpers
def _recorded(run: Run | Recorded) -> Recorded:
    if isinstance(run, Recorded):
        return run
    if isinstance(run, Run):
        if run.recorded is None:
            raise ValueError("the run has no recorded kernels: pass record=limitsim.Record(...)")
        return run.recorded
    raise TypeError(f"expected a Run or Recorded, got {type(run).__name__}")


def _select(run: Run | Recorded, step: int | None) -> tuple[Recorded, int]:
    rec = _recorded(run)
    return rec, (len(rec.steps) - 1 if step is None else rec.step_index(step))


def _at_blocks(values: NDArray[np.float64], fractions: ArrayLike | None) -> NDArray[np.float64]:
    """``values`` (L,) over blocks 1..L, or at blocks ``max(1, ⌈λL⌉)`` for the fractions."""
    if fractions is None:
        return values
    fr = np.asarray(fractions, dtype=np.float64)
    if np.any(fr < 0) or np.any(fr > 1):
        raise ValueError(f"depth fractions must lie in [0, 1], got {fr}")
    L = values.shape[0]
    at: NDArray[np.float64] = values[np.maximum(1, np.ceil(fr * L - 1e-9).astype(int)) - 1]
    return at


def _common_steps(runs: Sequence[Run]) -> NDArray[np.int64]:
    steps = [tuple(_recorded(r).steps.tolist()) for r in runs]
    if len(set(steps)) != 1:
        raise ValueError(f"all runs must record the same steps, got {sorted(set(steps))}")
    if 0 not in steps[0]:
        raise ValueError("the coordinate check needs step 0 recorded")
    return np.asarray(steps[0], dtype=np.int64)
