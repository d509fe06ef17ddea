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

Claims (``tp6-notes.md`` §5–6):

- (Figs. 6, 21) with block depth 2 the optimal log2 η moves with L: the shift between the
  smallest and the largest L run at block depth 2 (parabola-refined argmin of the seed-mean
  curve, bootstrap SE over seeds, as in :mod:`~limitsim.experiments.transfer`) is at least
  0.5 (one step of the paper's grid), and exceeds the shift of block depth 1 at the same L
  (the control) by at least 0.5;
- (Figs. 4, 5) at equal total layers k·L, block depth 2 reaches a worse (higher) minimum over
  η of the LogLoss: the mean over the common total-layer counts of
  ``min_η LogLoss(k = 2) − min_η LogLoss(k = 1)`` is positive.  Each minimum's SE is the seed
  standard error at its grid point.  The paper sees this gap for relu without LN only early in
  training (Fig. 4: it closes by step 37k), and for abs with LN throughout (Fig. 5).
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

NAME = "block_depth"
TITLE = "Block depth 2: learning-rate shift with depth, block depth 1 vs 2 (Figs. 4-6, 21)"

#: φ → (pre-LN, log2 a): the paper's architecture/multiplier pairing of Fig. 6.
SETUPS: dict[str, tuple[bool, float]] = {"relu": (False, -2.0), "abs": (True, -1.0)}
BASE_DEPTH = 8
_SHARED = {"seeds": 2, "task": "digits", "optimizer": "adam", "base_eta": 0.1}

#: Sizes per profile: tiny (tests), quick (2 cores, minutes), paper (a cluster).
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        **_SHARED,
        "phis": ("relu",),
        "depths": (2, 4),
        "max_layers": 8,
        "log2_etas": (0.0, 1.0, 2.0),
        "width": 16,
        "steps": 4,
        "batch": 8,
        "window": 2,
        "batch_size": 6,
    },
    "quick": {
        **_SHARED,
        "phis": ("relu", "abs"),
        "depths": (2, 4, 8, 16, 32, 64),
        "max_layers": 64,
        "log2_etas": (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0),
        "width": 64,
        "steps": 200,
        "batch": 32,
        "window": 20,
        "batch_size": 20,
    },
    "paper": {
        **_SHARED,
        "phis": ("relu", "abs"),
        "depths": (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
        "max_layers": 1024,
        "log2_etas": tuple(np.arange(-3.0, 7.01, 0.5).round(1).tolist()),
        "seeds": 5,
        "width": 256,
        "steps": 5000,
        "batch": 64,
        "window": 200,
        "batch_size": 4,
    },
}


def train_points(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Train the points of one architecture together (sweep function).

    Every point has ``phi``, ``pre_ln``, ``block_depth``, ``depth``, ``width``, ``log2_eta``,
    ``log2_a``, ``seed``, ``base_eta``, ``optimizer`` and the task keys of
    :func:`~limitsim.experiments._common.make_task`; the points of one call share all but
    ``log2_eta``, ``log2_a`` and ``seed``.  Returns ``log_loss`` (log of the mean training
    loss over the last ``window`` steps) per point.
    """
    from limitsim.finite import train_finite_batch

    first = points[0]
    params = [
        preset(
            "depth_mup",
            eta=float(first["base_eta"]) * 2.0 ** float(p["log2_eta"]),
            a=2.0 ** float(p["log2_a"]),
            optimizer=str(first["optimizer"]),
            base_depth=BASE_DEPTH,
        )
        for p in points
    ]
    runs = train_finite_batch(
        make_task(first),
        params,
        depth=int(first["depth"]),
        width=int(first["width"]),
        phi=str(first["phi"]),
        seeds=[int(p["seed"]) for p in points],
        block_depth=int(first["block_depth"]),
        pre_ln=bool(first["pre_ln"]),
        dtype="float32",
        eval_every=0,
        blas_threads=1,
    )
    window = int(first["window"])
    out = []
    for run in runs:
        value = math.nan if run.diverged else math.log(float(np.mean(run.loss[-window:])))
        out.append({"log_loss": value, "diverged": bool(run.diverged)})
    return out


def run(sizes: dict[str, Any], context: Context | None = None) -> xr.Dataset:
    """The (φ, block depth, L, log2 η, seed) grid; cells with k·L > max_layers are NaN."""
    from limitsim.grid import Grid

    keys = ("width", "steps", "batch", "task", "window", "optimizer", "base_eta", "max_layers")
    if int(sizes["seeds"]) < 2:
        raise ValueError(f"seeds must be >= 2 (standard errors over seeds), got {sizes['seeds']}")
    parts = []
    for phi in sizes["phis"]:
        pre_ln, log2_a = SETUPS[phi]
        grid = Grid(
            axes={
                "block_depth": [1, 2],
                "depth": list(sizes["depths"]),
                "log2_eta": list(sizes["log2_etas"]),
                "seed": list(range(int(sizes["seeds"]))),
            },
            filters=["block_depth * depth <= max_layers"],
            fixed={**{k: sizes[k] for k in keys}, "phi": phi, "pre_ln": pre_ln, "log2_a": log2_a},
        )
        ds = sweep(context, f"{NAME}_{phi}", train_points, grid, batch_axes=("log2_eta", "seed"),
                   batch_size=int(sizes["batch_size"]))  # fmt: skip
        parts.append(ds[["log_loss"]].expand_dims(phi=[phi]))
    ds = xr.concat(parts, dim="phi")
    ds = ds.assign_coords(
        pre_ln=("phi", [SETUPS[p][0] for p in sizes["phis"]]),
        log2_a=("phi", [SETUPS[p][1] for p in sizes["phis"]]),
    )
    ds.attrs = {k: sizes[k] for k in keys}
    return ds


def _curve(ds: xr.Dataset, phi: str, k: int, L: int) -> np.ndarray:
    """LogLoss (n_eta, n_seeds) of one (φ, block depth, L)."""
    sel = ds.log_loss.sel(phi=phi, block_depth=k, depth=L)
    return np.asarray(sel.transpose("log2_eta", "seed").values, dtype=np.float64)


def depths_run(ds: xr.Dataset, k: int) -> list[int]:
    """Numbers of blocks L run at block depth k (k·L ≤ max_layers)."""
    limit = int(ds.attrs["max_layers"])
    return [int(L) for L in ds.depth.values if k * int(L) <= limit]


def optimum(ds: xr.Dataset, phi: str, k: int, L: int) -> tuple[float, float]:
    """(argmin log2 η, bootstrap SE over seeds) of one curve."""
    return bootstrap_argmin(ds.log2_eta.values, _curve(ds, phi, k, L))


def best_loss(ds: xr.Dataset, phi: str, k: int, L: int) -> tuple[float, float]:
    """Minimum over η of the seed-mean LogLoss and its seed SE at that η (NaN if all diverged).

    A grid point where any seed diverged counts as diverged.
    """
    curve = _curve(ds, phi, k, L)
    mean = np.where(np.all(np.isfinite(curve), axis=1), curve.mean(axis=1), np.nan)
    if not np.isfinite(mean).any():
        return math.nan, math.nan
    j = int(np.nanargmin(mean))
    seeds = curve.shape[1]
    se = float(np.std(curve[j], ddof=1) / math.sqrt(seeds)) if seeds > 1 else math.nan
    return float(mean[j]), se


def shift(ds: xr.Dataset, phi: str, k: int) -> tuple[float, float, int, int]:
    """|Δ argmin log2 η| from the smallest to the largest L run at block depth 2, its SE, L's."""
    depths = depths_run(ds, 2)
    lo, hi = depths[0], depths[-1]
    (b_lo, se_lo), (b_hi, se_hi) = optimum(ds, phi, k, lo), optimum(ds, phi, k, hi)
    return abs(b_hi - b_lo), math.hypot(se_lo, se_hi), lo, hi


def gap(ds: xr.Dataset, phi: str) -> tuple[float, float, list[int]]:
    """Mean over common total layers T of min LogLoss(k = 2, L = T/2) − min LogLoss(k = 1, T)."""
    ones, twos = set(depths_run(ds, 1)), depths_run(ds, 2)
    totals = [2 * L for L in twos if 2 * L in ones]
    diffs, variances = [], []
    for total in totals:
        (v2, s2), (v1, s1) = best_loss(ds, phi, 2, total // 2), best_loss(ds, phi, 1, total)
        diffs.append(v2 - v1)
        variances.append(s1**2 + s2**2)
    if not totals:
        return math.nan, math.nan, totals
    return float(np.mean(diffs)), math.sqrt(sum(variances)) / len(totals), totals


def plot(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """Per φ: LogLoss vs log2 η per L (k = 2, k = 1), argmin vs L, min LogLoss vs total layers."""
    phis = [str(p) for p in ds.phi.values]
    colors = depth_colors([int(L) for L in ds.depth.values])
    x = ds.log2_eta.values
    base = ds.attrs.get("base_eta", "η0")
    fig, axes = new_figure(4, len(phis), width=3.0, height=2.6)
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
            best = [optimum(ds, phi, k, L) for L in depths]
            ax.errorbar(np.log2(depths), [b[0] for b in best], yerr=[b[1] for b in best],
                        marker=marker, capsize=2, label=f"block depth {k}")  # fmt: skip
        ax.set_title(f"optimal η vs blocks ({phi})", fontsize=8)
        ax.set_xlabel("log2 L (number of blocks)")
        ax.set_ylabel(f"argmin log2(η / {base})")
        ax.legend(fontsize=7)
        ax = axes[row, 3]
        for k, marker in ((1, "s"), (2, "o")):
            depths = depths_run(ds, k)
            best = [best_loss(ds, phi, k, L) for L in depths]
            ax.errorbar(np.log2([k * L for L in depths]), [b[0] for b in best],
                        yerr=[b[1] for b in best], marker=marker, capsize=2,
                        label=f"block depth {k}")  # fmt: skip
        ax.set_title(f"min over η at equal total layers ({phi})", fontsize=8)
        ax.set_xlabel("log2(total hidden layers k·L)")
        ax.set_ylabel("min log training loss")
        ax.legend(fontsize=7)
    fig.suptitle(
        f"{ds.attrs.get('task')}, width {ds.attrs.get('width')}, Depth-µP "
        f"{ds.attrs.get('optimizer')}, {ds.attrs.get('steps')} steps, base depth {BASE_DEPTH}; "
        "bands and bars: ±1 SE over seeds"
    )
    return save_figure(fig, out_dir, NAME)


def claims(ds: xr.Dataset) -> list[Claim]:
    """Per φ: the block-depth-2 shift, its excess over block depth 1, the equal-layer gap."""
    out = []
    for phi in (str(p) for p in ds.phi.values):
        s2, se2, lo, hi = shift(ds, phi, 2)
        s1, se1, _, _ = shift(ds, phi, 1)
        out.append(Claim(
            NAME,
            f"block depth 2, Depth-µP ({phi}): the optimal η shifts with depth (Figs. 6, 21)",
            f"shift of argmin log2 η (absolute), L = {lo} → {hi} blocks",
            s2, se2, "significant shift (Fig. 21: L = 2^1..2^10)", 0.5, math.inf,
        ))  # fmt: skip
        out.append(Claim(
            NAME,
            f"block depth 2 shifts more than block depth 1 ({phi}; Sec. 9)",
            f"shift(k=2) − shift(k=1), L = {lo} → {hi}; shift(k=1) = {s1:.2f} ± {se1:.2f}",
            s2 - s1, math.hypot(se1, se2), "k = 1 transfers, k = 2 does not", 0.5, math.inf,
        ))  # fmt: skip
        value, se, totals = gap(ds, phi)
        paper = (
            "Fig. 4: worse at step 10k, catches up by 37k"
            if phi == "relu"
            else "Fig. 5: ≈ 0.5 worse at 2^10 layers"
        )
        out.append(Claim(
            NAME,
            f"at equal total layers block depth 2 is worse ({phi}; Figs. 4, 5)",
            f"mean min-LogLoss(k=2) − min-LogLoss(k=1) over k·L ∈ {totals}",
            value, se, paper, 0.0, math.inf,
        ))  # fmt: skip
    return out
