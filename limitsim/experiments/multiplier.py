"""Multiplier transfer across depth (the paper's Fig. 13, and Fig. 25).

Finite Depth-µP resnets (relu, post-nonlin, MS, frozen input/output layers, base depth 8) are
trained on the bundled digits data at one fixed learning rate for every (depth, log2 a,
seed), with the branch multiplier a (L/8)^-1/2 (:meth:`Parametrization.branch_multiplier`).
The plotted quantity is the paper's "LogLoss": the natural log of the training loss averaged
over the last ``window`` steps, against log2 a, one curve per depth.

The paper (Adam, CIFAR-10, log2(η/1e-3) = 0) finds the optimal a converging at log2 a ≈ 1.  We
train with SGD (as :mod:`~limitsim.experiments.transfer` does): under SGD a enters the
feature update as a²η, so the optimal a depends on the fixed η; ``log2_eta`` is chosen so
that the optimum lies inside the a grid.  Claim: the optimal log2 a moves by at most one grid
step between the smallest and the largest depth.  The optimum is the minimum of the seed-mean
curve refined by a parabola through its neighbours (diverged points count as +inf); its
uncertainty is a bootstrap over seeds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from limitsim.experiments._common import Context, bootstrap_argmin
from limitsim.experiments._digits import BASE_DEPTH, sweep_digits
from limitsim.plotting import depth_colors, new_figure, save_figure
from limitsim.report import Claim

NAME = "multiplier"
TITLE = "Multiplier transfer across depth, Depth-µP (Fig. 13)"

#: Sizes per profile: tiny (tests), quick (2 cores, minutes), paper (a cluster).
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "depths": (4, 8),
        "log2_as": (-0.5, 0.0, 0.5),
        "seeds": 2,
        "width": 16,
        "phi": "relu",
        "steps": 6,
        "batch": 8,
        "task": "digits",
        "window": 2,
        "log2_eta": -3.0,
        "base_eta": 0.25,
    },
    "quick": {
        "depths": (8, 16, 32, 64, 128),
        "log2_as": (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5),
        "seeds": 4,
        "width": 64,
        "phi": "relu",
        "steps": 300,
        "batch": 32,
        "task": "digits",
        "window": 50,
        "log2_eta": -3.0,
        "base_eta": 0.25,
    },
    "paper": {
        "depths": (8, 16, 32, 64, 128, 256, 512, 1024),
        "log2_as": tuple(float(v) for v in np.arange(-3.0, 3.01, 0.5)),
        "seeds": 5,
        "width": 256,
        "phi": "relu",
        "steps": 3000,
        "batch": 64,
        "task": "digits",
        "window": 500,
        "log2_eta": -3.0,
        "base_eta": 0.25,
    },
}
FIXED = ("width", "phi", "steps", "batch", "task", "window", "log2_eta", "base_eta")


def run(sizes: dict[str, Any], context: Context | None = None) -> xr.Dataset:
    """The depth × log2 a × seed grid (one batched training per depth)."""
    axes = {
        "depth": list(sizes["depths"]),
        "log2_a": [float(v) for v in sizes["log2_as"]],
        "seed": list(range(int(sizes["seeds"]))),
    }
    ds = sweep_digits(context, NAME, sizes, axes, FIXED, batch_axes=("log2_a", "seed"))
    ds = ds.rename(log2_a="multiplier")
    ds.multiplier.attrs["long_name"] = "log2 a"
    return ds


def optimum(ds: xr.Dataset, depth: int) -> tuple[float, float]:
    """(argmin log2 a, bootstrap standard error) of the curve at ``depth``."""
    curve = ds.log_loss.sel(depth=depth).transpose("multiplier", "seed").values
    return bootstrap_argmin(ds.multiplier.values, curve)


def grid_step(ds: xr.Dataset) -> float:
    """Smallest spacing of the log2 a grid (the claim's tolerance)."""
    values = np.sort(ds.multiplier.values.astype(float))
    return float(np.min(np.diff(values))) if values.size > 1 else math.nan


def plot(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """LogLoss vs log2 a per depth (±1 SE over seeds), and the argmin vs depth."""
    depths = [int(d) for d in ds.depth.values]
    colors = depth_colors(depths)
    fig, axes = new_figure(2, 1, width=3.6, height=2.9)
    ax = axes[0, 0]
    for L in depths:
        curve = ds.log_loss.sel(depth=L)
        mean = curve.mean("seed", skipna=False)  # a diverged seed: a gap
        se = curve.std("seed") / math.sqrt(curve.sizes["seed"])
        ax.plot(ds.multiplier, mean, "o-", ms=3, color=colors[L], label=f"L = {L}")
        ax.fill_between(ds.multiplier, mean - se, mean + se, color=colors[L], alpha=0.2)
    ax.set_xlabel("log2 a (branch multiplier a·(L/8)^-1/2)")
    ax.set_ylabel("log training loss (natural log, window)")
    ax.set_title("LogLoss vs multiplier (gaps: diverged)")
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    best = [optimum(ds, L) for L in depths]
    ax.errorbar(
        np.log2(depths),
        [b[0] for b in best],
        yerr=[b[1] for b in best],
        marker="o",
        capsize=2,
        color="k",
        label="argmin (bootstrap SE)",
    )
    step = grid_step(ds)
    if math.isfinite(best[0][0]):
        ax.axhspan(best[0][0] - step, best[0][0] + step, color="0.85", label="±1 grid step")
    ax.set_xlabel("log2 L (depth)")
    ax.set_ylabel("optimal log2 a")
    ax.set_title("optimal multiplier vs depth")
    ax.legend(fontsize=7)
    fig.suptitle(
        f"Depth-µP, SGD, log2(η/{ds.attrs.get('base_eta')}) = {ds.attrs.get('log2_eta')}, "
        f"{ds.attrs.get('task')}, width {ds.attrs.get('width')}, φ = {ds.attrs.get('phi')},\n"
        f"base depth {BASE_DEPTH}, {ds.attrs.get('steps')} steps; bands ±1 SE over seeds",
        fontsize=9,
    )
    return save_figure(fig, out_dir, NAME)


def claims(ds: xr.Dataset) -> list[Claim]:
    """Shift of the optimal log2 a between the smallest and the largest depth."""
    depths = [int(d) for d in ds.depth.values]
    lo, top = depths[0], depths[-1]
    best_lo, best_top = optimum(ds, lo), optimum(ds, top)
    shift = abs(best_top[0] - best_lo[0])
    se = math.hypot(best_top[1], best_lo[1])
    step = grid_step(ds)
    return [
        Claim(
            NAME,
            "Depth-µP: the optimal multiplier a transfers across depth (Fig. 13)",
            f"|Δ argmin log2 a|, L = {lo} → {top}",
            shift,
            se,
            "optimum converges at log2 a ≈ 1 (Adam, CIFAR-10)",
            0.0,
            step,
        )
    ]
