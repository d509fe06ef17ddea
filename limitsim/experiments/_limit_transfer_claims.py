"""The limit_transfer experiment's optima and claims (the n = ∞ analogue of Fig. 10).

The dataset is the one :func:`limitsim.experiments.limit_transfer.run` returns; block-only's
curves are Depth-µP's re-read through :func:`shift`, as that module's docstring derives.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from limitsim.experiments._common import TRANSFER_SLOPE, OptimumTrend, optimum_trend
from limitsim.report import Claim
from limitsim.stats import paired_interval, spline_argmin, t_interval

NAME = "limit_transfer"
PARAMS = ("depth_mup", "block_only")
PARAM_LABELS = {"depth_mup": "Depth-µP (1/2, 1/2)", "block_only": "block-only (1/2, 0)"}


def shift(param: str, depth: int) -> float:
    """log2 η of ``param`` minus log2 η of the Depth-µP run it equals: −½ log2 L or 0."""
    return -0.5 * math.log2(depth) if param == "block_only" else 0.0


def trend(ds: xr.Dataset, optimizer: str, param: str, width: int | None = None) -> OptimumTrend:
    """Per-seed optimal log2 η at every depth and its slope against log2 L.

    At n = ∞, or for the width-``width`` networks of the overlay (``finite_log_loss``).  Per
    seed and depth the optimum is :func:`limitsim.stats.spline_argmin` (the calibration in
    :mod:`limitsim.experiments.limit_transfer`'s docstring).  Computed on Depth-µP's window;
    block-only's optima are Depth-µP's shifted by ½ log2 L (module docstring), so its per-seed
    slopes are Depth-µP's minus 1/2.
    """
    depths = [int(L) for L in ds.depth.values]
    window = list(ds.attrs[f"log2_etas_{optimizer}"])
    if width is None:
        curves = ds.log_loss.sel(param="depth_mup")
    else:
        curves = ds.finite_log_loss.sel(finite_width=width)
    curves = curves.sel(optimizer=optimizer, log2_eta=window)
    base = optimum_trend(
        window, curves.transpose("depth", "log2_eta", "seed").values, depths, locate=spline_argmin
    )
    if param == "depth_mup":
        return base
    offsets = np.array([shift(param, L) for L in depths])[:, None]
    slopes = base.slopes - 0.5
    return OptimumTrend(t_interval(slopes), base.optima + offsets, base.at_edge, slopes)


def claims(ds: xr.Dataset) -> list[Claim]:
    """Slope of the n = ∞ optimum per (optimizer, parametrization); Depth-µP's last doubling."""
    out = []
    depths = [int(L) for L in ds.depth.values]
    regime = (
        f"n = ∞ (particles, {ds.attrs['n_particles']}/seed), {ds.attrs['phi']}, "
        f"{ds.attrs['steps']} full-batch steps"
    )
    for opt in (str(o) for o in ds.optimizer.values):
        for param in PARAMS:
            result = trend(ds, opt, param)
            mup = param == "depth_mup"
            out.append(
                Claim(
                    experiment=NAME,
                    claim=f"{PARAM_LABELS[param]}: the n = ∞ optimal η "
                    + ("converges as L grows" if mup else "drifts with depth"),
                    source="extension: Fig. 10 "
                    + ("top" if mup else "middle")
                    + " at n = ∞ (the paper shows finite widths; "
                    + (
                        "Depth-µP's limit has an L → ∞ limit)"
                        if mup
                        else "block-only is "
                        "Depth-µP at η L^1/2, so its optimum moves by −1/2 per doubling)"
                    ),
                    quantity=f"slope of optimal log2 η vs log2 L, L = {depths[0]}..{depths[-1]}, "
                    f"{opt}, {regime}",
                    estimate=result.slope,
                    paper="flat" if mup else "≈ −0.5 per doubling",
                    low=-TRANSFER_SLOPE if mup else -math.inf,
                    high=TRANSFER_SLOPE if mup else -TRANSFER_SLOPE,
                    range_reason="±0.25: half the L^-1/2 shift (theory)",
                    undecided=result.undecided("η", depths),
                )
            )
            if mup and len(depths) >= 2:
                last = result.optima[-1] - result.optima[-2]
                out.append(
                    Claim(
                        experiment=NAME,
                        claim="Depth-µP: the n = ∞ optimal η has converged at the largest depths",
                        source="extension: Fig. 10 top at n = ∞ (the optimum converges as L grows)",
                        quantity=f"shift of the optimal log2 η from L = {depths[-2]} to "
                        f"{depths[-1]}, paired over seeds, {opt}, {regime}",
                        estimate=paired_interval(result.optima[-1], result.optima[-2]),
                        paper="flat",
                        low=-TRANSFER_SLOPE,
                        high=TRANSFER_SLOPE,
                        range_reason="±0.25 per doubling: half the L^-1/2 shift (theory)",
                        undecided=""
                        if np.isfinite(last).any()
                        else "every run diverged at the largest depths",
                    )
                )
    return out
