"""Rows of the transfer experiment beyond the optimum's slope: Depth-µP's monotone
improvement with depth (Fig. 10 top) and the two SP definitions' failure at depth (Claim 7.1,
Figs. 20 and 23).  The definitions and accepted ranges are in
:mod:`limitsim.experiments.transfer`'s docstring.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from limitsim.experiments._common import EDGE_TOLERANCE, SIGN_ONLY
from limitsim.experiments._digits import edge_fraction, per_seed_min
from limitsim.report import Claim
from limitsim.stats import Estimate, missing, paired_interval, proportion_interval

__all__ = [
    "NAME",
    "PARAM_LABELS",
    "best_per_depth",
    "monotone_claim",
    "monotone_step",
    "sp_fails_at_depth",
    "sp_instability",
]

NAME = "transfer"
PARAM_LABELS = {
    "depth_mup": "Depth-µP (1/2, 1/2)",
    "block_only": "block-only (1/2, 0)",
    "ode": "ODE (1, 0)",
    "standard": "SP (0, 0)",
    "standard_gamma1": "SP with γ = 1 (0, 1)",
}


def best_per_depth(ds: xr.Dataset, optimizer: str, param: str) -> np.ndarray:
    """Per-seed minimum over the optimizer's η window of the LogLoss, shape (n_depths,
    n_seeds) (NaN where a seed diverged at every η)."""
    window = list(ds.attrs[f"log2_etas_{optimizer}"])
    curves = ds.log_loss.sel(optimizer=optimizer, param=param, log2_eta=window)
    best = per_seed_min(curves, ("log2_eta",))
    return np.asarray(best.transpose("depth", "seed").values, dtype=np.float64)


def monotone_step(best: np.ndarray) -> tuple[Estimate, int]:
    """The deciding step of "every consecutive difference is < 0" (module docstring).

    Parameters
    ----------
    best : ndarray, shape (n_depths, n_seeds)
        Per-seed values at increasing depths.

    Returns
    -------
    estimate : Estimate
        Paired t interval of ``best[i + 1] − best[i]`` for the deciding step i: the step whose
        interval has the largest lower bound when some interval lies entirely above 0 (then
        the claim is not reproduced), else the step with the largest upper bound (reproduced
        exactly when that one lies below 0).
    index : int
        The deciding step i (from depth i to depth i + 1).
    """
    steps = [paired_interval(best[i + 1], best[i]) for i in range(best.shape[0] - 1)]
    if not steps:
        return missing(), 0
    if any(not e.finite for e in steps):
        i = next(k for k, e in enumerate(steps) if not e.finite)
        return steps[i], i
    above = [i for i, e in enumerate(steps) if e.low > 0]
    if above:
        i = max(above, key=lambda k: steps[k].low)
    else:
        i = max(range(len(steps)), key=lambda k: steps[k].high)
    return steps[i], i


def monotone_claim(ds: xr.Dataset, optimizer: str, depths: list[int]) -> Claim:
    """Fig. 10 top: under Depth-µP the per-seed best loss falls at every depth step."""
    estimate, i = monotone_step(best_per_depth(ds, optimizer, "depth_mup"))
    window = list(ds.attrs[f"log2_etas_{optimizer}"])
    curves = ds.log_loss.sel(optimizer=optimizer, param="depth_mup", log2_eta=window)
    edge = edge_fraction(curves, "log2_eta")
    step = f"L = {depths[i]} → {depths[i + 1]}" if len(depths) > 1 else "?"
    return Claim(
        experiment=NAME,
        claim="Depth-µP: the loss improves monotonically with depth",
        source="paper: Fig. 10 top: min LogLoss falls at every doubling of L (to ≈ −3.4 at "
        "L = 2^10)",
        quantity=f"per-seed min over η of LogLoss, L(next) − L, paired; deciding step {step} "
        f"of L = {depths[0]}..{depths[-1]} (all steps must be < 0), {optimizer}, "
        f"{ds.attrs.get('steps')} steps",
        estimate=estimate,
        paper="< 0 at every step",
        low=-math.inf,
        high=0.0,
        range_reason="sign only, every step (intersection-union test)",
        undecided=f"{edge:.0%} of the per-seed minima at the η grid's edge"
        if edge > EDGE_TOLERANCE
        else "",
    )


def sp_instability(ds: xr.Dataset, optimizer: str, param: str, depths: list[int]) -> Claim:
    """Claim 7.1: at the largest depth SP diverges at every η (fraction of seeds)."""
    top = depths[-1]
    curves = ds.log_loss.sel(optimizer=optimizer, param=param, depth=top)
    lost = int((~np.isfinite(curves).any("log2_eta")).sum())
    label = PARAM_LABELS.get(param, param)
    figures = (
        "Figs. 10 bottom, 20: L = 2^9, 2^10 diverge"
        if param == "standard"
        else "Fig. 23 (SP with γ = 1): instability at init does not depend on γ"
    )
    return Claim(
        experiment=NAME,
        claim=f"{label} is unstable at initialization: deep nets diverge at every η",
        source=f"paper: Claim 7.1 (stable at init ⇔ α ≥ 1/2); {figures}",
        quantity=f"fraction of seeds diverging at every η, L = {top}, {optimizer}",
        estimate=proportion_interval(lost, curves.sizes["seed"]),
        paper="every η diverges",
        low=0.5,
        high=1.0,
        range_reason="most seeds; Claim 7.1 gives e^(L^(1−2α)) growth at init",
    )


def sp_fails_at_depth(ds: xr.Dataset, optimizer: str, depths: list[int]) -> Claim:
    """Fig. 20: SP (0, 0) trains at the base depth and fails at the largest (paired)."""
    window = list(ds.attrs[f"log2_etas_{optimizer}"])
    curves = ds.log_loss.sel(optimizer=optimizer, param="standard", log2_eta=window)
    lost = (~np.isfinite(curves)).mean("log2_eta")
    top, base = depths[-1], depths[0]
    return Claim(
        experiment=NAME,
        claim="SP (0, 0) fails at large depth",
        source="paper: Fig. 20 (= Fig. 10 bottom): SP fails at large depth due to numerical issues",
        quantity=f"fraction of the η grid diverging, L = {top} − L = {base}, per seed, paired, "
        f"{optimizer}, {ds.attrs.get('steps')} steps",
        estimate=paired_interval(lost.sel(depth=top).values, lost.sel(depth=base).values),
        paper="fails at L = 2^9, 2^10",
        **SIGN_ONLY,
    )
