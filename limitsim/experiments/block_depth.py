"""Block depth 2: learning-rate shift with depth and block depth 1 vs 2 (Figs. 4, 5, 6, 21).

Finite resnets (post-nonlin, MS, frozen input/output layers; ``tp6-notes.md`` §1.5, §5) are
trained with Adam under Depth-µP on the bundled digits data, for every (φ, block depth k,
number of blocks L, log2 η, seed).  A block of depth 2 is
``x^l = x^{l-1} + a (L/8)^{-1/2} MS(φ(W^{l2} φ(W^{l1} z)))`` with both matrices updated at the
Θ(1/√L) Depth-µP rate (Sec. 9, eq. 6: "Θ(1) initialization, Θ(1/√L) learning rate").  Base
depth 8 as in the paper.  The plotted quantity is the paper's "LogLoss": the natural log of
the training loss averaged over the last ``window`` steps.

Each φ is run with the paper's pairing of architecture and multiplier (Fig. 6): ``relu``
without LayerNorm at log2 a = −2 (Figs. 4, 6 left, 21), ``abs`` with pre-LN at log2 a = −1
(Figs. 5, 6 right); see :data:`SETUPS`.  Blocks L run over ``depths`` for both block depths,
keeping ``k·L ≤ max_layers`` (the total number of hidden layers).  At most ``batch_size``
configurations train together (memory ≈ 3·k·L·n² float32 each with Adam: 0.8 GB at
k·L = 1024, n = 256).

Claims (``tp6-notes.md`` §5–6), per seed (:func:`~limitsim.experiments._common.optimum_trend`:
a parabola-refined optimum of each seed's curve, its slope against log2 L, Student-t intervals
over seeds), over the numbers of blocks L ≥ the base depth 8, where the paper states that
Depth-µP transfers (Fig. 10: flat from 2^6; below the base depth L/8 < 1):

- the control first: at block depth 1, Depth-µP transfers: the slope of the optimal log2 η
  lies in [−0.25, 0.25] (half the L^{-1/2} shift of a mis-scaled learning rate, as in
  :mod:`~limitsim.experiments.transfer`).  When the control is not reproduced, the two
  block-depth-2 shift rows are ``inconclusive (control failed)``;
- (Figs. 6, 21) at block depth 2 the optimal log2 η moves: its slope lies outside
  [−0.25, 0.25]; and it moves more than at block depth 1: the per-seed difference of the two
  slopes over the common L (paired: a seed's data order is shared) lies outside [−0.25, 0.25];
- (Figs. 4, 5, left) at equal total layers k·L, block depth 2 reaches a worse (higher)
  LogLoss early in training: per seed, the minimum over η at k = 2 minus that at k = 1,
  averaged over the common totals (the *gap*), of the LogLoss of the ``window`` steps before
  the early checkpoint ``round(early_fraction · steps)`` (the paper's step 10000:11000 of
  38000: ``early_fraction`` = 11/38), recorded in the same runs;
- (Fig. 4 right against Fig. 5 right) with longer training block depth 2 catches up for relu
  without LN: per seed, gap(end) − gap(early checkpoint) < 0 (sign only; the paper's gap
  closes to ≈ 0 by step 37k); but not for abs with LN: gap(end) > 0 (sign only; the paper's
  abs gap stays ≈ 0.5 at 2^10 layers).  Gaps are per seed (k = 1 and k = 2 share a seed's
  data order), and relu's change is paired over the two times of the same runs.
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
    SIGN_ONLY,
    TRANSFER_SLOPE,
    Context,
    OptimumTrend,
    optimum_trend,
    seed_axis,
    sweep,
)
from limitsim.experiments._digits import BASE_DEPTH, TRAINING, EtaGrid, train_points
from limitsim.experiments.profiles import log2_grid
from limitsim.plotting import depth_colors, errorbar_estimates, new_figure, save_figure
from limitsim.report import Claim
from limitsim.stats import Estimate, missing, paired_interval, t_interval

NAME = "block_depth"
TITLE = "Block depth 2: learning-rate shift with depth, block depth 1 vs 2 (Figs. 4-6, 21)"

#: φ → (pre-LN, log2 a): the paper's architecture/multiplier pairing of Fig. 6.
SETUPS: dict[str, tuple[bool, float]] = {"relu": (False, -2.0), "abs": (True, -1.0)}
#: What each φ's setup shows with longer training (Fig. 4 right: relu catches up; Fig. 5: abs
#: does not).
CATCHES_UP = {"relu": True, "abs": False}


@dataclass(frozen=True, kw_only=True)
class Sizes(EtaGrid):
    """Sizes of the block_depth experiment; the fields are read by :func:`run`."""

    phis: tuple[str, ...]
    max_layers: int
    batch_size: int
    early_fraction: float


#: tiny (tests), quick (2 cores, minutes) and paper (a cluster), each derived from the last.
TINY = Sizes(
    **TRAINING["tiny"],
    optimizer="adam",
    base_eta=0.1,
    phis=("relu",),
    depths=(8, 16),
    max_layers=32,
    log2_etas=(0.0, 1.0, 2.0),
    steps=4,
    batch_size=6,
    early_fraction=11 / 38,
)
QUICK = replace(
    TINY,
    **TRAINING["quick"],
    phis=("relu", "abs"),
    depths=(8, 16, 32),
    max_layers=64,
    log2_etas=log2_grid(-2.0, 7.0, 1.0),
    batch_size=20,
)
PAPER = replace(
    QUICK,
    **TRAINING["paper"],
    depths=(8, 16, 32, 64, 128, 256, 512, 1024),
    max_layers=2048,
    log2_etas=log2_grid(-3.0, 7.0),
    steps=5000,
    window=200,
    batch_size=4,
)
STANDARD = replace(
    QUICK, **TRAINING["standard"], depths=(8, 16, 32, 64, 128), max_layers=256, seeds=12
)
SIZES = {"tiny": TINY, "quick": QUICK, "standard": STANDARD, "paper": PAPER}


def early_step(steps: int, window: int, fraction: float) -> int:
    """The early checkpoint: ``round(fraction · steps)``, at least one ``window`` in."""
    return min(steps, max(window, round(fraction * steps)))


def run(sizes: Mapping[str, Any], context: Context | None = None) -> xr.Dataset:
    """The (φ, block depth, L, log2 η, seed) grid; cells with k·L > max_layers are NaN.

    ``log_loss`` is the LogLoss at the end of the run, ``log_loss_early`` that of the window
    before the early checkpoint (attr ``early_step``).
    """
    from limitsim.sweeps.grid import Grid

    keys = ("width", "steps", "batch", "task", "window", "optimizer", "base_eta", "max_layers")
    if int(sizes["seeds"]) < 2:
        raise ValueError(f"seeds must be >= 2 (standard errors over seeds), got {sizes['seeds']}")
    early = early_step(int(sizes["steps"]), int(sizes["window"]), float(sizes["early_fraction"]))
    parts = []
    for phi in sizes["phis"]:
        pre_ln, log2_a = SETUPS[phi]
        grid = Grid(
            axes={
                "block_depth": [1, 2],
                "depth": list(sizes["depths"]),
                "log2_eta": list(sizes["log2_etas"]),
                "seed": seed_axis(context, int(sizes["seeds"])),
            },
            filters=["block_depth * depth <= max_layers"],
            fixed={**{k: sizes[k] for k in keys}, "phi": phi, "pre_ln": pre_ln, "log2_a": log2_a,
                   "loss_checkpoints": (early,)},
        )  # fmt: skip
        ds = sweep(context, f"{NAME}_{phi}", train_points, grid, batch_axes=("log2_eta", "seed"),
                   batch_size=int(sizes["batch_size"]))  # fmt: skip
        ds = ds.assign(log_loss_early=ds.log_loss_at.isel(log_loss_at_dim0=0, drop=True))
        parts.append(ds[["log_loss", "log_loss_early"]].expand_dims(phi=[phi]))
    ds = xr.concat(parts, dim="phi")
    ds = ds.assign_coords(
        pre_ln=("phi", [SETUPS[p][0] for p in sizes["phis"]]),
        log2_a=("phi", [SETUPS[p][1] for p in sizes["phis"]]),
    )
    ds.attrs = {k: sizes[k] for k in keys} | {"early_step": early}
    return ds


def _curve(ds: xr.Dataset, phi: str, k: int, L: int, var: str = "log_loss") -> np.ndarray:
    """LogLoss (n_eta, n_seeds) of one (φ, block depth, L); ``var="log_loss_early"`` for the
    early checkpoint."""
    sel = ds[var].sel(phi=phi, block_depth=k, depth=L)
    return np.asarray(sel.transpose("log2_eta", "seed").values, dtype=np.float64)


def depths_run(ds: xr.Dataset, k: int) -> list[int]:
    """Numbers of blocks L run at block depth k (k·L ≤ max_layers)."""
    limit = int(ds.attrs["max_layers"])
    return [int(L) for L in ds.depth.values if k * int(L) <= limit]


def trend(ds: xr.Dataset, phi: str, k: int, depths: list[int] | None = None) -> OptimumTrend:
    """Per-seed optimal log2 η of block depth ``k`` at ``depths`` (default: all run)."""
    depths = depths_run(ds, k) if depths is None else depths
    table = np.stack([_curve(ds, phi, k, L) for L in depths])
    return optimum_trend(ds.log2_eta.values, table, depths)


def best_losses(ds: xr.Dataset, phi: str, k: int, L: int, var: str = "log_loss") -> np.ndarray:
    """Per-seed minimum over η of the LogLoss ``var``, shape (n_seeds,) (NaN if a seed diverged
    everywhere)."""
    curve = _curve(ds, phi, k, L, var)
    finite = np.isfinite(curve)
    return np.where(finite.any(axis=0), np.where(finite, curve, np.inf).min(axis=0), np.nan)


def gap_per_seed(ds: xr.Dataset, phi: str, var: str = "log_loss") -> tuple[np.ndarray, list[int]]:
    """Per seed, the mean over common total layers T of min LogLoss(k = 2, T/2) − (k = 1, T),
    shape (n_seeds,) (empty when no total is common), and the totals T."""
    ones, twos = set(depths_run(ds, 1)), depths_run(ds, 2)
    totals = [2 * L for L in twos if 2 * L in ones]
    if not totals:
        return np.array([]), totals
    diffs = [best_losses(ds, phi, 2, T // 2, var) - best_losses(ds, phi, 1, T, var) for T in totals]
    return np.mean(diffs, axis=0), totals


def gap(ds: xr.Dataset, phi: str, var: str = "log_loss") -> tuple[Estimate, list[int]]:
    """The gap (:func:`gap_per_seed`) with its t interval over seeds."""
    diffs, totals = gap_per_seed(ds, phi, var)
    return (t_interval(diffs) if totals else missing()), totals


def plot(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """Per φ: LogLoss vs log2 η per L (k = 2, k = 1), argmin vs L, min LogLoss vs total layers."""
    phis = [str(p) for p in ds.phi.values]
    colors = depth_colors([int(L) for L in ds.depth.values])
    x = ds.log2_eta.values
    base = ds.attrs.get("base_eta", "η0")
    fig, axes = new_figure(5, len(phis), width=3.0, height=2.6)
    for row, phi in enumerate(phis):
        setup = f"{phi}{', pre-LN' if SETUPS[phi][0] else ''}, log2 a = {SETUPS[phi][1]:g}"
        for col, k in enumerate((2, 1)):
            ax = axes[row, col]
            for L in depths_run(ds, k):
                curve = _curve(ds, phi, k, L)
                mean = curve.mean(axis=1)
                se = curve.std(axis=1, ddof=1) / math.sqrt(curve.shape[1])
                ax.plot(x, mean, "o-", ms=2.5, color=colors[L], label=f"L = {L}")
                ax.fill_between(x, mean - se, mean + se, color=colors[L], alpha=0.2)
            ax.set_title(f"block depth {k}: {setup}", fontsize=8)
            ax.set_xlabel(f"log2(η / {base})")
            ax.set_ylabel("log training loss (window)")
            ax.legend(fontsize=5, ncol=2)
        ax = axes[row, 2]
        for k, marker in ((1, "s"), (2, "o")):
            depths = depths_run(ds, k)
            errorbar_estimates(ax, np.log2(depths), trend(ds, phi, k).per_depth(),
                               marker=marker, label=f"block depth {k}")  # fmt: skip
        ax.set_title(f"optimal η vs blocks ({phi})", fontsize=8)
        ax.set_xlabel("log2 L (number of blocks)")
        ax.set_ylabel(f"argmin log2(η / {base})")
        ax.legend(fontsize=7)
        ax = axes[row, 3]
        for k, marker in ((1, "s"), (2, "o")):
            depths = depths_run(ds, k)
            best = [t_interval(best_losses(ds, phi, k, L)) for L in depths]
            errorbar_estimates(ax, np.log2([k * L for L in depths]), best, marker=marker,
                               label=f"block depth {k}")  # fmt: skip
        ax.set_title(f"min over η at equal total layers ({phi})", fontsize=8)
        ax.set_xlabel("log2(total hidden layers k·L)")
        ax.set_ylabel("min log training loss")
        ax.legend(fontsize=7)
        _plot_gap(axes[row, 4], ds, phi)
    fig.suptitle(
        f"{ds.attrs.get('task')}, width {ds.attrs.get('width')}, Depth-µP "
        f"{ds.attrs.get('optimizer')}, {ds.attrs.get('steps')} steps, base depth {BASE_DEPTH}; "
        "bands: ±1 SE over seeds; bars: 95% t intervals"
    )
    return save_figure(fig, out_dir, NAME)


def _plot_gap(ax: Any, ds: xr.Dataset, phi: str) -> None:
    """Figs. 4-5, early vs end: paired gap k = 2 − k = 1 per common total, 95% t intervals."""
    ones = depths_run(ds, 1)
    totals = [2 * L for L in depths_run(ds, 2) if 2 * L in ones]
    labels = (("log_loss_early", f"step {ds.attrs.get('early_step')}", "s"),
              ("log_loss", f"step {ds.attrs.get('steps')} (end)", "o"))  # fmt: skip
    for var, label, marker in labels:
        rows = [paired_interval(best_losses(ds, phi, 2, T // 2, var),
                                best_losses(ds, phi, 1, T, var)) for T in totals]  # fmt: skip
        errorbar_estimates(ax, np.log2(totals), rows, marker=marker, label=label)
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_title(f"gap k = 2 − k = 1 over training ({phi}; Figs. 4-5)", fontsize=8)
    ax.set_xlabel("log2(total hidden layers k·L)")
    ax.set_ylabel("min LogLoss(k = 2) − (k = 1), paired")
    ax.legend(fontsize=7)


def claims(ds: xr.Dataset) -> list[Claim]:
    """Per φ: the control, the block-depth-2 shift, its excess over k = 1, the equal-layer gap."""
    out = []
    for phi in (str(p) for p in ds.phi.values):
        setup = f"{phi}{', pre-LN' if SETUPS[phi][0] else ''}, log2 a = {SETUPS[phi][1]:g}"
        regime = f"{setup}, Adam, {ds.attrs.get('steps')} steps"
        control = _control(ds, phi, regime)
        failed = "" if control.verdict == "reproduced" else "control failed"
        early = f"step {ds.attrs.get('early_step')} of {ds.attrs.get('steps')}"
        out += [
            control,
            *_shift_claims(ds, phi, regime, failed),
            _early_gap(ds, phi, setup, early),
            _catch_up(ds, phi, setup, early),
        ]
    return out


def _control(ds: xr.Dataset, phi: str, regime: str) -> Claim:
    """Block depth 1 transfers the optimal η (Fig. 10 top): the control of the shift claims."""
    one = trend(ds, phi, 1)
    return Claim(
        experiment=NAME,
        claim=f"control: block depth 1 transfers the optimal η ({phi})",
        source="paper: Fig. 10 top (Depth-µP transfers at block depth 1); the control of "
        "Figs. 6, 21",
        quantity=f"slope of optimal log2 η vs log2 L, k = 1, L = "
        f"{depths_run(ds, 1)[0]}..{depths_run(ds, 1)[-1]}, {regime}",
        estimate=one.slope,
        paper="flat",
        low=-TRANSFER_SLOPE,
        high=TRANSFER_SLOPE,
        range_reason="±0.25: half an L^-1/2 shift (theory)",
        undecided=one.undecided("η", depths_run(ds, 1)),
    )


def _shift_claims(ds: xr.Dataset, phi: str, regime: str, failed: str) -> list[Claim]:
    """Block depth 2 moves the optimal η, and more than block depth 1 (paired over seeds)."""
    two = trend(ds, phi, 2)
    common = [L for L in depths_run(ds, 2) if L in depths_run(ds, 1)]
    paired = [trend(ds, phi, k, common).slopes for k in (2, 1)]
    return [
        Claim(
            experiment=NAME,
            claim=f"block depth 2: the optimal η moves with depth ({phi})",
            source="paper: Figs. 6, 21: significant learning-rate shift at block depth 2",
            quantity=f"slope of optimal log2 η vs log2 L, k = 2, L = "
            f"{depths_run(ds, 2)[0]}..{depths_run(ds, 2)[-1]} blocks, {regime}",
            estimate=two.slope,
            paper="shifts",
            low=-TRANSFER_SLOPE,
            high=TRANSFER_SLOPE,
            outside=True,
            range_reason="outside ±0.25: half an L^-1/2 shift (theory)",
            undecided=failed or two.undecided("η", depths_run(ds, 2)),
        ),
        Claim(
            experiment=NAME,
            claim=f"block depth 2 shifts more than block depth 1 ({phi})",
            source="paper: Sec. 9: k = 1 transfers, k = 2 does not (Figs. 6, 10, 21)",
            quantity=f"slope(k = 2) − slope(k = 1), paired over seeds, L = "
            f"{common[0]}..{common[-1]}, {regime}",
            estimate=paired_interval(paired[0], paired[1]),
            paper="k = 2 shifts, k = 1 does not",
            low=-TRANSFER_SLOPE,
            high=TRANSFER_SLOPE,
            outside=True,
            range_reason="outside ±0.25 (theory)",
            undecided=failed,
        ),
    ]


def _early_gap(ds: xr.Dataset, phi: str, setup: str, early: str) -> Claim:
    """At equal total layers k·L, block depth 2 trains worse early (Figs. 4, 5 left)."""
    value, totals = gap(ds, phi, "log_loss_early")
    return Claim(
        experiment=NAME,
        claim=f"at equal total layers block depth 2 trains worse early ({phi})",
        source="paper: "
        + (
            "Fig. 4 left: relu, no LN: worse at step 10000:11000"
            if phi == "relu"
            else "Fig. 5 left: abs with LN: worse at step 10000:11000"
        ),
        quantity=f"LogLoss(k = 2) − LogLoss(k = 1), per-seed min over η, mean over "
        f"k·L ∈ {totals}, window before {early}, {setup}, Adam",
        estimate=value,
        paper="> 0",
        **SIGN_ONLY,
    )


def _catch_up(ds: xr.Dataset, phi: str, setup: str, early: str) -> Claim:
    """Fig. 4 right vs Fig. 5: relu's gap shrinks by the end; abs's gap is still > 0."""
    late, totals = gap_per_seed(ds, phi)
    start, _ = gap_per_seed(ds, phi, "log_loss_early")
    where = f"k·L ∈ {totals}, {setup}, Adam"
    if CATCHES_UP.get(phi, True):
        return Claim(
            experiment=NAME,
            claim=f"with longer training block depth 2 catches up with block depth 1 ({phi})",
            source="paper: Fig. 4 right vs left: relu without LN: the gap at step 10k closes "
            "by 37000:38000",
            quantity=f"gap(end, step {ds.attrs.get('steps')}) − gap({early}), gap = "
            f"per-seed min LogLoss(k = 2) − (k = 1), paired over seeds, {where}",
            estimate=paired_interval(late, start) if totals else missing(),
            paper="worse at 10k, equal (≈ −3.5) at 37k",
            low=-math.inf,
            high=0.0,
            range_reason="sign only: the gap shrinks",
        )
    return Claim(
        experiment=NAME,
        claim=f"with longer training block depth 2 still trains worse ({phi})",
        source="paper: Fig. 5 right (vs Fig. 4 right): abs with LN: the gap persists at "
        "37000:38000 (≈ 0.5 at 2^10 layers)",
        quantity=f"gap at the end (step {ds.attrs.get('steps')}), gap = per-seed min LogLoss"
        f"(k = 2) − (k = 1), {where}",
        estimate=t_interval(late) if totals else missing(),
        paper="≈ 0.5",
        **SIGN_ONLY,
    )
