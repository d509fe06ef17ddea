"""The phase diagram of depthwise parametrizations (the paper's Fig. 1) from ``classify``.

Regions over (α, α + γ), with the named presets marked.  The measured counterpart (scaling
exponents of Δf and Δh in finite networks against the classification) is the experiment
``scaling_exponents``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from limitsim.classification import classify
from limitsim.experiments.profiles import ExperimentSizes
from limitsim.parametrization import PRESETS
from limitsim.plotting import new_figure, save_figure
from limitsim.report import Claim
from limitsim.stats import exact

NAME = "phase_diagram"
TITLE = "Phase diagram of (α, α + γ) (Fig. 1)"


@dataclass(frozen=True, kw_only=True)
class Sizes(ExperimentSizes):
    """Sizes of the phase_diagram experiment; the fields are read by :func:`run`."""

    per_quarter: int


#: tiny (tests), quick (2 cores, minutes) and paper (a cluster), each derived from the last.
TINY = Sizes(
    per_quarter=2,
)
QUICK = replace(
    TINY,
    per_quarter=40,
)
PAPER = replace(
    QUICK,
    per_quarter=80,
)
STANDARD = replace(QUICK, per_quarter=80)
SIZES = {"tiny": TINY, "quick": QUICK, "standard": STANDARD, "paper": PAPER}
REGIONS = (
    "unstable at initialization",
    "unstable during training",
    "trivial",
    "unfaithful",
    "redundant",
    "Depth-muP",
)


def run(sizes: Mapping[str, Any], context: Any = None) -> xr.Dataset:
    """Region index on a grid of α ∈ [0, 1.5] and α + γ ∈ [0, 2].

    ``sizes["per_quarter"]`` grid points per 1/4, so the lines α = 1/2, 1 and α + γ = 1 lie
    exactly on the grid.
    """
    k = int(sizes["per_quarter"])
    alphas = np.arange(6 * k + 1) / (4 * k)
    sums = np.arange(8 * k + 1) / (4 * k)
    region = np.empty((sums.size, alphas.size), dtype=np.int64)
    kappa = np.full(region.shape, np.nan)
    for i, s in enumerate(sums):
        for j, a in enumerate(alphas):
            c = classify(float(a), float(s - a))
            region[i, j] = REGIONS.index(c.region)
            if c.diversity_exponent is not None:
                kappa[i, j] = c.diversity_exponent
    return xr.Dataset(
        {
            "region": (("alpha_plus_gamma", "alpha"), region),
            "kappa": (("alpha_plus_gamma", "alpha"), kappa),
        },
        coords={"alpha": alphas, "alpha_plus_gamma": sums},
        attrs={"regions": "; ".join(REGIONS)},
    )


def plot(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """Regions as coloured areas; the stable nontrivial line drawn over them."""
    from matplotlib.colors import ListedColormap

    fig, axes = new_figure(width=7.0, height=3.8)
    ax = axes[0, 0]
    colors = ["#d9d9d9", "#fdd0a2", "#c6dbef", "#fcbba1", "#9ecae1", "#31a354"]
    ax.pcolormesh(
        ds.alpha,
        ds.alpha_plus_gamma,
        ds.region,
        cmap=ListedColormap(colors),
        vmin=-0.5,
        vmax=len(REGIONS) - 0.5,
        shading="nearest",
    )
    ax.plot([0.5, 1.0], [1, 1], color="#08519c", lw=3, label="redundant (κ = 0), faithful")
    ax.plot([1.0, 1.5], [1, 1], color="#cb181d", lw=3, label="unfaithful (h explodes)")
    for name, (alpha, gamma) in PRESETS.items():
        ax.plot(alpha, alpha + gamma, "k*" if name == "depth_mup" else "ko", ms=9)
        ax.annotate(name, (alpha, alpha + gamma), textcoords="offset points", xytext=(5, 5))
    ax.axvline(0.5, color="k", lw=0.8)
    for idx, label in enumerate(REGIONS):
        ax.plot([], [], "s", color=colors[idx], label=label, ms=8)
    ax.set_xlabel("α (branch multiplier a·L^-α)")
    ax.set_ylabel("α + γ (weight update size L^-γ)")
    ax.set_title("Depthwise parametrizations (Claims 7.1–7.6)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7)
    return save_figure(fig, out_dir, NAME)


def claims(ds: xr.Dataset) -> list[Claim]:
    """Uniqueness of Depth-µP on the grid: a check of ``classify`` against Claim 7.5's text."""
    count = float((ds.region == REGIONS.index("Depth-muP")).sum())
    return [
        Claim(
            experiment=NAME,
            claim="the classification marks exactly one grid point as Depth-µP",
            source="check: limitsim.classify (Claims 7.1-7.5 as code) evaluated on the grid",
            quantity="grid points classified Depth-µP",
            estimate=exact(count),
            paper="exactly (1/2, 1/2) (Claim 7.5)",
            low=1,
            high=1,
        )
    ]
