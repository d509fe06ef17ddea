"""Figures of the nonlinearity experiment (abs vs relu, Figs. 3 and 19; the family over θ)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from limitsim.experiments._common import OptimumTrend
from limitsim.experiments._digits import per_seed_min
from limitsim.experiments._diversity_plot import plot_normalized
from limitsim.experiments._homogeneous import ABS_THETA, lag_prediction
from limitsim.experiments._plots import plot_optima, plot_seed_mean
from limitsim.plotting import depth_colors, errorbar_estimates, new_figure, save_figure
from limitsim.stats import paired_interval, t_interval

__all__ = ["plot_family", "plot_pair"]

PHI_STYLES = {"relu": "--", "abs": "-"}
#: The two members of the family compared in Fig. 19 (θ in degrees).
PAIR = (("relu", 0.0), ("abs", ABS_THETA))


def plot_pair(
    ds: xr.Dataset, out_dir: Path, name: str, trends: Mapping[str, OptimumTrend]
) -> list[Path]:
    """abs vs relu: LogLoss vs η, best loss vs L, Fig. 19 curves, κ̂ time course, δh̃ corr,
    optimal η vs L (Fig. 3 left, from ``trends``: φ -> its per-depth optimal log2 η)."""
    fig, axes = new_figure(4, 2, width=3.4, height=2.8)
    depths = [int(d) for d in ds.depth.values]
    ylabel = f"per-seed argmin log2(η / {ds.attrs.get('base_eta')})"
    labels = ("log2 L (depth)", ylabel, "optimal η vs L (Fig. 3 left)")
    plot_optima(axes[0, 3], depths, trends, labels)
    axes[1, 3].set_axis_off()
    _loss_panel(axes[0, 0], ds)
    _best_loss_panel(axes[0, 1], ds)
    L = int(ds.attrs["family_depth"])
    _diversity_panels(axes, ds, L)
    _lag_panel(axes[1, 2], ds)
    fig.suptitle(
        f"Depth-µP, log2 a = {ds.attrs.get('log2_a')}, {ds.attrs.get('task')}, width "
        f"{ds.attrs.get('width')}, {ds.attrs.get('steps')} steps; diversity panels: Adam, "
        f"L = {L}, log2(η/{ds.attrs.get('base_eta')}) = {ds.attrs.get('family_log2_eta')}, "
        "abs = θ = −45° member (relu's variance); bars: 95% t intervals over seeds",
        fontsize=9,
    )
    return save_figure(fig, out_dir, name)


def _loss_panel(ax: Any, ds: xr.Dataset) -> None:
    """LogLoss against log2 η per φ and depth, mean ± standard error over seeds."""
    depths = [int(d) for d in ds.depth.values]
    colors = depth_colors(depths)
    for phi in [str(p) for p in ds.phi.values]:
        for L in depths:
            curve = ds.log_loss.sel(phi=phi, depth=L)
            plot_seed_mean(ax, ds.log2_eta, curve, color=colors[L], label=f"{phi}, L = {L}",
                           style="o" + PHI_STYLES.get(phi, ":"), alpha=0.15)  # fmt: skip
    ax.set_xlabel(f"log2(η / {ds.attrs.get('base_eta')})")
    ax.set_ylabel("log training loss (natural log)")
    ax.set_title("LogLoss vs η (solid: abs, dashed: relu)")
    ax.legend(fontsize=6, ncol=2)


def _best_loss_panel(ax: Any, ds: xr.Dataset) -> None:
    """Per-seed minimum over η of the LogLoss against log2 L (Fig. 3 right)."""
    depths = [int(d) for d in ds.depth.values]
    best = per_seed_min(ds.log_loss, ("log2_eta",))
    for k, phi in enumerate(str(p) for p in ds.phi.values):
        rows = [t_interval(best.sel(phi=phi, depth=L).values) for L in depths]
        errorbar_estimates(ax, np.log2(depths), rows, marker="o", color=f"C{k}", label=phi)
    ax.set_xlabel("log2 L (depth)")
    ax.set_ylabel("per-seed min over η of LogLoss")
    ax.set_title(f"best loss vs depth (Fig. 3 right), {ds.attrs.get('optimizer')}")
    ax.legend(fontsize=7)


def _diversity_panels(axes: Any, ds: xr.Dataset, L: int) -> None:
    """Fig. 19's d(ε) early in training, κ̂ over training and abs − relu κ̂ (paired)."""
    steps = [int(t) for t in ds.step.values]
    early = steps[1] if len(steps) > 1 else steps[0]
    ax = axes[0, 2]
    d = ds.family_d.sel(step=early)
    for k, (phi, theta) in enumerate(PAIR):
        plot_normalized(ax, d.sel(theta=theta), L, color=f"C{k}",
                        style=PHI_STYLES[phi], label=phi)  # fmt: skip
    ax.set_xlabel("ε (log2 scale)")
    ax.set_ylabel("d(ε) / (c ε^1/2), = 1 at ε = 1/256")
    ax.set_title(f"Fig. 19: L = {L}, t = {early}")
    ax.legend(fontsize=7)
    ax = axes[1, 0]
    for k, (phi, theta) in enumerate(PAIR):
        kappa = ds.family_kappa.sel(theta=theta)
        rows = [t_interval(kappa.sel(step=t).values) for t in steps]
        errorbar_estimates(ax, np.array(steps) + 1, rows, marker="o", color=f"C{k}", label=phi)
    ax.set_xscale("log")
    ax.axhline(0.5, color="0.5", lw=0.8, ls="--")
    ax.set_xlabel("training step t + 1 (log)")
    ax.set_ylabel("κ̂ (ε ∈ [1/256, 1/16])")
    ax.set_title(f"diversity exponent over training, L = {L}")
    ax.legend(fontsize=7)
    ax = axes[1, 1]
    kappa = {phi: ds.family_kappa.sel(theta=theta) for phi, theta in PAIR}
    rows = [paired_interval(kappa["abs"].sel(step=t).values, kappa["relu"].sel(step=t).values)
            for t in steps]  # fmt: skip
    errorbar_estimates(ax, np.array(steps) + 1, rows, marker="o", color="k", label="abs − relu")
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("training step t + 1 (log)")
    ax.set_ylabel("κ̂(abs) − κ̂(relu), paired")
    ax.set_title("Fig. 19's comparison over training")


def _lag_panel(ax: Any, ds: xr.Dataset) -> None:
    """Lag-1 δh̃ correlation over training, dashed at its init prediction (Eφ′)²/Eφ′²."""
    steps = [int(t) for t in ds.step.values]
    for k, (phi, theta) in enumerate(PAIR):
        lag = ds.family_lag1.sel(theta=theta)
        rows = [t_interval(lag.sel(step=t).values) for t in steps]
        errorbar_estimates(ax, np.array(steps) + 1, rows, marker="o", color=f"C{k}", label=phi)
        ax.axhline(float(lag_prediction(theta)), color=f"C{k}", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("training step t + 1 (log)")
    ax.set_ylabel("corr(δh̃ˡ, δh̃ˡ⁺¹), mean over l")
    ax.set_title("lag-1 δh̃ correlation (dashed: (Eφ′)²/Eφ′²)")
    ax.legend(fontsize=7)


def plot_family(ds: xr.Dataset, out_dir: Path, name: str) -> list[Path]:
    """The family over θ: loss, δh̃ correlation with its prediction, κ̂, at several times."""
    theta = ds.theta.values.astype(float)
    steps = [int(t) for t in ds.step.values]
    fig, axes = new_figure(3, 1, width=3.4, height=2.8)
    panels = (
        (axes[0, 0], "log_loss", "LogLoss (final window)", "loss", steps[-1:]),
        (axes[0, 1], "lag1", "corr(δh̃ˡ, δh̃ˡ⁺¹)", "gradient correlation", [steps[0], steps[-1]]),
        (axes[0, 2], "kappa", "κ̂ (ε ∈ [1/256, 1/16])", "feature diversity", steps),
    )
    for ax, var, label, title, shown in panels:
        values = ds[f"family_{var}"]
        for j, t in enumerate(shown):
            v = values.sel(step=t) if "step" in values.dims else values
            rows = [t_interval(v.sel(theta=th).values) for th in theta]
            errorbar_estimates(ax, theta, rows, marker="o", color=f"C{j}",
                      label=f"t = {t}" if "step" in values.dims else None)  # fmt: skip
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
            ax.legend(fontsize=6)
    fig.suptitle(
        f"φ = c₊relu(z) − c₋relu(−z), (c₊, c₋) ∝ (cos θ, sin θ), Var φ(z) = Var relu(z); "
        f"Depth-µP, Adam, L = {ds.attrs.get('family_depth')},\nlog2 a = {ds.attrs.get('log2_a')}, "
        f"log2(η/{ds.attrs.get('base_eta')}) = {ds.attrs.get('family_log2_eta')}, width "
        f"{ds.attrs.get('width')}, {ds.attrs.get('steps')} steps; bars: 95% t intervals over seeds",
        fontsize=9,
    )
    return save_figure(fig, out_dir, name)
