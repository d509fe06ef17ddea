"""Multiplier transfer across depth (the paper's Fig. 13, and Fig. 25).

Finite Depth-µP resnets (relu, post-nonlin, MS, frozen input/output layers, base depth 8) are
trained on the bundled digits data at one fixed learning rate for every (depth, log2 a,
seed), with the branch multiplier a (L/8)^-1/2 (:meth:`Parametrization.branch_multiplier`).
The plotted quantity is the paper's "LogLoss": the natural log of the training loss averaged
over the last ``window`` steps, against log2 a, one curve per depth.

The paper (Adam, CIFAR-10, log2(η/1e-3) = 0, the learning rate tuned at base depth) finds the
optimal a converging at log2 a ≈ 1.  We train with Adam at the learning rate that is optimal at
the base depth in :mod:`~limitsim.experiments.transfer` (log2(η/0.1) = 0), where the optimal a
at L = 8 is likewise near log2 a = 1.  Claim: the slope of the per-seed optimal log2 a
against log2 L (:func:`~limitsim.experiments._common.optimum_trend`, t interval over seeds)
lies in [−0.25, 0.25]: half the ±0.5 per doubling that a multiplier off by L^{±1/2} from the
right depth scaling would show (the same boundary as the learning-rate transfer rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from limitsim.experiments._common import Context, OptimumTrend, optimum_trend, seed_axis
from limitsim.experiments._digits import BASE_DEPTH, TRAINING, DepthGrid, sweep_digits
from limitsim.experiments._plots import plot_seed_mean
from limitsim.experiments.profiles import log2_grid
from limitsim.plotting import depth_colors, errorbar_estimates, new_figure, save_figure
from limitsim.report import Claim

NAME = "multiplier"
TITLE = "Multiplier transfer across depth, Depth-µP (Fig. 13)"


@dataclass(frozen=True, kw_only=True)
class Sizes(DepthGrid):
    """Sizes of the multiplier experiment; the fields are read by :func:`run`."""

    log2_as: tuple[float, ...]
    phi: str
    log2_eta: float


#: tiny (tests), quick (2 cores, minutes) and paper (a cluster), each derived from the last.
TINY = Sizes(
    **TRAINING["tiny"],
    depths=(4, 8),
    log2_as=(-0.5, 0.0, 0.5),
    phi="relu",
    steps=6,
    log2_eta=0.0,
    base_eta=0.1,
    optimizer="adam",
)
QUICK = replace(
    TINY,
    **TRAINING["quick"],
    depths=(8, 32, 128),
    log2_as=log2_grid(-1.5, 2.0),
)
PAPER = replace(
    QUICK,
    **TRAINING["paper"],
    depths=(8, 16, 32, 64, 128, 256, 512, 1024),
    log2_as=log2_grid(-3.0, 3.0),
    steps=3000,
    window=500,
)
STANDARD = replace(QUICK, **TRAINING["standard"], depths=(8, 16, 32, 64, 128), seeds=12)
SIZES = {"tiny": TINY, "quick": QUICK, "standard": STANDARD, "paper": PAPER}
FIXED = ("width", "phi", "steps", "batch", "task", "window", "log2_eta", "base_eta", "optimizer")


def run(sizes: Mapping[str, Any], context: Context | None = None) -> xr.Dataset:
    """The depth × log2 a × seed grid (one batched training per depth)."""
    axes = {
        "depth": list(sizes["depths"]),
        "log2_a": [float(v) for v in sizes["log2_as"]],
        "seed": seed_axis(context, int(sizes["seeds"])),
    }
    ds = sweep_digits(context, NAME, sizes, axes, FIXED, batch_axes=("log2_a", "seed"))
    ds = ds.rename(log2_a="multiplier")
    ds.multiplier.attrs["long_name"] = "log2 a"
    return ds


def trend(ds: xr.Dataset) -> OptimumTrend:
    """Per-seed optimal log2 a at every depth and its slope against log2 L."""
    table = ds.log_loss.transpose("depth", "multiplier", "seed").values
    return optimum_trend(ds.multiplier.values, table, [int(d) for d in ds.depth.values])


def plot(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """LogLoss vs log2 a per depth (±1 SE over seeds), and the argmin vs depth."""
    depths = [int(d) for d in ds.depth.values]
    colors = depth_colors(depths)
    fig, axes = new_figure(2, 1, width=3.6, height=2.9)
    ax = axes[0, 0]
    for L in depths:
        curve = ds.log_loss.sel(depth=L)
        plot_seed_mean(ax, ds.multiplier, curve, color=colors[L], label=f"L = {L}")
    ax.set_xlabel("log2 a (branch multiplier a·(L/8)^-1/2)")
    ax.set_ylabel("log training loss (natural log, window)")
    ax.set_title("LogLoss vs multiplier (gaps: diverged)")
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    errorbar_estimates(
        ax,
        np.log2(depths),
        trend(ds).per_depth(),
        marker="o",
        color="k",
        label="per-seed optimum (95% t interval)",
    )
    ax.set_xlabel("log2 L (depth)")
    ax.set_ylabel("optimal log2 a")
    ax.set_title("optimal multiplier vs depth")
    ax.legend(fontsize=7)
    fig.suptitle(
        f"Depth-µP, {ds.attrs.get('optimizer')}, "
        f"log2(η/{ds.attrs.get('base_eta')}) = {ds.attrs.get('log2_eta')}, "
        f"{ds.attrs.get('task')}, width {ds.attrs.get('width')}, φ = {ds.attrs.get('phi')},\n"
        f"base depth {BASE_DEPTH}, {ds.attrs.get('steps')} steps; bands ±1 SE over seeds",
        fontsize=9,
    )
    return save_figure(fig, out_dir, NAME)


def claims(ds: xr.Dataset) -> list[Claim]:
    """Slope of the per-seed optimal log2 a against log2 L (module docstring)."""
    depths = [int(d) for d in ds.depth.values]
    result = trend(ds)
    return [
        Claim(
            experiment=NAME,
            claim="Depth-µP: the optimal multiplier a transfers across depth",
            source="paper: Fig. 13: with Adam the optimal a converges at log2 a ≈ 1",
            quantity=f"slope of optimal log2 a vs log2 L, L = {depths[0]}..{depths[-1]}, "
            f"{ds.attrs.get('optimizer')}, "
            f"log2(η/{ds.attrs.get('base_eta')}) = {ds.attrs.get('log2_eta')}, "
            f"{ds.attrs.get('steps')} steps",
            estimate=result.slope,
            paper="converges",
            low=-0.25,
            high=0.25,
            range_reason="half the shift of an L^±1/2 mis-scaling (theory)",
            undecided=result.undecided("a", depths),
        )
    ]
