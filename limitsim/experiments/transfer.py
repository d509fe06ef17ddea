"""Learning-rate transfer across depth (the paper's Figs. 10, 11, 20, 22–24).

Finite resnets (post-nonlin, MS, no LN, frozen input/output layers) are trained on the
bundled digits data for every (optimizer, parametrization, depth, log2 η, seed).  Every
parametrization uses base depth 8 (L → L/8 in all scalings), so all coincide at L = 8 and
share one learning-rate grid: η = base_η · 2^k.  The plotted quantity is the paper's
"LogLoss": the natural log of the training loss averaged over the last ``window`` steps.

Claims (``tp6-notes.md`` §6), measured as the signed slope of the optimal log2 η against
log2 L (per seed, :func:`~limitsim.experiments._common.optimum_trend`; t interval over seeds):

- Fig. 10 top (Adam): under Depth-µP the optimum transfers: slope in [−0.25, 0.25];
- Fig. 10 middle (Adam): under block-only (1/2, 0) it moves left, ≈ 0.5 per doubling: slope
  ≤ −0.25.  The boundary ±0.25 is half the L^{-1/2} shift that block-only must show if
  Depth-µP transfers (its Adam update is L^{1/2} times Depth-µP's), i.e. the midpoint between
  the two hypotheses, fixed from the theory;
- Fig. 11 (Adam): under the ODE scaling (1, 0) the optimal η increases with depth: slope ≥ 0;
- Claim 7.1, Figs. 10 bottom and 20: SP (0, 0) is unstable at initialization, so at the
  largest depth every η diverges (the fraction of seeds with no finite run, Clopper–Pearson
  interval); its shift is reported only over the depths where it trains.

SGD versions of the Depth-µP and block-only rows are ``extension`` rows: the theory predicts
the same picture (block-only's raw SGD rate is L^{1/2} times Depth-µP's), the paper shows
Adam only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from limitsim.experiments._common import (
    Context,
    OptimumTrend,
    optimum_trend,
    seed_axis,
    sweep,
)
from limitsim.experiments._digits import (
    BASE_DEPTH,
    PAPER_TRAINING,
    QUICK_TRAINING,
    TINY_TRAINING,
    DigitsTraining,
    train_points,
)
from limitsim.experiments.profiles import log2_grid
from limitsim.plotting import depth_colors, errorbar_estimates, new_figure, save_figure
from limitsim.report import Claim
from limitsim.stats import missing, proportion_interval

NAME = "transfer"
TITLE = "Learning-rate transfer across depth (Figs. 10, 11, 20, 22-24)"


@dataclass(frozen=True, kw_only=True)
class Sizes(DigitsTraining):
    """Sizes of the transfer experiment; the fields are read by :func:`run`.

    ``log2_etas`` gives each optimizer its own window of log2(η / base_eta_<optimizer>), wide
    enough that every parametrization's optimum lies inside it at every depth.
    """

    optimizers: tuple[str, ...]
    params: tuple[str, ...]
    depths: tuple[int, ...]
    log2_etas: Mapping[str, tuple[float, ...]]
    phi: str
    log2_a: float
    base_eta_sgd: float
    base_eta_adam: float


#: tiny (tests), quick (2 cores, minutes) and paper (a cluster), each derived from the last.
TINY = Sizes(
    **TINY_TRAINING,
    optimizers=("adam", "sgd"),
    params=("depth_mup", "block_only", "standard"),
    depths=(8, 16, 32),
    log2_etas={"adam": (-1.0, 0.0, 1.0), "sgd": (-1.0, 0.0, 1.0)},
    phi="relu",
    steps=4,
    log2_a=0.0,
    base_eta_sgd=0.25,
    base_eta_adam=0.1,
)
QUICK = replace(
    TINY,
    **QUICK_TRAINING,
    params=("depth_mup", "block_only", "ode", "standard"),
    depths=(8, 32, 128),
    log2_etas={"adam": log2_grid(-3.0, 1.5), "sgd": log2_grid(-3.5, 1.0)},
)
PAPER = replace(
    QUICK,
    **PAPER_TRAINING,
    depths=(8, 16, 32, 64, 128, 256, 512, 1024),
    log2_etas={"adam": log2_grid(-6.0, 4.0), "sgd": log2_grid(-6.0, 4.0)},
    steps=3000,
    window=200,
)
STANDARD = replace(QUICK, depths=(8, 16, 32, 64, 128), seeds=12)
SIZES = {"tiny": TINY, "quick": QUICK, "standard": STANDARD, "paper": PAPER}
#: SGD runs only the parametrizations whose SGD prediction is stated (extension rows).
SGD_PARAMS = ("depth_mup", "block_only")
#: Accepted slopes of the optimal log2 η per doubling of L (module docstring).
TRANSFER_SLOPE = 0.25
PARAM_LABELS = {
    "depth_mup": "Depth-µP (1/2, 1/2)",
    "block_only": "block-only (1/2, 0)",
    "ode": "ODE (1, 0)",
    "standard": "SP (0, 0)",
}


def run(sizes: Mapping[str, Any], context: Context | None = None) -> xr.Dataset:
    """The transfer grid (``sizes``: params, optimizers, depths, log2_etas, seeds, width, ...)."""
    from limitsim.grid import Grid

    grid = Grid(
        axes={
            "optimizer": list(sizes["optimizers"]),
            "parametrization": list(sizes["params"]),
            "depth": list(sizes["depths"]),
            "log2_eta": sorted({v for grid in sizes["log2_etas"].values() for v in grid}),
            "seed": seed_axis(context, int(sizes["seeds"])),
        },
        filters=[
            f"optimizer == 'adam' or parametrization in {SGD_PARAMS!r}",
            " or ".join(
                f"(optimizer == {opt!r} and {min(g)} <= log2_eta <= {max(g)})"
                for opt, g in sizes["log2_etas"].items()
            ),
        ],
        fixed={
            key: sizes[key]
            for key in (
                "width",
                "phi",
                "steps",
                "batch",
                "task",
                "window",
                "log2_a",
                "base_eta_sgd",
                "base_eta_adam",
            )
        },
    )
    ds = sweep(context, NAME, train_points, grid, batch_axes=("log2_eta", "seed"), batch_size=8)
    ds = ds.drop_vars([v for v in ds.data_vars if v not in ("log_loss", "status")])
    ds = ds.rename(parametrization="param")
    ds.attrs = {key: grid.fixed[key] for key in grid.fixed}
    for opt, values in sizes["log2_etas"].items():
        ds.attrs[f"log2_etas_{opt}"] = list(values)
    return ds


def trend(ds: xr.Dataset, optimizer: str, param: str, depths: list[int]) -> OptimumTrend:
    """Per-seed optimal log2 η at ``depths`` and its slope against log2 L."""
    window = list(ds.attrs[f"log2_etas_{optimizer}"])
    curves = ds.log_loss.sel(optimizer=optimizer, param=param, depth=depths, log2_eta=window)
    table = curves.transpose("depth", "log2_eta", "seed").values
    return optimum_trend(window, table, depths)


def trained_depths(ds: xr.Dataset, optimizer: str, param: str) -> list[int]:
    """Depths at which some (η, seed) run of ``param`` finished without diverging."""
    curves = ds.log_loss.sel(optimizer=optimizer, param=param)
    ok = np.isfinite(curves).any(("log2_eta", "seed"))
    return [int(L) for L, good in zip(ds.depth.values, ok.values, strict=True) if good]


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
            if not np.isfinite(ds.log_loss.sel(optimizer=opt, param=param)).any():
                ax.set_axis_off()  # not run: no prediction stated for this optimizer
                ax.set_title(f"{PARAM_LABELS.get(param, param)}, {opt}: not run", fontsize=8)
                continue
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
            if not np.isfinite(ds.log_loss.sel(optimizer=opt, param=param)).any():
                continue  # not run with this optimizer
            errorbar_estimates(
                ax,
                np.log2(depths),
                trend(ds, opt, param, depths).per_depth(),
                marker="o",
                label=PARAM_LABELS.get(param, param),
            )
        ax.set_title(f"optimal log2 η vs depth ({opt})")
        ax.set_xlabel("log2 L")
        ax.set_ylabel("per-seed argmin log2(η / η0), 95% CI")
        ax.legend(fontsize=6)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center")
    fig.suptitle(
        f"{ds.attrs.get('task', 'digits')}, width {ds.attrs.get('width', '?')}, "
        f"φ = {ds.attrs.get('phi', '?')}, base depth {BASE_DEPTH}; bands: ±1 SE over seeds"
    )
    return save_figure(fig, out_dir, NAME)


def _source(optimizer: str, param: str) -> str:
    if optimizer != "adam":
        return (
            "extension: SGD version of Fig. 10 "
            f"{'top' if param == 'depth_mup' else 'middle'} (the paper shows Adam only)"
        )
    return {
        "depth_mup": "paper: Fig. 10 top: with Adam the optimum converges from L = 2^6",
        "block_only": "paper: Fig. 10 middle: the optimum shifts left ≈ 0.5 per doubling",
        "ode": "paper: Fig. 11: the optimal η increases with depth",
        "standard": "paper: Fig. 10 bottom: SP's optimum shifts strongly",
    }[param]


def claims(ds: xr.Dataset) -> list[Claim]:
    """Signed slope of the optimal η per (optimizer, parametrization); SP's instability."""
    out = []
    depths = [int(d) for d in ds.depth.values]
    steps = ds.attrs.get("steps", "?")
    for opt in (str(o) for o in ds.optimizer.values):
        for param in (str(p) for p in ds.param.values):
            if opt != "adam" and param not in SGD_PARAMS:
                continue
            label = PARAM_LABELS.get(param, param)
            if param == "standard":
                out.append(_sp_instability(ds, opt, depths))
            used = trained_depths(ds, opt, param) if param == "standard" else depths
            if len(used) >= 2:
                result = trend(ds, opt, param, used)
                estimate, undecided = result.slope, result.undecided("η", used)
            else:
                estimate = missing()
                undecided = f"trains at {len(used)} depth(s) only"
            low, high, outside = {
                "depth_mup": (-TRANSFER_SLOPE, TRANSFER_SLOPE, False),
                "block_only": (-math.inf, -TRANSFER_SLOPE, False),
                "ode": (0.0, math.inf, False),
                "standard": (-TRANSFER_SLOPE, TRANSFER_SLOPE, True),
            }[param]
            statement = (
                f"{label}: the optimal η transfers across depth"
                if param == "depth_mup"
                else f"{label}: the optimal η moves with depth"
            )
            paper = {
                "depth_mup": "flat from L = 2^6",
                "block_only": "≈ −0.5 per doubling",
                "ode": "increases",
                "standard": "large shift",
            }[param]
            out.append(
                Claim(
                    experiment=NAME,
                    claim=statement,
                    source=_source(opt, param),
                    quantity=f"slope of optimal log2 η vs log2 L, L = {used[0] if used else '?'}"
                    f"..{used[-1] if used else '?'}, {opt}, {steps} steps",
                    estimate=estimate,
                    paper=paper,
                    low=low,
                    high=high,
                    outside=outside,
                    range_reason="±0.25: half the L^-1/2 shift (theory)"
                    if param != "ode"
                    else "sign only",
                    undecided=undecided,
                )
            )
    return out


def _sp_instability(ds: xr.Dataset, optimizer: str, depths: list[int]) -> Claim:
    """Claim 7.1: at the largest depth SP diverges at every η (fraction of seeds)."""
    top = depths[-1]
    curves = ds.log_loss.sel(optimizer=optimizer, param="standard", depth=top)
    lost = int((~np.isfinite(curves).any("log2_eta")).sum())
    return Claim(
        experiment=NAME,
        claim="SP (0, 0) is unstable at initialization: deep nets diverge at every η",
        source="paper: Claim 7.1 (stable at init ⇔ α ≥ 1/2); Figs. 10 bottom, 20: "
        "L = 2^9, 2^10 diverge",
        quantity=f"fraction of seeds diverging at every η, L = {top}, {optimizer}",
        estimate=proportion_interval(lost, curves.sizes["seed"]),
        paper="every η diverges",
        low=0.5,
        high=1.0,
        range_reason="most seeds; Claim 7.1 gives e^(L^(1−2α)) growth at init",
    )
