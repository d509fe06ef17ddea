"""Post- vs pre-nonlin blocks across depth (the paper's Fig. 2, Sec. 8.2).

Finite Depth-µP resnets (relu, Adam as in the paper, frozen input/output layers, base depth 8)
are trained on the bundled digits data with the two block types of :func:`limitsim.train_finite`:

- post-nonlin: ``x^l = x^{l-1} + a (L/8)^-1/2 MS(φ(W^l x^{l-1}))`` (the paper's main model);
- pre-nonlin: ``x^l = x^{l-1} + a (L/8)^-1/2 W^l φ(x^{l-1})`` (no MS).

For every (block, depth, log2 η, seed) the paper's "LogLoss" (natural log of the training loss
averaged over the last ``window`` steps) is recorded; the figure shows LogLoss vs log2 η per
depth for each block (Fig. 2 left) and the minimum over η of the seed-mean LogLoss vs depth
(Fig. 2 right; the paper also minimises over a, we keep a fixed).  Its standard error is that of
the seed mean at the minimising η.

Claims (Sec. 8.2): under Depth-µP the pre-nonlin block still transfers the learning rate
(Fig. 2 left: the optimum sits at log2(η/1e-3) ≈ −3 at every depth): the signed slope of the
per-seed optimal log2 η against log2 L (:func:`~limitsim.experiments._common.optimum_trend`,
Student-t over seeds) lies in [−0.25, 0.25], half the L^{-1/2} shift of a mis-scaled rate, as
in :mod:`~limitsim.experiments.transfer`; undecided when more than 10% of the per-seed optima
sit at the η grid's edge.  With pre-nonlin blocks depth gives no gain beyond about L = 8 and
the loss is far worse than post-nonlin.  Measured: the gap pre − post of the minimal LogLoss at the
largest depth (> 0), the gain of post-nonlin from L = 8 to the largest depth (> 0: post keeps
improving), and the difference of the two gains, post − pre (> 0: pre plateaus earlier).
"""

from __future__ import annotations

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
)
from limitsim.experiments._digits import (
    BASE_DEPTH,
    TRAINING,
    EtaGrid,
    edge_fraction,
    per_seed_min,
    sweep_digits,
)
from limitsim.experiments._plots import plot_optima, plot_seed_mean
from limitsim.experiments.profiles import log2_grid
from limitsim.plotting import depth_colors, errorbar_estimates, new_figure, save_figure
from limitsim.report import Claim
from limitsim.stats import Estimate, paired_interval, t_interval

NAME = "prenonlin"
TITLE = "Post- vs pre-nonlin blocks: min LogLoss vs depth (Fig. 2)"


@dataclass(frozen=True, kw_only=True)
class Sizes(EtaGrid):
    """Sizes of the prenonlin experiment; the fields are read by :func:`run`."""

    blocks: tuple[str, ...]
    phi: str
    log2_a: float


#: tiny (tests), quick (2 cores, minutes) and paper (a cluster), each derived from the last.
TINY = Sizes(
    **TRAINING["tiny"],
    blocks=("post", "pre"),
    depths=(4, 8, 16),
    log2_etas=(-1.0, 0.0),
    phi="relu",
    steps=6,
    log2_a=0.0,
    base_eta=0.1,
    optimizer="adam",
)
QUICK = replace(
    TINY,
    **TRAINING["quick"],
    depths=(8, 32, 128),
    log2_etas=log2_grid(-3.0, 3.0, 1.0),
)
PAPER = replace(
    QUICK,
    **TRAINING["paper"],
    depths=(2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
    log2_etas=log2_grid(-5.0, 3.0),
    steps=3000,
    window=500,
)
STANDARD = replace(QUICK, **TRAINING["standard"], depths=(8, 32, 128, 512), seeds=12)
SIZES = {"tiny": TINY, "quick": QUICK, "standard": STANDARD, "paper": PAPER}
FIXED = ("width", "phi", "steps", "batch", "task", "window", "log2_a", "base_eta", "optimizer")
REFERENCE_DEPTH = 8
BLOCK_LABELS = {"post": "post-nonlin  MS(φ(Wx))", "pre": "pre-nonlin  Wφ(x)"}


def run(sizes: Mapping[str, Any], context: Context | None = None) -> xr.Dataset:
    """The block × depth × log2 η × seed grid (one batched training per block and depth)."""
    axes = {
        "block": list(sizes["blocks"]),
        "depth": list(sizes["depths"]),
        "log2_eta": [float(v) for v in sizes["log2_etas"]],
        "seed": seed_axis(context, int(sizes["seeds"])),
    }
    return sweep_digits(context, NAME, sizes, axes, FIXED, batch_axes=("log2_eta", "seed"))


def trend(ds: xr.Dataset, block: str) -> OptimumTrend:
    """Per-seed optimal log2 η of ``block`` at every depth and its slope against log2 L."""
    depths = [int(d) for d in ds.depth.values]
    table = ds.log_loss.sel(block=block).transpose("depth", "log2_eta", "seed").values
    return optimum_trend(ds.log2_eta.values, table, depths)


def plot(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """LogLoss vs log2 η per depth for each block, optimal η vs L, and min LogLoss vs L."""
    blocks = [str(b) for b in ds.block.values]
    depths = [int(d) for d in ds.depth.values]
    colors = depth_colors(depths)
    fig, axes = new_figure(len(blocks) + 2, 1, width=3.4, height=2.9)
    for col, block in enumerate(blocks):
        ax = axes[0, col]
        for L in depths:
            curve = ds.log_loss.sel(block=block, depth=L)
            plot_seed_mean(ax, ds.log2_eta, curve, color=colors[L], label=f"L = {L}")
        ax.set_title(BLOCK_LABELS.get(block, block))
        ax.set_xlabel(f"log2(η / {ds.attrs.get('base_eta')})")
        ax.set_ylabel("log training loss (natural log, window)")
        ax.legend(fontsize=7)
    ax = axes[0, -2]
    trends = {BLOCK_LABELS.get(block, block): trend(ds, block) for block in blocks}
    ylabel = f"per-seed argmin log2(η / {ds.attrs.get('base_eta')})"
    plot_optima(ax, depths, trends, ("log2 L (depth)", ylabel, "optimal η vs L (Fig. 2 left)"))
    best = per_seed_min(ds.log_loss, ("log2_eta",))
    ax = axes[0, -1]
    for k, block in enumerate(blocks):
        rows = [t_interval(best.sel(block=block, depth=L).values) for L in depths]
        errorbar_estimates(ax, np.log2(depths), rows, marker="o", color=f"C{k}",
                           label=BLOCK_LABELS.get(block, block))  # fmt: skip
    ax.set_xlabel("log2 L (depth)")
    ax.set_ylabel("per-seed min over η of LogLoss")
    ax.set_title("best loss vs depth")
    ax.legend(fontsize=7)
    fig.suptitle(
        f"Depth-µP, {ds.attrs.get('optimizer', 'sgd')}, log2 a = {ds.attrs.get('log2_a')}, "
        f"{ds.attrs.get('task')}, width {ds.attrs.get('width')}, φ = {ds.attrs.get('phi')}, "
        f"base depth {BASE_DEPTH}, {ds.attrs.get('steps')} steps;\n"
        "bands ±1 SE, bars 95% t intervals over seeds; gaps: diverged",
        fontsize=9,
    )
    return save_figure(fig, out_dir, NAME)


def claims(ds: xr.Dataset) -> list[Claim]:
    """Gap pre − post at the largest depth; post's gain and the gain difference from L = 8.

    Per seed, the minimum over η of the LogLoss; differences are paired over seeds (the two
    blocks and all depths share a seed's data order), with Student-t intervals.
    """
    best = per_seed_min(ds.log_loss, ("log2_eta",))
    depths = [int(d) for d in ds.depth.values]
    top = depths[-1]
    ref = REFERENCE_DEPTH if REFERENCE_DEPTH in depths[:-1] else depths[0]
    optimizer = ds.attrs.get("optimizer", "sgd")
    regime = f"{optimizer}, {ds.attrs.get('steps')} steps, per-seed min over η"
    source = _source(optimizer, "Fig. 2 right")

    def at(block: str, depth: int) -> np.ndarray:
        return np.asarray(best.sel(block=block, depth=depth).values, dtype=np.float64)

    edge = edge_fraction(ds.log_loss, "log2_eta")
    undecided = f"{edge:.0%} of the per-seed minima at the η grid's edge" if edge > 0.1 else ""
    post_gain = at("post", ref) - at("post", top)
    pre_gain = at("pre", ref) - at("pre", top)
    return [
        _transfer_claim(ds, depths, optimizer),
        _sign_claim(
            "pre-nonlin blocks train far worse than post-nonlin at large depth",
            f"{source}: pre-nonlin plateaus at ≈ −1.9, post falls to ≈ −3.5",
            f"LogLoss pre − post at L = {top}, {regime}",
            paired_interval(at("pre", top), at("post", top)),
            "≈ +1.6 at L = 2^10",
            undecided,
        ),
        _sign_claim(
            "post-nonlin keeps improving with depth",
            f"{source}: post-nonlin falls from ≈ −0.7 (L = 2) to ≈ −3.5 (L = 2^10)",
            f"decrease of LogLoss (post), L = {ref} → {top}, {regime}",
            t_interval(post_gain),
            "≈ 2 from L = 8 to 2^10",
            undecided,
        ),
        _sign_claim(
            "pre-nonlin plateaus: depth beyond L ≈ 8 gains less than for post-nonlin",
            f"{source}; Sec. 8.2: pre-nonlin flat from L ≈ 8",
            f"gain(post) − gain(pre) of LogLoss, L = {ref} → {top}, {regime}",
            paired_interval(post_gain, pre_gain),
            "pre flat, post gains ≈ 2",
            undecided,
        ),
    ]


def _source(optimizer: str, figure: str) -> str:
    """``figure`` as a paper source under Adam, else as an extension of it."""
    if optimizer == "adam":
        return f"paper: {figure}"
    return f"extension: {figure} (the paper trains with Adam)"


def _transfer_claim(ds: xr.Dataset, depths: list[int], optimizer: str) -> Claim:
    """The pre-nonlin block's optimal η does not move with depth (Fig. 2 left)."""
    pre = trend(ds, "pre")
    return Claim(
        experiment=NAME,
        claim="Depth-µP: the pre-nonlin block still transfers the optimal η",
        source=f"{_source(optimizer, 'Fig. 2 left')}: pre-nonlin resnet, the optimum sits at "
        "log2(η/1e-3) ≈ −3 at every depth L = 2..2^10",
        quantity=f"slope of optimal log2 η vs log2 L (pre-nonlin), L = {depths[0]}..{depths[-1]}, "
        f"{optimizer}, {ds.attrs.get('steps')} steps",
        estimate=pre.slope,
        paper="flat",
        **FLAT_OPTIMUM,
        undecided=pre.undecided("η", depths),
    )


def _sign_claim(
    claim: str, source: str, quantity: str, estimate: Estimate, paper: str, undecided: str
) -> Claim:
    """A loss claim decided by the sign of ``estimate`` alone (> 0 reproduces)."""
    return Claim(
        experiment=NAME,
        claim=claim,
        source=source,
        quantity=quantity,
        estimate=estimate,
        paper=paper,
        **SIGN_ONLY,
        undecided=undecided,
    )
