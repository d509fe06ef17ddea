"""Learning-rate transfer across depth (the paper's Figs. 10, 11, 22–24).

Finite resnets (post-nonlin, MS, no LN, frozen input/output layers) are trained on the
bundled digits data for every (parametrization, optimizer, depth, log2 η, seed).  Every
parametrization uses base depth 8 (L → L/8 in all scalings), so all coincide at L = 8 and
share one learning-rate grid: η = base_η · 2^k.  The plotted quantity is the paper's
"LogLoss": the natural log of the training loss averaged over the last ``window`` steps.

Claims (tp6-notes §6, Fig. 10): the optimal log2 η of Depth-µP moves by at most one grid step
(0.5) from the smallest to the largest depth, while block-only (1/2, 0) and SP (0, 0) move by
more.  The optimum is the minimum of the seed-mean curve, refined by a parabola through its
neighbours; its uncertainty is a bootstrap over seeds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from limitsim.experiments._common import Context, bootstrap_argmin, make_task, preset, sweep
from limitsim.plotting import depth_colors, new_figure, save_figure
from limitsim.report import Claim

NAME = "transfer"
TITLE = "Learning-rate transfer across depth (Figs. 10, 11, 22-24)"

#: Sizes per profile: tiny (tests), quick (2 cores, minutes), paper (a cluster).
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "optimizers": ("sgd",),
        "params": ("depth_mup", "standard"),
        "depths": (8, 16),
        "log2_etas": (-1.0, 0.0, 1.0),
        "seeds": 2,
        "width": 16,
        "phi": "relu",
        "steps": 4,
        "batch": 8,
        "task": "digits",
        "window": 2,
        "a": 1.0,
        "base_eta_sgd": 0.25,
        "base_eta_adam": 0.1,
    },
    "quick": {
        "optimizers": ("sgd", "adam"),
        "params": ("depth_mup", "block_only", "ode", "standard"),
        "depths": (8, 16, 32, 64, 128),
        "log2_etas": (-3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0),
        "seeds": 2,
        "width": 64,
        "phi": "relu",
        "steps": 200,
        "batch": 32,
        "task": "digits",
        "window": 20,
        "a": 1.0,
        "base_eta_sgd": 0.25,
        "base_eta_adam": 0.1,
    },
    "paper": {
        "optimizers": ("sgd", "adam"),
        "params": ("depth_mup", "block_only", "ode", "standard"),
        "depths": (8, 16, 32, 64, 128, 256, 512, 1024),
        "log2_etas": (
            -6.0,
            -5.5,
            -5.0,
            -4.5,
            -4.0,
            -3.5,
            -3.0,
            -2.5,
            -2.0,
            -1.5,
            -1.0,
            -0.5,
            0.0,
            0.5,
            1.0,
            1.5,
            2.0,
            2.5,
            3.0,
            3.5,
            4.0,
        ),
        "seeds": 5,
        "width": 256,
        "phi": "relu",
        "steps": 3000,
        "batch": 64,
        "task": "digits",
        "window": 200,
        "a": 1.0,
        "base_eta_sgd": 0.25,
        "base_eta_adam": 0.1,
    },
}
BASE_DEPTH = 8
PARAM_LABELS = {
    "depth_mup": "Depth-µP (1/2, 1/2)",
    "block_only": "block-only (1/2, 0)",
    "ode": "ODE (1, 0)",
    "standard": "SP (0, 0)",
}


def train_points(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Train the points of one (parametrization, optimizer, depth) together (sweep function)."""
    from limitsim.finite import train_finite_batch

    first = points[0]
    task = make_task(first)
    base_eta = float(first[f"base_eta_{first['optimizer']}"])
    params = [
        preset(
            p["param"],
            eta=base_eta * 2.0 ** float(p["log2_eta"]),
            a=float(first["a"]),
            optimizer=p["optimizer"],
            base_depth=BASE_DEPTH,
        )
        for p in points
    ]
    runs = train_finite_batch(
        task,
        params,
        depth=int(first["depth"]),
        width=int(first["width"]),
        phi=str(first["phi"]),
        seeds=[int(p["seed"]) for p in points],
        dtype="float32",
        eval_every=0,
    )
    window = int(first["window"])
    out = []
    for run in runs:
        loss = np.asarray(run.loss, dtype=np.float64)
        value = math.log(float(np.mean(loss[-window:]))) if not run.diverged else math.nan
        out.append({"loss": loss, "log_loss": value, "diverged": bool(run.diverged)})
    return out


def run(sizes: dict[str, Any], context: Context | None = None) -> xr.Dataset:
    """The transfer grid (``sizes``: params, optimizers, depths, log2_etas, seeds, width, ...)."""
    from limitsim.grid import Grid

    grid = Grid(
        axes={
            "optimizer": list(sizes["optimizers"]),
            "param": list(sizes["params"]),
            "depth": list(sizes["depths"]),
            "log2_eta": list(sizes["log2_etas"]),
            "seed": list(range(int(sizes["seeds"]))),
        },
        fixed={
            key: sizes[key]
            for key in (
                "width",
                "phi",
                "steps",
                "batch",
                "task",
                "window",
                "a",
                "base_eta_sgd",
                "base_eta_adam",
            )
        },
    )
    ds = sweep(context, NAME, train_points, grid, batch_axes=("log2_eta", "seed"))
    ds = ds.drop_vars([v for v in ds.data_vars if v not in ("log_loss", "status")])
    ds.attrs = {key: grid.fixed[key] for key in grid.fixed}
    return ds


def optimum(ds: xr.Dataset, optimizer: str, param: str, depth: int) -> tuple[float, float]:
    """(argmin log2 η, bootstrap standard error) for one curve of the dataset."""
    curve = ds.log_loss.sel(optimizer=optimizer, param=param, depth=depth)
    return bootstrap_argmin(ds.log2_eta.values, curve.transpose("log2_eta", "seed").values)


def plot(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """LogLoss vs log2 η per depth for each (optimizer, parametrization), and argmin vs L."""
    optimizers = [str(o) for o in ds.optimizer.values]
    params = [str(p) for p in ds.param.values]
    depths = [int(d) for d in ds.depth.values]
    colors = depth_colors(depths)
    fig, axes = new_figure(len(params) + 1, len(optimizers), width=3.0, height=2.5)
    for row, opt in enumerate(optimizers):
        for col, param in enumerate(params):
            ax = axes[row, col]
            for L in depths:
                curve = ds.log_loss.sel(optimizer=opt, param=param, depth=L)
                mean = curve.mean("seed")
                se = curve.std("seed") / math.sqrt(max(curve.sizes["seed"], 1))
                ax.plot(ds.log2_eta, mean, "o-", ms=2.5, color=colors[L], label=f"L = {L}")
                ax.fill_between(ds.log2_eta, mean - se, mean + se, color=colors[L], alpha=0.2)
            ax.set_title(f"{PARAM_LABELS.get(param, param)}, {opt}")
            ax.set_xlabel(f"log2(η / {ds.attrs.get(f'base_eta_{opt}', 'η0')})")
            ax.set_ylabel("log training loss (window)")
        ax = axes[row, -1]
        for param in params:
            best = [optimum(ds, opt, param, L) for L in depths]
            ax.errorbar(
                np.log2(depths),
                [b[0] for b in best],
                yerr=[b[1] for b in best],
                marker="o",
                capsize=2,
                label=PARAM_LABELS.get(param, param),
            )
        ax.set_title(f"optimal log2 η vs depth ({opt})")
        ax.set_xlabel("log2 L")
        ax.set_ylabel("argmin log2(η / η0)")
        ax.legend(fontsize=6)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center")
    fig.suptitle(
        f"{ds.attrs.get('task', 'digits')}, width {ds.attrs.get('width', '?')}, "
        f"φ = {ds.attrs.get('phi', '?')}, base depth {BASE_DEPTH}; bands: ±1 SE over seeds"
    )
    return save_figure(fig, out_dir, NAME)


def claims(ds: xr.Dataset) -> list[Claim]:
    """Shift of the optimal log2 η between the smallest and the largest trainable depth."""
    out = []
    depths = [int(d) for d in ds.depth.values]
    for opt in ds.optimizer.values:
        for param in ds.param.values:
            best = {L: optimum(ds, str(opt), str(param), L) for L in depths}
            finite = [L for L in depths if math.isfinite(best[L][0])]
            if len(finite) < 2:
                shift, se, top = math.nan, math.nan, depths[-1]
            else:
                lo, top = finite[0], finite[-1]
                shift = abs(best[top][0] - best[lo][0])
                se = math.hypot(best[top][1], best[lo][1])
                if top != depths[-1]:  # deeper nets diverged at every η: the optimum is lost
                    shift, se = math.inf, 0.0
            if param == "depth_mup":
                statement, low, high = "Depth-µP: optimal η transfers across depth", 0.0, 0.5
                paper = "flat from L = 2^6 (Fig. 10 top)"
            else:
                statement = f"{PARAM_LABELS.get(str(param), param)}: optimal η shifts with depth"
                low, high, paper = 0.5, math.inf, "shifts ≈ 0.5 per doubling (Fig. 10, 11)"
            quantity = f"|Δ argmin log2 η|, L = {depths[0]} → {top} ({opt})"
            out.append(Claim(NAME, statement, quantity, shift, se, paper, low, high))
    return out
