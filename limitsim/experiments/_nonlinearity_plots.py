"""Figures of the nonlinearity experiment (abs vs relu, Figs. 3 and 19; the family over θ)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import xarray as xr

from limitsim.experiments._digits import at_best_eta
from limitsim.experiments._diversity_plot import plot_normalized
from limitsim.experiments._homogeneous import ABS_THETA, lag_prediction
from limitsim.plotting import depth_colors, new_figure, save_figure

__all__ = ["plot_family", "plot_pair"]

PHI_STYLES = {"relu": "--", "abs": "-"}


def plot_pair(
    ds: xr.Dataset, best: xr.DataArray, se: xr.DataArray, out_dir: Path, name: str
) -> list[Path]:
    """abs vs relu: LogLoss vs η, best loss vs L, δh̃ correlation, Fig. 19 curves, κ̂."""
    phis = [str(p) for p in ds.phi.values]
    depths = [int(d) for d in ds.depth.values]
    colors = depth_colors(depths)
    fig, axes = new_figure(3, 2, width=3.4, height=2.8)
    ax = axes[0, 0]
    for phi in phis:
        for L in depths:
            curve = ds.log_loss.sel(phi=phi, depth=L)
            mean = curve.mean("seed", skipna=False)  # a diverged seed: a gap
            band = curve.std("seed") / math.sqrt(curve.sizes["seed"])
            ax.plot(
                ds.log2_eta,
                mean,
                PHI_STYLES.get(phi, ":"),
                marker="o",
                ms=3,
                color=colors[L],
                label=f"{phi}, L = {L}",
            )
            ax.fill_between(ds.log2_eta, mean - band, mean + band, color=colors[L], alpha=0.15)
    ax.set_xlabel(f"log2(η / {ds.attrs.get('base_eta')})")
    ax.set_ylabel("log training loss (natural log)")
    ax.set_title("LogLoss vs η (solid: abs, dashed: relu)")
    ax.legend(fontsize=6, ncol=2)
    ax = axes[0, 1]
    for k, phi in enumerate(phis):
        ax.errorbar(
            np.log2(depths),
            best.sel(phi=phi),
            yerr=se.sel(phi=phi),
            marker="o",
            capsize=2,
            color=f"C{k}",
            label=phi,
        )
    ax.set_xlabel("log2 L (depth)")
    ax.set_ylabel("min over η of LogLoss")
    ax.set_title("best loss vs depth (Fig. 3 right)")
    ax.legend(fontsize=7)
    ax = axes[0, 2]
    lag = at_best_eta(ds, "lag1")
    for k, phi in enumerate(phis):
        for r, style in ((0, ":"), (-1, "-")):
            values = lag.sel(phi=phi).isel(step=r)
            ax.errorbar(
                np.log2(depths),
                values.mean("seed"),
                yerr=values.std("seed") / math.sqrt(values.sizes["seed"]),
                marker="o",
                ls=style,
                capsize=2,
                color=f"C{k}",
                label=f"{phi}, step {int(ds.step.values[r])}",
            )
    for theta in (0.0, ABS_THETA):  # relu, abs
        ax.axhline(float(lag_prediction(theta)), color="0.5", lw=0.8, ls="--")
    ax.set_xlabel("log2 L (depth)")
    ax.set_ylabel("corr(δh̃ˡ, δh̃ˡ⁺¹), mean over l")
    ax.set_title("lag-1 δh̃ correlation (grey: theory)")
    ax.legend(fontsize=6)
    deep = [L for L in depths if np.isfinite(ds.kappa.sel(depth=L)).any()]
    ax = axes[1, 0]
    if deep:
        d = at_best_eta(ds, "d").isel(step=-1)
        for phi in phis:
            for L in deep:
                plot_normalized(
                    ax,
                    d.sel(phi=phi, depth=L),
                    L,
                    color=colors[L],
                    style=PHI_STYLES.get(phi, ":"),
                    label=f"{phi}, L = {L}",
                )
        ax.legend(fontsize=6)
    ax.set_xlabel("ε (log2 scale)")
    ax.set_ylabel("d(ε) / (c ε^1/2), = 1 at ε_ref")
    ax.set_title(f"diversity at t = {int(ds.step.values[-1])} (Fig. 19)")
    ax = axes[1, 1]
    kappa = at_best_eta(ds, "kappa")
    for k, phi in enumerate(phis):
        kappa_values = kappa.sel(phi=phi, depth=deep).isel(step=-1) if deep else None
        if kappa_values is not None:
            ax.errorbar(
                np.log2(deep),
                kappa_values.mean("seed"),
                yerr=kappa_values.std("seed") / math.sqrt(kappa_values.sizes["seed"]),
                marker="o",
                capsize=2,
                color=f"C{k}",
                label=phi,
            )
    ax.axhline(0.5, color="0.5", lw=0.8, ls="--", label="κ = 1/2")
    ax.set_xlabel("log2 L (depth)")
    ax.set_ylabel("κ̂ (ε ∈ [1/256, 1/16])")
    ax.set_title("diversity exponent after training")
    ax.legend(fontsize=7)
    axes[1, 2].set_axis_off()
    fig.suptitle(
        f"Depth-µP, SGD, log2 a = {ds.attrs.get('log2_a')}, {ds.attrs.get('task')}, width "
        f"{ds.attrs.get('width')}, {ds.attrs.get('steps')} steps; diversity at each curve's "
        "best η, ε_ref = max(1/256, 1/L); ±1 SE over seeds",
        fontsize=9,
    )
    return save_figure(fig, out_dir, name)


def plot_family(
    ds: xr.Dataset, best: xr.DataArray, se: xr.DataArray, out_dir: Path, name: str
) -> list[Path]:
    """The family over θ: best loss, δh̃ correlation with its prediction, κ̂."""
    theta = ds.theta.values.astype(float)
    fig, axes = new_figure(3, 1, width=3.4, height=2.8)
    ax = axes[0, 0]
    ax.errorbar(theta, best, yerr=se, marker="o", capsize=2, color="C0")
    ax.set_ylabel("min over η of LogLoss")
    ax.set_title("loss")
    panels = (
        (axes[0, 1], "lag1", "corr(δh̃ˡ, δh̃ˡ⁺¹)", "gradient correlation", (0, -1)),
        (axes[0, 2], "kappa", "κ̂ (ε ∈ [1/256, 1/16])", "feature diversity", (-1,)),
    )
    for ax, var, label, title, steps in panels:
        values = at_best_eta(ds, var, prefix="family_")
        for r in steps:
            v = values.isel(step=r)
            ax.errorbar(
                theta,
                v.mean("seed"),
                yerr=v.std("seed") / math.sqrt(v.sizes["seed"]),
                marker="o",
                capsize=2,
                ls=":" if r == 0 else "-",
                color="C0",
                label=f"step {int(ds.step.values[r])}",
            )
        ax.set_ylabel(label)
        ax.set_title(title)
    fine = np.linspace(theta.min(), theta.max(), 181)
    axes[0, 1].plot(fine, lag_prediction(fine), "--", color="0.4", label="(1 + sin 2θ)/2")
    for ax in axes[0]:
        for mark, member in ((-45.0, "abs"), (0.0, "relu"), (45.0, "linear")):
            if theta.min() <= mark <= theta.max():
                ax.axvline(mark, color="0.7", lw=0.8)
                ax.annotate(
                    member,
                    (mark, 0.02),
                    xycoords=("data", "axes fraction"),
                    fontsize=7,
                    ha="center",
                    va="bottom",
                    rotation=90,
                    color="0.4",
                )
        ax.set_xlabel("θ (degrees); (c₊, c₋) ∝ (cos θ, sin θ)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(
        f"φ = c₊relu(z) − c₋relu(−z), (c₊, c₋) ∝ (cos θ, sin θ), Var φ(z) = Var relu(z); "
        f"Depth-µP, L = {ds.attrs.get('family_depth')},\nlog2 a = {ds.attrs.get('log2_a')}, "
        f"width {ds.attrs.get('width')}, {ds.attrs.get('steps')} steps; at each θ's best η; "
        "±1 SE over seeds",
        fontsize=9,
    )
    return save_figure(fig, out_dir, name)
