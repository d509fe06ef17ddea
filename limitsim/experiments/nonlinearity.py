"""abs vs relu, and the positively homogeneous family (the paper's Figs. 3 and 19, Sec. 8.3).

Finite Depth-µP resnets (post-nonlin, MS, frozen input/output layers, base depth 8) on the
bundled digits data (:mod:`limitsim.experiments._digits`).  Two grids:

1. **loss** (Fig. 3 right): φ ∈ {relu, abs} × depth × log2 η × seed at the paper's
   log2 a = −1.5 with ``optimizer``.  Per seed, the minimum over η of the LogLoss (natural log
   of the training loss averaged over the last ``window`` steps); relu − abs is paired over
   seeds (the two φ share a seed's weights and batches).
2. **family** (Fig. 19 and Sec. 8.3), in the paper's regime as far as the budget allows: Adam,
   one depth ``family_depth`` ≥ 256 (so the ε window [1/256, 1/16] of κ̂ is the same for every
   member), one learning rate, recorded at t = 0 and at the fractions ``record_fractions`` of
   the run (the paper's Fig. 19 shows t = 100, 500, 1000 of ≈ 38k steps: early training).  The
   members are φ_θ(z) ∝ c₊ relu(z) − c₋ relu(−z), (c₊, c₋) = (cos θ, sin θ), normalised so that
   Var φ_θ(z) = Var relu(z) (:mod:`limitsim.experiments._homogeneous`): θ = 0 is relu and
   θ = −45° is abs scaled by 0.968 (the same as a 3% smaller multiplier).  φ_θ(−z) is the
   member at −90° − θ, so θ ∈ [−90°, 0°] covers the family up to that symmetry.

Measures per recorded step: the lag-1 correlation of δh̃ between neighbouring blocks
(:func:`limitsim.measures.lag_correlation`), κ̂ = 1 − slope of log d against log ε over
ε ∈ [1/256, 1/16] (:func:`limitsim.measures.diversity_exponent`; the paper's Fig. 19 compares
these slopes) and the curves d(ε).

Claims: under Depth-µP abs transfers the learning rate (Fig. 3 left: the optimum sits at
log2(η/1e-3) ≈ −1…0 at every depth): the signed slope of the per-seed optimal log2 η against
log2 L (:func:`~limitsim.experiments._common.optimum_trend`, Student-t over seeds) lies in
[−0.25, 0.25], half the L^{-1/2} shift of a mis-scaled rate as in
:mod:`~limitsim.experiments.transfer` (undecided when more than 10% of the per-seed optima sit
at the η grid's edge); abs beats relu in loss at depth ≥ 32 (Fig. 3 right); abs's κ̂ exceeds
relu's early in training (Fig. 19, at most 5% into the run), paired over seeds, with t = 0 and
later times as ``extension`` rows; δh̃ of neighbouring blocks decorrelated completely for abs
and less than for relu (Sec. 8.3), and at init as (Eφ′)²/Eφ′² (our formula, ``extension``); over
the family, gradient and feature diversity are best at abs (Sec. 8.3: abs maximises diversity
among homogeneous φ), per-seed optimum over θ with a t interval.
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
    FLAT_OPTIMUM,
    SIGN_ONLY,
    Context,
    OptimumTrend,
    optimum_trend,
    seed_axis,
    sweep,
)
from limitsim.experiments._digits import (
    TRAINING,
    EtaGrid,
    edge_fraction,
    per_seed_min,
    tidy,
    train_points,
)
from limitsim.experiments._homogeneous import ABS_THETA, family_spec, lag_prediction
from limitsim.experiments._nonlinearity_plots import plot_family, plot_pair
from limitsim.experiments.profiles import log2_grid
from limitsim.report import Claim
from limitsim.stats import Estimate, argmin_fit, paired_interval, t_interval

NAME = "nonlinearity"
TITLE = "abs vs relu and the homogeneous family: loss and diversity (Figs. 3, 19)"


@dataclass(frozen=True, kw_only=True)
class Sizes(EtaGrid):
    """Sizes of the nonlinearity experiment; the fields are read by :func:`run`."""

    phis: tuple[str, ...]
    thetas: tuple[float, ...]
    family_depth: int
    family_log2_eta: float
    record_fractions: tuple[float, ...]
    log2_a: float


#: tiny (tests), quick (2 cores, minutes) and paper (a cluster), each derived from the last.
TINY = Sizes(
    **TRAINING["tiny"],
    phis=("relu", "abs"),
    depths=(16, 48),
    log2_etas=(-1.0, 0.0),
    optimizer="adam",
    thetas=(-90.0, -45.0, 0.0),
    family_depth=64,
    family_log2_eta=0.0,
    record_fractions=(0.25, 0.5, 1.0),
    steps=8,
    log2_a=-1.5,
    base_eta=0.1,
)
QUICK = replace(
    TINY,
    **TRAINING["quick"],
    depths=(16, 32, 64),
    log2_etas=(0.0, 1.0, 2.0, 3.0, 4.0),
    thetas=(-90.0, -67.5, -45.0, -22.5, 0.0),
    family_depth=256,
    record_fractions=(0.01, 0.03, 0.1, 1.0),
)
PAPER = replace(
    QUICK,
    **TRAINING["paper"],
    depths=(8, 16, 32, 64, 128, 256, 512, 1024),
    log2_etas=log2_grid(-1.0, 4.0),
    thetas=log2_grid(-90.0, 0.0, 11.25),
    family_depth=1024,
    steps=3000,
    window=500,
)
STANDARD = replace(QUICK, seeds=16, steps=400)
SIZES = {"tiny": TINY, "quick": QUICK, "standard": STANDARD, "paper": PAPER}
FIXED = ("width", "steps", "batch", "task", "window", "log2_a", "base_eta", "optimizer")
#: θ of relu in the family.
RELU_THETA = 0.0
#: Recorded times up to this fraction of the run count as the paper's early regime (Fig. 19).
EARLY = 0.05


def record_steps(steps: int, fractions: tuple[float, ...]) -> tuple[int, ...]:
    """t = 0 and ``round(f · steps)`` (at least 1) for each fraction f, sorted and distinct."""
    return tuple(sorted({0, *(max(1, round(f * steps)) for f in fractions)}))


def train_family_points(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sweep function of the family grid: :func:`train_points` with φ = φ_θ."""
    return train_points([{**p, "phi": family_spec(float(p["theta"]))} for p in points])


def run(sizes: Mapping[str, Any], context: Context | None = None) -> xr.Dataset:
    """Both grids; the family's variables are prefixed ``family_`` (dims theta, seed, step)."""
    from limitsim.sweeps.grid import Grid

    fixed = {key: sizes[key] for key in FIXED}
    seeds = seed_axis(context, int(sizes["seeds"]))
    batch_size = int(sizes.get("batch_size", 8))
    grid = Grid(
        axes={
            "phi": list(sizes["phis"]),
            "depth": list(sizes["depths"]),
            "log2_eta": [float(v) for v in sizes["log2_etas"]],
            "seed": seeds,
        },
        fixed=fixed,
    )
    loss = sweep(
        context, NAME, train_points, grid, batch_axes=("log2_eta", "seed"), batch_size=batch_size
    )
    steps = record_steps(int(sizes["steps"]), tuple(sizes["record_fractions"]))
    family_fixed = {
        "optimizer": "adam",
        "depth": int(sizes["family_depth"]),
        "log2_eta": float(sizes["family_log2_eta"]),
        "record_steps": steps,
    }
    family_grid = Grid(
        axes={"theta": [float(v) for v in sizes["thetas"]], "seed": seeds},
        fixed=fixed | family_fixed,
    )
    family = sweep(
        context,
        f"{NAME}_family",
        train_family_points,
        family_grid,
        batch_axes=("seed",),  # one φ per batched training
        batch_size=batch_size,
    )
    ds = xr.merge([tidy(loss, ()), tidy(family, steps, prefix="family_")], join="outer")
    ds.theta.attrs["units"] = "degrees"
    ds.attrs = fixed | {key: sizes[key] for key in ("family_depth", "family_log2_eta")}
    ds.attrs["family_optimizer"] = "adam"
    return ds


# ------------------------------------------------------------------ summaries
def trend(ds: xr.Dataset, phi: str) -> OptimumTrend:
    """Per-seed optimal log2 η of ``phi`` at every depth of the loss grid, slope vs log2 L."""
    depths = [int(d) for d in ds.depth.values]
    table = ds.log_loss.sel(phi=phi).transpose("depth", "log2_eta", "seed").values
    return optimum_trend(ds.log2_eta.values, table, depths)


def family_at(ds: xr.Dataset, var: str, theta: float) -> xr.DataArray:
    """``family_<var>`` of the member at ``theta`` (dims seed[, step])."""
    return ds[f"family_{var}"].sel(theta=theta)


def family_optimum(ds: xr.Dataset, var: str, step: int, *, maximize: bool) -> tuple[Estimate, bool]:
    """Per-seed optimum over θ of ``family_<var>`` at ``step``, and whether any is at an edge."""
    table = ds[f"family_{var}"].sel(step=step).transpose("seed", "theta").values
    sign = -1.0 if maximize else 1.0
    fits = [argmin_fit(ds.theta.values, sign * row, half_width=1) for row in table]
    return t_interval([f[0] for f in fits]), any(f[1] for f in fits)


# ---------------------------------------------------------------------- plots
def plot(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """Fig. 3/19 panels (abs vs relu) and the family sweep (two figures)."""
    trends = {str(phi): trend(ds, str(phi)) for phi in ds.phi.values}
    return plot_pair(ds, out_dir, NAME, trends) + plot_family(ds, out_dir, f"{NAME}_family")


# --------------------------------------------------------------------- claims
def _when(ds: xr.Dataset, step: int) -> str:
    return f"t = {step} ({step / int(ds.attrs['steps']):.0%} of the run)"


def _is_early(ds: xr.Dataset, step: int) -> bool:
    return 0 < step <= EARLY * int(ds.attrs["steps"])


def claims(ds: xr.Dataset) -> list[Claim]:
    """Loss (Fig. 3), diversity early and late (Fig. 19), δh̃ decorrelation, family optima."""
    return (
        _transfer_claims(ds)
        + _loss_claims(ds)
        + _diversity_claims(ds)
        + _lag_claims(ds)
        + _family_claims(ds)
    )


def _where(ds: xr.Dataset) -> str:
    return (
        f"L = {ds.attrs['family_depth']}, Adam, "
        f"log2(η/{ds.attrs.get('base_eta')}) = {ds.attrs.get('family_log2_eta')}"
    )


def _transfer_claims(ds: xr.Dataset) -> list[Claim]:
    """Fig. 3 left: abs's optimal η transfers across depth under Depth-µP."""
    if "abs" not in [str(p) for p in ds.phi.values]:
        return []
    optimizer = str(ds.attrs.get("optimizer", "sgd"))
    depths = [int(d) for d in ds.depth.values]
    result = trend(ds, "abs")
    source = ("paper" if optimizer == "adam" else "extension") + (
        ": Fig. 3 left: abs, Depth-µP, log2 a = −1.5: the optimum sits at log2(η/1e-3) ≈ −1…0 "
        "at every depth"
    )
    return [
        Claim(
            experiment=NAME,
            claim="Depth-µP: abs transfers the optimal η across depth",
            source=source + ("" if optimizer == "adam" else " (the paper trains with Adam)"),
            quantity=f"slope of optimal log2 η vs log2 L (abs), L = {depths[0]}..{depths[-1]}, "
            f"log2 a = {ds.attrs.get('log2_a')}, {optimizer}, {ds.attrs.get('steps')} steps",
            estimate=result.slope,
            paper="flat",
            **FLAT_OPTIMUM,
            undecided=result.undecided("η", depths),
        )
    ]


def _loss_claims(ds: xr.Dataset) -> list[Claim]:
    """Fig. 3: relu − abs of the per-seed minimal LogLoss, paired, at each depth ≥ 32."""
    optimizer = str(ds.attrs.get("optimizer", "sgd"))
    best = per_seed_min(ds.log_loss, ("log2_eta",))
    depths = [int(d) for d in ds.depth.values]
    source = ("paper" if optimizer == "adam" else "extension") + (
        ": Fig. 3 right: abs ≈ 0.3-0.5 lower min LogLoss at every depth"
    )
    if optimizer != "adam":
        source += " (the paper trains with Adam)"
    edge = edge_fraction(ds.log_loss, "log2_eta")
    undecided = f"{edge:.0%} of the per-seed minima at the η grid's edge" if edge > 0.1 else ""
    return [
        Claim(
            experiment=NAME,
            claim="abs beats relu in loss",
            source=source,
            quantity=f"LogLoss relu − abs, per-seed min over η, L = {L}, {optimizer}, "
            f"{ds.attrs.get('steps')} steps",
            estimate=paired_interval(
                best.sel(phi="relu", depth=L).values, best.sel(phi="abs", depth=L).values
            ),
            paper="≈ 0.3-0.5",
            **SIGN_ONLY,
            undecided=undecided,
        )
        for L in ([L for L in depths if L >= 32] or depths[-1:])
    ]


def _diversity_claims(ds: xr.Dataset) -> list[Claim]:
    """Fig. 19: κ̂(abs) − κ̂(relu), paired over seeds, at every recorded time."""
    kappa_abs, kappa_relu = family_at(ds, "kappa", ABS_THETA), family_at(ds, "kappa", RELU_THETA)
    out = []
    for t in (int(t) for t in ds.step.values):
        if t == 0:
            claim = "abs and relu equally diverse at initialization"
            source = "extension: at initialization both are Brownian in depth (κ = 1/2)"
            low, high, reason = -0.05, 0.05, "κ = 1/2 for both; ±0.05 for finite ε"
        else:
            claim = "abs has more feature diversity than relu"
            low, high, reason = 0.0, math.inf, "sign only"
            source = (
                "paper: Fig. 19: abs's normalised curves flatter than relu's at t = 100-1000"
                if _is_early(ds, t)
                else "extension: Fig. 19's comparison later in training than the paper shows"
            )
        out.append(
            Claim(
                experiment=NAME,
                claim=claim,
                source=source,
                quantity=f"κ̂(abs) − κ̂(relu), ε ∈ [1/256, 1/16], {_when(ds, t)}, {_where(ds)}",
                estimate=paired_interval(
                    kappa_abs.sel(step=t).values, kappa_relu.sel(step=t).values
                ),
                paper="abs slopes smaller (κ̂ larger)" if t else "—",
                low=low,
                high=high,
                range_reason=reason,
            )
        )
    return out


def _lag_claims(ds: xr.Dataset) -> list[Claim]:
    """Sec. 8.3: lag-1 δh̃ correlation at init (our formula) and after training."""
    lag_abs, lag_relu = family_at(ds, "lag1", ABS_THETA), family_at(ds, "lag1", RELU_THETA)
    out = []
    for phi, theta, lag in (("relu", RELU_THETA, lag_relu), ("abs", ABS_THETA, lag_abs)):
        pred = float(lag_prediction(theta))
        out.append(
            Claim(
                experiment=NAME,
                claim=f"{phi}: φ′ decorrelates δh̃ of neighbouring blocks at init as (Eφ′)²/Eφ′²",
                source="extension: Sec. 8.3's argument; the formula (Eφ′)²/Eφ′² is ours "
                "(tp6-notes §4)",
                quantity=f"lag-1 corr of δh̃ at init, {_where(ds)}",
                estimate=t_interval(lag.sel(step=0).values),
                paper="relu partially, abs completely",
                low=pred - 0.1,
                high=pred + 0.1,
                range_reason=f"{pred:g} ± 0.1 for finite width",
            )
        )
    end = int(ds.step.values[-1])
    out.append(
        Claim(
            experiment=NAME,
            claim="abs: δh̃ of different blocks completely decorrelated after training",
            source="paper: Sec. 8.3: with φ′ = sign, δh of different blocks are completely "
            "decorrelated",
            quantity=f"lag-1 corr of δh̃, {_when(ds, end)}, {_where(ds)}",
            estimate=t_interval(lag_abs.sel(step=end).values),
            paper="0",
            low=-0.1,
            high=0.1,
            range_reason="0 ± 0.1 for finite width",
        )
    )
    out.append(
        Claim(
            experiment=NAME,
            claim="abs decorrelates δh̃ across blocks better than relu after training",
            source="paper: Sec. 8.3: φ′ decorrelates δh; sign completely, relu's step partially",
            quantity=f"lag-1 corr relu − abs, {_when(ds, end)}, {_where(ds)}",
            estimate=paired_interval(lag_relu.sel(step=end).values, lag_abs.sel(step=end).values),
            paper="relu partially, abs completely",
            **SIGN_ONLY,
        )
    )
    return out


def _family_claims(ds: xr.Dataset) -> list[Claim]:
    """Per-seed optimum over θ of gradient and feature diversity: at abs (θ = −45°)."""
    step = float(np.min(np.diff(np.sort(ds.theta.values.astype(float)))))
    steps = [int(t) for t in ds.step.values]
    early = [t for t in steps if _is_early(ds, t)] or steps[1:2]
    rows = (
        ("lag1", steps[-1], False, "gradient diversity (least lag-1 δh̃ correlation)",
         "paper: Sec. 8.3: φ′ = sign is the best decorrelator among homogeneous φ"),
        ("kappa", early[-1], True, "feature diversity (largest κ̂)",
         "paper: Sec. 8.3 and abstract: abs maximises feature diversity among homogeneous φ"),
    )  # fmt: skip
    out = []
    for var, t, maximize, text, source in rows:
        estimate, edge = family_optimum(ds, var, t, maximize=maximize)
        out.append(
            Claim(
                experiment=NAME,
                claim=f"family: {text} is best at abs (θ = −45°)",
                source=source,
                quantity=f"per-seed argopt over θ (degrees), {_when(ds, t)}, {_where(ds)}",
                estimate=estimate,
                paper="θ = −45°",
                low=ABS_THETA - step,
                high=ABS_THETA + step,
                range_reason="one θ grid step",
                undecided="optimum at the θ grid's edge for some seed" if edge else "",
            )
        )
    return out
