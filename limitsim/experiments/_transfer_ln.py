"""Fig. 12 of the transfer experiment: abs with pre-LN at log2 a = −3.

The paper's Fig. 12 trains abs resnets with LayerNorm on x^{l−1} before W^l (MS kept) at
log2 a = −3 with Adam: under Depth-µP the optimal η is stable across L = 2..2^10 (left),
under block-only (1/2, 0) it shifts left (right).  This grid repeats it on digits
(:func:`limitsim.experiments._digits.train_points`, base depth 8) for the parametrizations
``ln_params`` at the depths ``ln_depths`` over log2(η / base_eta_adam) ∈ ``ln_log2_etas``; its
variables carry the prefix ``ln_`` and the dimensions ``ln_param``, ``ln_depth``,
``ln_log2_eta`` (and ``seed``, shared with the main grid).

Claims, as for Fig. 10 (per-seed optimum, :func:`~limitsim.experiments._common.optimum_trend`,
its signed slope against log2 L with a Student-t interval over seeds; undecided when more than
10% of the per-seed optima sit at the η grid's edge): Depth-µP's slope lies in [−0.25, 0.25];
block-only's is ≤ −0.25 (half the L^{-1/2} shift, the midpoint between the two hypotheses).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from limitsim.experiments._common import Context, OptimumTrend, optimum_trend, seed_axis
from limitsim.experiments._digits import BASE_DEPTH, sweep_digits
from limitsim.experiments._plots import plot_optima, plot_seed_mean
from limitsim.experiments._transfer_rows import NAME, PARAM_LABELS
from limitsim.plotting import depth_colors, new_figure, save_figure
from limitsim.report import Claim

__all__ = ["LN_RANGES", "claims_ln", "plot_ln", "run_ln", "trend_ln"]

#: Accepted slope range (low, high) and the paper's statement, per parametrization.
LN_RANGES = {
    "depth_mup": (-0.25, 0.25, "stable around log2(η/1e-3) ≈ −4…−3", "transfers"),
    "block_only": (-math.inf, -0.25, "shifts left with L", "moves left with depth"),
}
FIXED = ("width", "steps", "batch", "task", "window")


def run_ln(sizes: Mapping[str, Any], context: Context | None = None) -> xr.Dataset:
    """The Fig. 12 grid (``ln_params`` × ``ln_depths`` × ``ln_log2_etas`` × seed)."""
    axes = {
        "parametrization": list(sizes["ln_params"]),
        "depth": list(sizes["ln_depths"]),
        "log2_eta": [float(v) for v in sizes["ln_log2_etas"]],
        "seed": seed_axis(context, int(sizes["seeds"])),
    }
    fixed = {
        **{key: sizes[key] for key in FIXED},
        "phi": sizes["ln_phi"],
        "pre_ln": True,
        "log2_a": float(sizes["ln_log2_a"]),
        "optimizer": "adam",
        "base_eta": float(sizes["base_eta_adam"]),
    }
    ds = sweep_digits(
        context, f"{NAME}_ln", fixed, axes, tuple(fixed), batch_axes=("log2_eta", "seed")
    )
    ds = ds[["log_loss"]].rename(
        parametrization="ln_param", depth="ln_depth", log2_eta="ln_log2_eta", log_loss="ln_log_loss"
    )
    ds.attrs = {}
    return ds


def _depths(ds: xr.Dataset) -> list[int]:
    return [int(L) for L in ds.ln_depth.values]


def trend_ln(ds: xr.Dataset, param: str) -> OptimumTrend:
    """Per-seed optimal log2 η of ``param`` in the Fig. 12 grid and its slope vs log2 L."""
    table = ds.ln_log_loss.sel(ln_param=param).transpose("ln_depth", "ln_log2_eta", "seed")
    return optimum_trend(ds.ln_log2_eta.values, table.values, _depths(ds))


def claims_ln(ds: xr.Dataset) -> list[Claim]:
    """Fig. 12: Depth-µP transfers η, block-only does not (abs, pre-LN, log2 a = −3)."""
    if "ln_log_loss" not in ds:
        return []
    depths = _depths(ds)
    setup = f"{ds.attrs.get('ln_phi')}, pre-LN, log2 a = {ds.attrs.get('ln_log2_a')}"
    out = []
    for param in (str(p) for p in ds.ln_param.values):
        if param not in LN_RANGES:
            continue
        low, high, paper, verb = LN_RANGES[param]
        result = trend_ln(ds, param)
        side = "left" if param == "depth_mup" else "right"
        out.append(
            Claim(
                experiment=NAME,
                claim=f"{setup}: {PARAM_LABELS.get(param, param)}: the optimal η {verb}",
                source=f"paper: Fig. 12 {side}: abs with pre-LN, log2 a = −3: {paper}",
                quantity=f"slope of optimal log2 η vs log2 L, L = {depths[0]}..{depths[-1]}, "
                f"{setup}, adam, {ds.attrs.get('steps')} steps",
                estimate=result.slope,
                paper=paper,
                low=low,
                high=high,
                range_reason="±0.25: half the L^-1/2 shift (theory)",
                undecided=result.undecided("η", depths),
            )
        )
    return out


def plot_ln(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """Fig. 12: LogLoss vs log2 η per depth for each parametrization, and argmin vs L."""
    params = [str(p) for p in ds.ln_param.values]
    depths = _depths(ds)
    colors = depth_colors(depths)
    fig, axes = new_figure(len(params) + 1, 1, width=3.2, height=2.7)
    for col, param in enumerate(params):
        ax = axes[0, col]
        for L in depths:
            curve = ds.ln_log_loss.sel(ln_param=param, ln_depth=L)
            plot_seed_mean(ax, ds.ln_log2_eta, curve, color=colors[L], label=f"L = {L}",
                           ms=2.5, gaps=False)  # fmt: skip
        ax.set_title(f"{PARAM_LABELS.get(param, param)} (Fig. 12)")
        ax.set_xlabel(f"log2(η / {ds.attrs.get('base_eta_adam', 'η0')})")
        ax.set_ylabel("log training loss (window)")
        ax.legend(fontsize=6)
    ax = axes[0, -1]
    trends = {PARAM_LABELS.get(param, param): trend_ln(ds, param) for param in params}
    labels = ("log2 L", "per-seed argmin log2(η / η0), 95% CI", "optimal log2 η vs depth")
    plot_optima(ax, depths, trends, labels)
    fig.suptitle(
        f"{ds.attrs.get('ln_phi')} with pre-LN, log2 a = {ds.attrs.get('ln_log2_a')}, Adam, "
        f"{ds.attrs.get('task', 'digits')}, width {ds.attrs.get('width')}, "
        f"{ds.attrs.get('steps')} steps, base depth {BASE_DEPTH}; bands: ±1 SE over seeds",
        fontsize=9,
    )
    return save_figure(fig, out_dir, f"{NAME}_ln")
