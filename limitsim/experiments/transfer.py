"""Learning-rate transfer across depth (the paper's Figs. 10, 11, 12, 20, 22–24).

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

Fig. 10 top also shows that under Depth-µP the loss improves monotonically with depth.
"Monotone" is fixed as: per seed, the minimum over the Adam η window of the LogLoss at each
depth; for every pair of consecutive depths the paired difference LogLoss(L_{i+1}) −
LogLoss(L_i) with its Student-t interval; *every* difference must be < 0.  This is an
intersection–union test (no multiplicity correction is needed for "reproduced"): reproduced
when every interval lies below 0, not reproduced when some interval lies entirely above 0,
inconclusive otherwise.  The row shows the deciding step (:func:`monotone_step`); it is
undecided when more than 10% of the per-seed minima sit at the η grid's edge.

SP is defined twice in the paper: (0, 0) in Figs. 10 bottom and 20 (preset ``standard``), and
(0, 1) in the text of Sec. 10.2 and footnote 26 ("SP with γ = 1", Fig. 23; preset
``standard_gamma1``).  Both are unstable at initialization (α = 0 < 1/2, Claim 7.1, whatever
γ); for each, the fraction of seeds that diverge at every η at the largest depth, and its shift
where it trains (outside ±0.25).  Fig. 23's x axis is log(η·L): for ``standard_gamma1`` the
η of the grid is the preset's η, i.e. the applied Adam rate η·(L/8)^{-1} times L/8, the
caption's η·L.  Fig. 20 (SP (0, 0) "fails at large depth"): per seed, the fraction of the η
grid that diverges at the largest depth minus that at the base depth, paired, > 0.

Fig. 12 (abs with pre-LN, log2 a = −3: Depth-µP transfers, block-only does not) is a grid of
its own, :mod:`~limitsim.experiments._transfer_ln`.

SGD versions of the Depth-µP and block-only rows are ``extension`` rows: the theory predicts
the same picture (block-only's raw SGD rate is L^{1/2} times Depth-µP's), the paper shows
Adam only.  The quick and standard profiles train Adam only (the paper's optimizer: SGD
cost a third of the quick budget and 3 of the standard profile's 60 minutes); the tiny and
paper profiles train both.
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
    TRANSFER_SLOPE,
    Context,
    OptimumTrend,
    eta_windows_filter,
    optimum_trend,
    seed_axis,
    sweep,
)
from limitsim.experiments._digits import BASE_DEPTH, TRAINING, DigitsTraining, train_points
from limitsim.experiments._plots import plot_seed_mean
from limitsim.experiments._transfer_ln import claims_ln, plot_ln, run_ln
from limitsim.experiments._transfer_rows import (
    PARAM_LABELS,
    best_per_depth,
    monotone_claim,
    sp_fails_at_depth,
    sp_instability,
)
from limitsim.experiments.profiles import log2_grid
from limitsim.plotting import (
    depth_colors,
    errorbar_estimates,
    figure_legend,
    new_figure,
    save_figure,
)
from limitsim.report import Claim
from limitsim.stats import missing, t_interval

NAME = "transfer"
TITLE = "Learning-rate transfer across depth (Figs. 10, 11, 12, 20, 22-24)"


@dataclass(frozen=True, kw_only=True)
class Sizes(DigitsTraining):
    """Sizes of the transfer experiment; the fields are read by :func:`run`.

    ``log2_etas`` gives each optimizer its own window of log2(η / base_eta_<optimizer>), wide
    enough that every parametrization's optimum lies inside it at every depth.  The ``ln_``
    fields size the Fig. 12 grid (abs with pre-LN, :mod:`~limitsim.experiments._transfer_ln`).
    """

    optimizers: tuple[str, ...]
    params: tuple[str, ...]
    depths: tuple[int, ...]
    log2_etas: Mapping[str, tuple[float, ...]]
    phi: str
    log2_a: float
    base_eta_sgd: float
    base_eta_adam: float
    ln_params: tuple[str, ...]
    ln_depths: tuple[int, ...]
    ln_log2_etas: tuple[float, ...]
    ln_phi: str
    ln_log2_a: float


#: tiny (tests), quick (2 cores, minutes) and paper (a cluster), each derived from the last.
TINY = Sizes(
    **TRAINING["tiny"],
    optimizers=("adam", "sgd"),
    params=("depth_mup", "block_only", "standard", "standard_gamma1"),
    depths=(8, 16, 32),
    log2_etas={"adam": (-1.0, 0.0, 1.0), "sgd": (-1.0, 0.0, 1.0)},
    phi="relu",
    steps=4,
    log2_a=0.0,
    base_eta_sgd=0.25,
    base_eta_adam=0.1,
    ln_params=("depth_mup", "block_only"),
    ln_depths=(8, 16),
    ln_log2_etas=(4.0, 5.0),
    ln_phi="abs",
    ln_log2_a=-3.0,
)
QUICK = replace(
    TINY,
    **TRAINING["quick"],
    params=("depth_mup", "block_only", "ode", "standard", "standard_gamma1"),
    optimizers=("adam",),  # the paper's; the SGD extension rows: tiny and paper
    depths=(8, 32, 128),  # SP diverges at every η at L = 128; at L = 64 no seed did
    log2_etas={"adam": log2_grid(-3.0, 1.5), "sgd": log2_grid(-3.5, 1.0)},
    ln_depths=(8, 16, 32),
    ln_log2_etas=log2_grid(1.0, 7.0),
)
PAPER = replace(
    QUICK,
    **TRAINING["paper"],
    optimizers=("adam", "sgd"),
    depths=(8, 16, 32, 64, 128, 256, 512, 1024),
    log2_etas={"adam": log2_grid(-6.0, 4.0), "sgd": log2_grid(-6.0, 4.0)},
    ln_depths=(8, 16, 32, 64, 128, 256, 512, 1024),
    ln_log2_etas=log2_grid(-2.0, 8.0),
    steps=3000,
    window=200,
)
STANDARD = replace(QUICK, **TRAINING["standard"], depths=(8, 16, 32, 64, 128), seeds=12)
SIZES = {"tiny": TINY, "quick": QUICK, "standard": STANDARD, "paper": PAPER}
#: SGD runs only the parametrizations whose SGD prediction is stated (extension rows).
SGD_PARAMS = ("depth_mup", "block_only")
#: The two SP definitions (module docstring).
SP_PARAMS = ("standard", "standard_gamma1")


def run(sizes: Mapping[str, Any], context: Context | None = None) -> xr.Dataset:
    """The transfer grid (``sizes``: params, optimizers, depths, log2_etas, seeds, width, ...)."""
    from limitsim.sweeps.grid import Grid

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
            eta_windows_filter(sizes["log2_etas"]),
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
    attrs = {key: grid.fixed[key] for key in grid.fixed}
    for opt, values in sizes["log2_etas"].items():
        attrs[f"log2_etas_{opt}"] = list(values)
    if sizes.get("ln_params"):
        ds = xr.merge([ds, run_ln(sizes, context)], join="outer", combine_attrs="drop")
        attrs |= {key: sizes[key] for key in ("ln_phi", "ln_log2_a")}
    ds.attrs = attrs
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
    fig, axes = new_figure(len(params) + 2, len(optimizers), width=3.0, height=2.5)
    for row, opt in enumerate(optimizers):
        for col, param in enumerate(params):
            ax = axes[row, col]
            if not np.isfinite(ds.log_loss.sel(optimizer=opt, param=param)).any():
                ax.set_axis_off()  # not run: no prediction stated for this optimizer
                ax.set_title(f"{PARAM_LABELS.get(param, param)}, {opt}: not run", fontsize=8)
                continue
            for L in depths:
                curve = ds.log_loss.sel(optimizer=opt, param=param, depth=L)
                plot_seed_mean(ax, ds.log2_eta, curve, color=colors[L], label=f"L = {L}",
                               ms=2.5, gaps=False)  # fmt: skip
            ax.set_title(f"{PARAM_LABELS.get(param, param)}, {opt}")
            eta = "η·L/8" if param == "standard_gamma1" else "η"  # Fig. 23: applied η × L
            ax.set_xlabel(f"log2({eta} / {ds.attrs.get(f'base_eta_{opt}', 'η0')})")
            ax.set_ylabel("log training loss (window)")
        ax = axes[row, -2]
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
        ax = axes[row, -1]
        for k, param in enumerate(params):
            best = best_per_depth(ds, opt, param)
            if np.isfinite(best).any():
                rows = [t_interval(b) for b in best]
                x = np.log2(depths) + 0.06 * (k - len(params) / 2)  # offsets: equal values
                errorbar_estimates(ax, x, rows, marker="o", color=f"C{k}",
                                   label=PARAM_LABELS.get(param, param))  # fmt: skip
        ax.set_title(f"best loss vs L ({opt}; Fig. 10 top)")
        ax.set_xlabel("log2 L")
        ax.set_ylabel("per-seed min over η of LogLoss, 95% CI")
        ax.legend(fontsize=6)
    figure_legend(fig, axes[0, 0])
    fig.suptitle(
        f"{ds.attrs.get('task', 'digits')}, width {ds.attrs.get('width', '?')}, "
        f"φ = {ds.attrs.get('phi', '?')}, base depth {BASE_DEPTH}; bands: ±1 SE over seeds"
    )
    paths = save_figure(fig, out_dir, NAME)
    return paths + (plot_ln(ds, out_dir) if "ln_log_loss" in ds else [])


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
        "standard_gamma1": "paper: Fig. 23 (SP with γ = 1, x axis log(η·L)); Sec. 10.2: SP "
        "with the learning rate scaled by L^-1 (footnote 26)",
    }[param]


#: Accepted range (low, high, outside) and the paper's statement of each slope row.
SLOPE_RANGES = {
    "depth_mup": (-TRANSFER_SLOPE, TRANSFER_SLOPE, False, "flat from L = 2^6"),
    "block_only": (-math.inf, -TRANSFER_SLOPE, False, "≈ −0.5 per doubling"),
    "ode": (0.0, math.inf, False, "increases"),
    "standard": (-TRANSFER_SLOPE, TRANSFER_SLOPE, True, "large shift"),
    "standard_gamma1": (-TRANSFER_SLOPE, TRANSFER_SLOPE, True, "shifts (SP)"),
}


def claims(ds: xr.Dataset) -> list[Claim]:
    """Signed slope of the optimal η per (optimizer, parametrization); SP's instability and
    failure at depth (Figs. 20, 23); Depth-µP's monotone improvement with depth (Fig. 10)."""
    out = []
    depths = [int(d) for d in ds.depth.values]
    steps = ds.attrs.get("steps", "?")
    for opt in (str(o) for o in ds.optimizer.values):
        for param in (str(p) for p in ds.param.values):
            if opt != "adam" and param not in SGD_PARAMS:
                continue
            label = PARAM_LABELS.get(param, param)
            if param in SP_PARAMS:
                out.append(sp_instability(ds, opt, param, depths))
            if param == "standard" and opt == "adam":
                out.append(sp_fails_at_depth(ds, opt, depths))
            used = trained_depths(ds, opt, param) if param in SP_PARAMS else depths
            if len(used) >= 2:
                result = trend(ds, opt, param, used)
                estimate, undecided = result.slope, result.undecided("η", used)
            else:
                estimate = missing()
                undecided = f"trains at {len(used)} depth(s) only"
            low, high, outside, paper = SLOPE_RANGES[param]
            statement = (
                f"{label}: the optimal η transfers across depth"
                if param == "depth_mup"
                else f"{label}: the optimal η moves with depth"
            )
            x = (
                "log2(η_applied·L/8) (Fig. 23's x; = the preset's log2 η)"
                if param == "standard_gamma1"
                else "log2 η"
            )
            out.append(
                Claim(
                    experiment=NAME,
                    claim=statement,
                    source=_source(opt, param),
                    quantity=f"slope of optimal {x} vs log2 L, L = {used[0] if used else '?'}"
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
        if opt == "adam" and "depth_mup" in [str(p) for p in ds.param.values]:
            out.append(monotone_claim(ds, opt, depths))
    return out + claims_ln(ds)
