"""Block depth 2: (η, a) heatmaps and the slope of the optimal sublevel set (Fig. 7).

Block-depth-2 resnets with abs and pre-LN (the setup of Fig. 7) are trained with Adam under
Depth-µP on the bundled digits data over a grid of (log2 η, log2 a) at a few numbers of
blocks L (same model and point function as :mod:`~limitsim.experiments.block_depth`).  The
heatmap is the seed-mean LogLoss (natural log of the training loss averaged over the last
``window`` steps).

**Slope of the optimal sublevel set** (Sec. 9.2; ``tp6-notes.md`` §5).  If the two layers of
a block interact multiplicatively, performance depends on a·η² (Adam: each update is ∝ η,
the block output ∝ a), so the valley of good (η, a) has slope d log2 a / d log2 η = −2; if
the block is linearised (kernel regime within the block, at many blocks) it depends on a·η
and the slope is −1.  The paper reads −2 at 2^1 blocks and −1 at 2^10.  We measure it as:

1. ``ℓ`` = seed-mean LogLoss on the grid; a cell where any seed diverged is excluded;
2. weights ``w = max(0, 1 − (ℓ − ℓ_min)/δ)``: the δ-sublevel set {ℓ ≤ ℓ_min + δ}, tapered
   linearly to 0 at its boundary so that the estimate moves continuously with the data.
   δ = 1 by default: the cells whose loss is within a factor e of the best;
3. the principal axis (eigenvector of the largest eigenvalue of the w-weighted covariance of
   the cells' (log2 η, log2 a)); the slope is its d log2 a / d log2 η (NaN with fewer than 3
   cells in the set).

Both axes are in log2 units, so the principal axis is the valley's direction whatever the grid
steps.  The grid should contain the valley: a set cut by the grid edge biases the slope.  The
95% interval is a percentile bootstrap over seeds (:func:`limitsim.stats.bootstrap_interval`,
``n_boot`` draws, at least 8 seeds): each draw resamples whole seeds, recomputes the seed-mean
heatmap and its slope; the difference of the slopes at the two depths resamples the same seeds
at both (paired).

Claims and accepted ranges: the paper reads −2 at 2^1 blocks and −1 at 2^10; −2 and −1 are the
two interaction laws above, so the accepted ranges are these values ± 0.5, half the distance
between them; the flattening is judged by its sign.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from limitsim.experiments._common import SIGN_ONLY, Context, seed_axis, sweep
from limitsim.experiments._digits import BASE_DEPTH, TRAINING, EtaGrid, train_points
from limitsim.experiments.profiles import log2_grid
from limitsim.plotting import new_figure, save_figure
from limitsim.report import Claim
from limitsim.stats import Estimate, bootstrap_interval

NAME = "block_heatmap"
TITLE = "Block depth 2: (η, a) heatmaps and the optimal sublevel slope (Fig. 7)"


@dataclass(frozen=True, kw_only=True)
class Sizes(EtaGrid):
    """Sizes of the block_heatmap experiment; the fields are read by :func:`run`."""

    phi: str
    pre_ln: bool
    delta: float
    n_boot: int
    log2_as: tuple[float, ...]
    batch_size: int


#: tiny (tests), quick (2 cores, minutes) and paper (a cluster), each derived from the last.
TINY = Sizes(
    **TRAINING["tiny"],
    phi="abs",
    pre_ln=True,
    optimizer="adam",
    base_eta=0.1,
    delta=1.0,
    n_boot=400,
    depths=(2, 4),
    log2_etas=(0.0, 1.0, 2.0),
    log2_as=(-1.0, 0.0, 1.0),
    steps=4,
    batch_size=18,
)
QUICK = replace(
    TINY,
    **TRAINING["quick"],
    depths=(2, 16),
    log2_etas=log2_grid(-2.0, 4.0, 1.0),
    log2_as=log2_grid(-4.0, 2.0, 1.0),
    batch_size=25,
)
PAPER = replace(
    QUICK,
    **TRAINING["paper"],
    depths=(2, 16, 1024),
    log2_etas=log2_grid(-3.0, 5.0),
    log2_as=log2_grid(-6.0, 4.0),
    steps=5000,
    window=200,
    batch_size=4,
)
STANDARD = replace(QUICK, **TRAINING["standard"], depths=(2, 64), seeds=12)
SIZES = {"tiny": TINY, "quick": QUICK, "standard": STANDARD, "paper": PAPER}


def run(sizes: Mapping[str, Any], context: Context | None = None) -> xr.Dataset:
    """The (L, log2 a, log2 η, seed) grid of block-depth-2 runs."""
    from limitsim.sweeps.grid import Grid

    keys = ("phi", "pre_ln", "width", "steps", "batch", "task", "window", "optimizer", "base_eta")
    if int(sizes["seeds"]) < 2:
        raise ValueError(f"seeds must be >= 2 (standard errors over seeds), got {sizes['seeds']}")
    grid = Grid(
        axes={
            "depth": list(sizes["depths"]),
            "log2_a": list(sizes["log2_as"]),
            "log2_eta": list(sizes["log2_etas"]),
            "seed": seed_axis(context, int(sizes["seeds"])),
        },
        fixed={**{k: sizes[k] for k in keys}, "block_depth": 2},
    )
    ds = sweep(
        context,
        NAME,
        train_points,
        grid,
        batch_axes=("log2_a", "log2_eta", "seed"),
        batch_size=int(sizes["batch_size"]),
    )
    ds = ds[["log_loss"]]
    ds.attrs = {
        **{k: sizes[k] for k in keys if k != "pre_ln"},
        "pre_ln": int(sizes["pre_ln"]),
        "delta": float(sizes["delta"]),
        "n_boot": int(sizes["n_boot"]),
    }
    return ds


def sublevel_axis(
    log2_eta: np.ndarray, log2_a: np.ndarray, loss: np.ndarray, delta: float
) -> tuple[float, np.ndarray]:
    """Slope and weighted centroid of the δ-sublevel set's principal axis.

    Parameters
    ----------
    log2_eta : ndarray, shape (n_eta,)
    log2_a : ndarray, shape (n_a,)
    loss : ndarray, shape (n_a, n_eta)
        LogLoss per cell; NaN cells (diverged) are outside the set.
    delta : float
        Width δ of the sublevel set (LogLoss units).

    Returns
    -------
    slope : float
        d log2 a / d log2 η of the principal axis (module docstring); ±inf for a vertical
        axis, NaN with fewer than 3 cells or an isotropic set.
    centroid : ndarray, shape (2,)
        Weighted mean (log2 η, log2 a) of the set.
    """
    finite = np.isfinite(loss)
    if not finite.any():
        return math.nan, np.full(2, np.nan)
    lmin = float(loss[finite].min())
    w = np.where(finite, np.clip(1.0 - (np.where(finite, loss, 0.0) - lmin) / delta, 0, 1), 0)
    A, E = np.meshgrid(log2_a, log2_eta, indexing="ij")
    mask = w > 0
    pts = np.stack([E[mask], A[mask]], axis=1)
    ww = w[mask]
    centroid = ww @ pts / ww.sum()
    if mask.sum() < 3:
        return math.nan, centroid
    d = pts - centroid
    cov = (ww[:, None] * d).T @ d / ww.sum()
    values, vectors = np.linalg.eigh(cov)
    if values[1] - values[0] <= 1e-12 * max(values[1], 1e-300):
        return math.nan, centroid
    v = vectors[:, 1]
    slope = math.copysign(math.inf, v[1] * v[0]) if v[0] == 0 else float(v[1] / v[0])
    return slope, centroid


def _cube(ds: xr.Dataset, L: int) -> np.ndarray:
    """LogLoss at L blocks, shape (n_seeds, n_a, n_eta)."""
    return np.asarray(ds.log_loss.sel(depth=L).transpose("seed", "log2_a", "log2_eta").values)


def _seed_mean(cube: np.ndarray) -> np.ndarray:
    """Seed-mean heatmap (n_a, n_eta) of a (seeds, n_a, n_eta) cube; NaN where any seed
    diverged."""
    ok = np.all(np.isfinite(cube), axis=0)
    return np.where(ok, np.where(ok[None], cube, 0.0).mean(axis=0), np.nan)


def slope_fit(ds: xr.Dataset, L: int) -> Estimate:
    """Sublevel slope at L blocks with its bootstrap interval over seeds (module docstring)."""
    x, y, delta = ds.log2_eta.values, ds.log2_a.values, float(ds.attrs["delta"])
    return bootstrap_interval(
        _cube(ds, L),
        lambda c: sublevel_axis(x, y, _seed_mean(c), delta)[0],
        n_boot=int(ds.attrs["n_boot"]),
        seed=L,
    )


def slope_change(ds: xr.Dataset, lo: int, hi: int) -> Estimate:
    """slope(hi) − slope(lo), bootstrapping the same seeds at both depths."""
    x, y, delta = ds.log2_eta.values, ds.log2_a.values, float(ds.attrs["delta"])
    both = np.stack([_cube(ds, lo), _cube(ds, hi)], axis=1)  # (seeds, 2, n_a, n_eta)

    def change(c: np.ndarray) -> float:
        s_lo, s_hi = (sublevel_axis(x, y, _seed_mean(c[:, i]), delta)[0] for i in (0, 1))
        return s_hi - s_lo

    return bootstrap_interval(both, change, n_boot=int(ds.attrs["n_boot"]), seed=hi)


def plot(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """One heatmap per L with the δ-sublevel contour, the fitted axis and slope −1/−2 guides."""
    depths = [int(L) for L in ds.depth.values]
    x, y, delta = ds.log2_eta.values, ds.log2_a.values, float(ds.attrs["delta"])
    means = {L: _seed_mean(_cube(ds, L)) for L in depths}
    finite = np.concatenate([m[np.isfinite(m)] for m in means.values()] + [np.zeros(1)])
    vmin, vmax = float(finite.min()), float(finite.max())
    fig, axes = new_figure(len(depths), 1, width=3.6, height=3.2)
    mesh = None
    for ax, L in zip(axes[0], depths, strict=True):
        mean = means[L]
        mesh = ax.pcolormesh(x, y, np.ma.masked_invalid(mean), vmin=vmin, vmax=vmax,
                             cmap="magma", shading="nearest")  # fmt: skip
        ax.set_facecolor("0.8")  # diverged cells
        slope, centroid = sublevel_axis(x, y, mean, delta)
        if np.isfinite(mean).any():
            ax.contour(x, y, np.where(np.isfinite(mean), mean, vmax + 1),
                       levels=[np.nanmin(mean) + delta], colors="white", linewidths=1.0,
                       linestyles="solid")  # fmt: skip
            j = np.unravel_index(np.nanargmin(mean), mean.shape)
            ax.plot(x[j[1]], y[j[0]], "*", color="cyan", ms=9)
        if math.isfinite(slope):
            t = np.linspace(x.min(), x.max(), 50)
            for s, style, color, label in ((slope, "-", "cyan", f"fit: {slope:.2f}"),
                                           (-2.0, ":", "white", "−2"),
                                           (-1.0, "--", "white", "−1")):  # fmt: skip
                line = centroid[1] + s * (t - centroid[0])
                keep = (line >= y.min()) & (line <= y.max())
                ax.plot(t[keep], line[keep], style, color=color, lw=1.2, label=f"slope {label}")
            ax.legend(fontsize=6, loc="lower left", facecolor="0.3", labelcolor="white")
        ax.set_title(f"L = {L} blocks (block depth 2)")
        ax.set_xlabel(f"log2(η / {ds.attrs.get('base_eta')})")
        ax.set_ylabel("log2 a (branch multiplier)")
        ax.grid(False)
    if mesh is not None:
        fig.colorbar(mesh, ax=axes[0, -1], label="log training loss (window, seed mean)")
    fig.suptitle(
        f"{ds.attrs.get('phi')}{' + pre-LN' if ds.attrs.get('pre_ln') else ''}, "
        f"{ds.attrs.get('optimizer')} Depth-µP, width {ds.attrs.get('width')}, "
        f"{ds.attrs.get('steps')} steps, base depth {BASE_DEPTH}\n"
        f"white contour: ℓ_min + δ (δ = {delta:g}); star: minimum; grey: diverged",
        fontsize=9,
    )
    return save_figure(fig, out_dir, NAME)


#: The sublevel slope at the fewest and at the most blocks (Fig. 7, Sec. 9.2): who, how η and
#: a interact, the slope, the paper's number of blocks, and the law half-way to which the
#: accepted range (slope ± 0.5) reaches.
SLOPE_LAWS = (
    ("few blocks", "multiplicatively", -2, "2^1", "additive"),
    ("many blocks", "additively", -1, "2^10", "multiplicative"),
)


def claims(ds: xr.Dataset) -> list[Claim]:
    """Slope ≈ −2 at the fewest blocks, ≈ −1 at the most, and its increase with L."""
    depths = [int(L) for L in ds.depth.values]
    lo, hi = depths[0], depths[-1]
    quantity = (
        "slope d log2 a / d log2 η of the δ-sublevel principal axis, abs + pre-LN, Adam, "
        f"{ds.attrs.get('steps')} steps"
    )
    laws = [
        Claim(
            experiment=NAME,
            claim=f"{who}: η and a interact {how}",
            source=f"paper: Fig. 7 and Sec. 9.2: sublevel slope ≈ −{-slope} at {blocks} blocks",
            quantity=f"{quantity}, L = {L}",
            estimate=slope_fit(ds, L),
            paper=f"≈ −{-slope} at {blocks} blocks",
            low=slope - 0.5,
            high=slope + 0.5,
            range_reason=f"−{-slope} ± 0.5, half-way to the {other} law",
        )
        for L, (who, how, slope, blocks, other) in zip((lo, hi), SLOPE_LAWS, strict=True)
    ]
    return [
        *laws,
        Claim(
            experiment=NAME,
            claim="the sublevel slope flattens as blocks are added",
            source="paper: Fig. 7: the slope goes from −2 (2^1 blocks) to −1 (2^10)",
            quantity=f"slope(L = {hi}) − slope(L = {lo}), same seeds, {quantity}",
            estimate=slope_change(ds, lo, hi),
            paper="≈ +1 from 2^1 to 2^10 blocks",
            **SIGN_ONLY,
        ),
    ]
