"""abs vs relu, and the positively homogeneous family (the paper's Figs. 3 and 19, Sec. 8.3).

Finite Depth-µP resnets (post-nonlin, MS, SGD, frozen input/output layers, base depth 8) on
the bundled digits data, recorded at initialization and after training with the first
held-out digit as probe (:mod:`limitsim.experiments._digits`).  Two grids:

1. **abs vs relu** (Fig. 3, Fig. 19): φ ∈ {relu, abs} × depth × log2 η × seed at the paper's
   log2 a = −1.5.  Loss: min over η of the seed-mean LogLoss (natural log of the training loss
   averaged over the last ``window`` steps).  Diversity, at each φ's loss-optimal η: the
   cross-layer correlation of δh̃ between neighbouring blocks (``lag1``,
   :func:`limitsim.measures.lag_correlation`), the feature-diversity exponent κ̂ and the
   normalised curves d/(c ε^{1/2}) of Fig. 19.
2. **the homogeneous family** (no paper figure): φ_θ(z) ∝ c₊ relu(z) − c₋ relu(−z) with
   (c₊, c₋) = (cos θ, sin θ), θ in degrees on a grid, at one depth (``family_depth``),
   normalised so that Var φ_θ(z) = Var relu(z) for z ~ N(0, 1) (our choice; the definitions
   and the prediction (E φ′)²/E φ′² = (1 + sin 2θ)/2 of the init δh̃ correlation are in
   :mod:`limitsim.experiments._homogeneous`).  θ = 0 is relu, −45° abs, 45° linear.

Claims: abs beats relu in loss at every depth ≥ 32 (Fig. 3); the init lag correlation matches
the prediction (±0.1) for relu and abs; after training δh̃ stays decorrelated for abs (±0.1 of
0) and less correlated than for relu (Sec. 8.3); abs more feature-diverse than relu, κ̂ larger
(Fig. 19); on the family, gradient diversity (1 − lag1), feature diversity (κ̂) and the loss
are best at abs (θ = −45°) within one grid step.  The optimum over θ is refined by a parabola
and bootstrapped over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from limitsim.experiments._common import Context, bootstrap_argmin, sweep
from limitsim.experiments._digits import at_best_eta, best_over, mean_se, tidy, train_points
from limitsim.experiments._homogeneous import ABS_THETA, family_spec, lag_prediction
from limitsim.report import Claim

NAME = "nonlinearity"
TITLE = "abs vs relu and the homogeneous family: loss and diversity (Figs. 3, 19)"

#: Sizes per profile: tiny (tests), quick (2 cores, minutes), paper (a cluster).
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "phis": ("relu", "abs"),
        "depths": (16, 48),
        "thetas": (-90.0, -45.0, 0.0, 45.0),
        "family_depth": 16,
        "log2_etas": (2.0, 3.0),
        "seeds": 2,
        "width": 16,
        "steps": 6,
        "batch": 8,
        "task": "digits",
        "window": 2,
        "log2_a": -1.5,
        "base_eta": 0.25,
    },
    "quick": {
        "phis": ("relu", "abs"),
        "depths": (16, 32, 64),
        "thetas": (-90.0, -67.5, -45.0, -22.5, 0.0, 22.5, 45.0),
        "family_depth": 64,
        "log2_etas": (2.0, 3.0, 4.0, 5.0),
        "seeds": 4,
        "width": 64,
        "steps": 300,
        "batch": 32,
        "task": "digits",
        "window": 50,
        "log2_a": -1.5,
        "base_eta": 0.25,
    },
    "paper": {
        "phis": ("relu", "abs"),
        "depths": (8, 16, 32, 64, 128, 256, 512, 1024),
        "thetas": tuple(float(v) for v in np.arange(-90.0, 90.1, 11.25)),
        "family_depth": 256,
        "log2_etas": tuple(float(v) for v in np.arange(0.0, 6.01, 0.5)),
        "seeds": 5,
        "width": 256,
        "steps": 3000,
        "batch": 64,
        "task": "digits",
        "window": 500,
        "log2_a": -1.5,
        "base_eta": 0.25,
    },
}
FIXED = ("width", "steps", "batch", "task", "window", "log2_a", "base_eta")


def train_family_points(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sweep function of the family grid: :func:`train_points` with φ = φ_θ."""
    return train_points([{**p, "phi": family_spec(float(p["theta"]))} for p in points])


def run(sizes: dict[str, Any], context: Context | None = None) -> xr.Dataset:
    """Both grids; the family's variables are prefixed ``family_`` (dims theta, log2_eta, …)."""
    from limitsim.grid import Grid

    steps = (0, int(sizes["steps"]))
    fixed = {key: sizes[key] for key in FIXED} | {"record_steps": steps}
    axes: dict[str, Sequence[float]] = {
        "log2_eta": [float(v) for v in sizes["log2_etas"]],
        "seed": list(range(int(sizes["seeds"]))),
    }
    grid = Grid(
        axes={"phi": list(sizes["phis"]), "depth": list(sizes["depths"]), **axes}, fixed=fixed
    )
    batch_axes = ("log2_eta", "seed")
    batch_size = int(sizes.get("batch_size", 8))
    main = sweep(context, NAME, train_points, grid, batch_axes=batch_axes, batch_size=batch_size)
    family_grid = Grid(
        axes={"theta": [float(v) for v in sizes["thetas"]], **axes},
        fixed=fixed | {"depth": int(sizes["family_depth"])},
    )
    family = sweep(
        context,
        f"{NAME}_family",
        train_family_points,
        family_grid,
        batch_axes=batch_axes,
        batch_size=batch_size,
    )
    ds = xr.merge([tidy(main, steps), tidy(family, steps, prefix="family_")], join="outer")
    ds.theta.attrs["units"] = "degrees"
    ds.attrs = {key: fixed[key] for key in FIXED} | {"family_depth": int(sizes["family_depth"])}
    return ds


# ------------------------------------------------------------------ summaries
def min_loss(ds: xr.Dataset, prefix: str = "") -> tuple[xr.DataArray, xr.DataArray]:
    """Min over η of the seed-mean LogLoss and its SE (dims phi, depth; or theta)."""
    return best_over(ds[f"{prefix}log_loss"], ("log2_eta",))


def family_optimum(ds: xr.Dataset, var: str, *, maximize: bool) -> tuple[float, float]:
    """(θ of the optimum of the seed-mean ``var`` at the final step, bootstrap SE) in degrees."""
    values = at_best_eta(ds, var, prefix="family_")
    if "step" in values.dims:
        values = values.isel(step=-1)
    table = values.transpose("theta", "seed").values
    return bootstrap_argmin(ds.theta.values, -table if maximize else table)


# ---------------------------------------------------------------------- plots
def plot(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """Fig. 3/19 panels (abs vs relu) and the family sweep (two figures)."""
    from limitsim.experiments._nonlinearity_plots import plot_family, plot_pair

    best, se = min_loss(ds)
    family_best, family_se = min_loss(ds, "family_")
    return plot_pair(ds, best, se, out_dir, NAME) + plot_family(
        ds, family_best, family_se, out_dir, f"{NAME}_family"
    )


# --------------------------------------------------------------------- claims
def claims(ds: xr.Dataset) -> list[Claim]:
    """Loss and diversity of abs vs relu; location of the family's optima (module doc)."""
    out = []
    best, se = min_loss(ds)
    depths = [int(d) for d in ds.depth.values]
    for L in [L for L in depths if L >= 32] or depths[-1:]:
        gap = float(best.sel(phi="relu", depth=L) - best.sel(phi="abs", depth=L))
        err = math.hypot(float(se.sel(phi="relu", depth=L)), float(se.sel(phi="abs", depth=L)))
        out.append(
            Claim(
                NAME,
                "abs beats relu in loss at depth ≥ 32 (Fig. 3)",
                f"min LogLoss relu − abs at L = {L}",
                gap,
                err,
                "abs ≈ 0.3-0.5 lower at every depth",
                0.0,
                math.inf,
            )
        )
    top = depths[-1]
    lag = at_best_eta(ds, "lag1").sel(depth=top)
    for phi, theta in (("relu", 0.0), ("abs", ABS_THETA)):
        pred = float(lag_prediction(theta))
        mean, err = mean_se(lag.sel(phi=phi).isel(step=0))
        out.append(
            Claim(
                NAME,
                f"{phi}: φ′ decorrelates δh̃ of neighbouring blocks at init "
                "as (Eφ′)²/Eφ′² (Sec. 8.3; formula ours)",
                f"lag-1 corr of δh̃ at init, L = {top}",
                mean,
                err,
                f"{pred:g}",
                pred - 0.1,
                pred + 0.1,
            )
        )
    trained = lag.isel(step=-1)
    mean, err = mean_se(trained.sel(phi="abs"))
    out.append(
        Claim(
            NAME,
            "abs: δh̃ of different blocks completely decorrelated (Sec. 8.3)",
            f"lag-1 corr of δh̃ after training, L = {top}",
            mean,
            err,
            "0",
            -0.1,
            0.1,
        )
    )
    diff = trained.sel(phi="relu") - trained.sel(phi="abs")
    mean, err = mean_se(diff)
    out.append(
        Claim(
            NAME,
            "abs decorrelates δh̃ across blocks better than relu (Sec. 8.3)",
            f"lag-1 corr relu − abs after training, L = {top}",
            mean,
            err,
            "relu partially, abs completely",
            0.0,
            math.inf,
        )
    )
    kappa = at_best_eta(ds, "kappa").isel(step=-1)
    deep = [L for L in depths if np.isfinite(kappa.sel(depth=L)).any()]
    if deep:
        L = deep[-1]
        k_abs, e_abs = mean_se(kappa.sel(phi="abs", depth=L))
        k_relu, e_relu = mean_se(kappa.sel(phi="relu", depth=L))
        out.append(
            Claim(
                NAME,
                "abs has more feature diversity than relu (Fig. 19)",
                f"κ̂(abs) − κ̂(relu) after training, L = {L}",
                k_abs - k_relu,
                math.hypot(e_abs, e_relu),
                "abs slopes smaller (κ̂ larger)",
                0.0,
                math.inf,
            )
        )
    step = float(np.min(np.diff(np.sort(ds.theta.values.astype(float)))))
    for var, maximize, text, paper in (
        (
            "lag1",
            False,
            "gradient diversity (least lag-1 δh̃ correlation)",
            "abs is the best decorrelator (Sec. 8.3)",
        ),
        ("kappa", True, "feature diversity (largest κ̂)", "abs maximises diversity (Sec. 8.3)"),
        ("log_loss", False, "loss (min over η)", "not shown by the paper (hypothesis: abs)"),
    ):
        theta, err = family_optimum(ds, var, maximize=maximize)
        out.append(
            Claim(
                NAME,
                f"family: {text} is best at abs, θ = −45°",
                f"argopt θ (degrees), L = {ds.attrs.get('family_depth')}",
                theta,
                err,
                paper,
                ABS_THETA - step,
                ABS_THETA + step,
            )
        )
    return out
