"""Fits of the diversity experiment's stored curves d(ε): κ̂ over a window, the slopes of the
normalised curves of Fig. 18 and how they grow with depth and with training time.

The datasets are :mod:`limitsim.experiments.diversity`'s: ``d`` (parametrization, depth, seed,
step, k) for finite nets and ``limit_d`` (parametrization, limit_depth, limit_step, limit_k)
for the exact linear limit, both at ε = k/L.  ``route`` is ``"finite"`` or ``"limit"``; the
limit has one "seed" (it is deterministic).  The *slope* of Fig. 18's normalised curve
d/(c ε^{1/2}) against log ε is 1/2 − κ̂ with κ̂ = 1 − slope of log d against log ε.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from limitsim.experiments._digits import EPS_MAX
from limitsim.stats import Estimate, fit_slope, missing

__all__ = [
    "curves",
    "depths_of",
    "deterministic",
    "growth",
    "noise_fits",
    "seeds_of",
    "slope_table",
    "time_growth",
    "time_slopes",
    "window_kappa",
    "window_slope",
]


def curves(
    ds: xr.Dataset, route: str, param: str, depth: int, step: int = -1
) -> tuple[np.ndarray, np.ndarray]:
    """(ε, d) at the recorded step index ``step``: shapes (K,) and (S, K) (S = 1, limit)."""
    if route == "limit":
        d = ds.limit_d.sel(parametrization=param, limit_depth=depth).isel(limit_step=step)
        table = d.values[None, :]
        ks = d.limit_k.values
    else:
        d = ds.d.sel(parametrization=param, depth=depth).isel(step=step).transpose("seed", "k")
        table, ks = d.values, d.k.values
    keep = np.isfinite(table).all(axis=0)
    return ks[keep] / depth, table[:, keep]


def _window(eps: np.ndarray, d: np.ndarray, low: float) -> np.ndarray:
    """The ε = low, 2·low, …, 1/16 with d > 0 (a boolean mask of ``eps``)."""
    ratio = eps / low
    on_grid = np.isclose(ratio, np.round(ratio), rtol=0, atol=1e-9)
    return on_grid & (eps >= low - 1e-12) & (eps <= EPS_MAX + 1e-12) & (d > 0)


def window_kappa(eps: np.ndarray, d: np.ndarray, low: float) -> float:
    """κ̂ = 1 − slope of log d vs log ε over ε = low, 2·low, …, 1/16 (the same ε at every L).

    A fixed set of ε keeps a window or sampling artefact out of trends across depth: ``low`` is
    1/L of the smallest depth, and deeper nets use only their ε that are multiples of it.
    """
    keep = _window(eps, d, low)
    if keep.sum() < 2:
        return math.nan
    return float(1.0 - np.polyfit(np.log(eps[keep]), np.log(d[keep]), 1)[0])


def window_slope(eps: np.ndarray, d: np.ndarray, low: float) -> Estimate:
    """Slope 1/2 − κ̂ of the normalised curve over the window of :func:`window_kappa`, with
    the least-squares t interval of the log–log fit (:func:`limitsim.stats.fit_slope`)."""
    keep = _window(eps, d, low)
    fit = fit_slope(np.log(eps[keep]), np.log(d[keep]))
    return Estimate(value=fit.value - 0.5, low=fit.low - 0.5, high=fit.high - 0.5, seeds=None)


def depths_of(ds: xr.Dataset, route: str) -> list[int]:
    """The depths of ``route``."""
    return [int(L) for L in ds["limit_depth" if route == "limit" else "depth"].values]


def seeds_of(ds: xr.Dataset, route: str) -> int:
    """Seeds of ``route`` (1 for the deterministic limit)."""
    return 1 if route == "limit" else int(ds.sizes["seed"])


def noise_fits(ds: xr.Dataset, route: str, param: str, depth: int, **kw: Any) -> list[Any]:
    """:func:`limitsim.measures.noise_drift_fit` per seed (one for the limit); None if d ≤ 0."""
    from limitsim.measures import noise_drift_fit

    eps, table = curves(ds, route, param, depth)
    return [
        noise_drift_fit(eps, row, **kw) if np.all(row > 0) and eps.size >= 4 else None
        for row in table
    ]


def slope_table(ds: xr.Dataset, route: str, param: str) -> np.ndarray:
    """1/2 − κ̂ with κ̂ over the fixed window at the last recorded step, shape (n_depths,
    n_seeds) (one column for the limit): the slopes of Fig. 18's normalised curves."""
    depths = depths_of(ds, route)
    low = 1 / depths[0]
    rows = []
    for L in depths:
        eps, table = curves(ds, route, param, L)
        rows.append([0.5 - window_kappa(eps, row, low) for row in table])
    return np.array(rows)


def growth(ds: xr.Dataset, route: str, param: str) -> np.ndarray:
    """Per seed, slope of (1/2 − κ̂) against log2 L (:func:`slope_table`; Fig. 18)."""
    x = np.log2(np.asarray(depths_of(ds, route), dtype=float))
    return np.array(
        [np.polyfit(x, col, 1)[0] if np.all(np.isfinite(col)) else np.nan
         for col in slope_table(ds, route, param).T]
    )  # fmt: skip


def time_slopes(ds: xr.Dataset, route: str, param: str) -> list[list[Estimate]]:
    """Fig. 18 over training: at the largest depth L, the slope 1/2 − κ̂ over ε ∈ [1/L, 1/16]
    (every resolved ε) per recorded step (outer list) and seed (inner list; one for the limit),
    each with its log–log fit interval."""
    top = depths_of(ds, route)[-1]
    n_steps = ds.sizes["limit_step" if route == "limit" else "step"]
    out = []
    for r in range(n_steps):
        eps, table = curves(ds, route, param, top, step=r)
        out.append([window_slope(eps, row, 1 / top) for row in table])
    return out


def time_growth(ds: xr.Dataset, route: str, param: str) -> tuple[np.ndarray, np.ndarray]:
    """Per seed, slope(last recorded step) − slope(first) at the largest depth
    (:func:`time_slopes`), and the fits' interval half-widths added in quadrature."""
    slopes = time_slopes(ds, route, param)
    first, last = slopes[0], slopes[-1]
    values = np.array([b.value - a.value for a, b in zip(first, last, strict=True)])
    half = np.array(
        [math.hypot(a.value - a.low, b.value - b.low) for a, b in zip(first, last, strict=True)]
    )
    return values, half


def deterministic(values: np.ndarray, half_widths: np.ndarray) -> Estimate:
    """A deterministic sum with the fits' interval half-widths added in quadrature."""
    if not (np.all(np.isfinite(values)) and np.all(np.isfinite(half_widths))):
        return missing(None)
    value = float(np.sum(values))
    half = float(np.sqrt(np.sum(np.square(half_widths))))
    return Estimate(value=value, low=value - half, high=value + half, seeds=None)
