"""Measured depth exponents of one SGD step against the classification (Fig. 1, App. D.2).

Finite resnets (relu, post-nonlin, MS) take one full-batch SGD step on a few-point
regression task; for each (α, γ) and depth L we measure the output change
Δf = RMS(f_1 − f_0) and the feature change Δh = RMS(h_1^l − h_0^l) averaged over the depth
fractions 1/4, 1/2, 3/4, 1.  Their fitted log–log slopes in L are compared with the exponents
behind :func:`limitsim.classify` (derived in ``derivations/exponents.py``): Δf ∝ L^(1−α−γ)
and Δh ∝ L^max(1−α−γ, −γ).  Points are means over seeds (width fixed, large enough that
finite-width noise is small against the change).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from limitsim._generated import exponents
from limitsim.experiments._common import Context, sweep
from limitsim.experiments._plots import log_depth_axes, plot_depth_points
from limitsim.experiments._synthetic import AlphaGammaGrid
from limitsim.measures import feature_learning, output_change
from limitsim.parametrization import Parametrization
from limitsim.plotting import new_figure, save_figure
from limitsim.report import Claim
from limitsim.stats import Estimate, t_interval

NAME = "scaling_exponents"
TITLE = "Measured depth exponents of Δf and Δh vs the classification (Fig. 1)"


@dataclass(frozen=True, kw_only=True)
class Sizes(AlphaGammaGrid):
    """Sizes of the scaling_exponents experiment; the fields are read by :func:`run`."""

    phi: str
    n_points: int


#: tiny (tests), quick (2 cores, minutes) and paper (a cluster), each derived from the last.
TINY = Sizes(
    alpha_gammas=("0.5,0.5", "1,1"),
    depths=(4, 8, 16),
    seeds=2,
    width=16,
    phi="relu",
    eta=0.1,
    n_points=2,
)
QUICK = replace(
    TINY,
    alpha_gammas=("0.5,0.5", "0.5,0", "1,0", "1,1", "0.75,0.25"),
    depths=(8, 16, 32, 64, 128, 256),
    seeds=8,
    width=128,
    n_points=4,
)
PAPER = replace(
    QUICK,
    alpha_gammas=("0.5,0.5", "0.5,0", "1,0", "1,1", "0.75,0.25", "0.6,0.4"),
    depths=(8, 16, 32, 64, 128, 256, 512, 1024),
    width=512,
)
STANDARD = replace(QUICK, depths=(8, 16, 32, 64, 128, 256, 512), seeds=16, width=256)
SIZES = {"tiny": TINY, "quick": QUICK, "standard": STANDARD, "paper": PAPER}
FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def _exponents(label: str) -> tuple[float, float]:
    alpha, gamma = (float(v) for v in label.split(","))
    return alpha, gamma


def predicted(label: str) -> dict[str, float]:
    """Predicted exponents of Δf and Δh for the (α, γ) written as ``"α,γ"``."""
    alpha, gamma = _exponents(label)
    return {  # + 0.0 turns a -0.0 into 0.0 for printing
        "delta_f": float(exponents.drift_exponent(alpha, gamma)) + 0.0,
        "delta_h": float(exponents.preactivation_update_exponent(alpha, gamma)) + 0.0,
    }


def step_points(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One SGD step for the points of one depth (sweep function, batched over (α, γ), seed)."""
    from limitsim.data import few_point
    from limitsim.finite.train import train_finite_batch
    from limitsim.run import Record

    first = points[0]
    task = few_point(steps=2, n_points=int(first["n_points"]), d_in=8, seed=0)
    params = []
    for p in points:
        alpha, gamma = _exponents(str(p["alpha_gamma"]))
        params.append(Parametrization(alpha=alpha, gamma=gamma, eta=float(first["eta"])))
    runs = train_finite_batch(
        task,
        params,
        depth=int(first["depth"]),
        width=int(first["width"]),
        phi=str(first["phi"]),
        seeds=[int(p["seed"]) for p in points],
        record=Record(steps=(0, 1), backward=False),
    )
    out = []
    for run in runs:
        if run.diverged:
            out.append({"delta_f": math.nan, "delta_h": math.nan, "diverged": True})
            continue
        dh = feature_learning(run, step=1, ref_step=0, fractions=FRACTIONS)
        out.append(
            {"delta_f": output_change(run, step=1, ref_step=0), "delta_h": float(np.mean(dh))}
        )
    return out


def run(sizes: Mapping[str, Any], context: Context | None = None) -> xr.Dataset:
    """The (α, γ) × depth × seed grid of one-step changes."""
    from limitsim.sweeps.grid import Grid

    grid = Grid(
        axes={
            "alpha_gamma": list(sizes["alpha_gammas"]),
            "depth": list(sizes["depths"]),
            "seed": list(range(int(sizes["seeds"]))),
        },
        fixed={key: sizes[key] for key in ("width", "phi", "eta", "n_points")},
    )
    ds = sweep(
        context,
        NAME,
        step_points,
        grid,
        batch_axes=("alpha_gamma", "seed"),
        batch_size=int(sizes.get("batch_size", 8)),
    )
    ds = ds.drop_vars([v for v in ds.data_vars if v not in ("delta_f", "delta_h", "status")])
    ds.attrs = {key: grid.fixed[key] for key in grid.fixed}
    return ds


def fits(ds: xr.Dataset) -> dict[tuple[str, str], Estimate]:
    """Fitted exponent per ((α, γ), quantity): one log–log fit per seed, t interval over seeds.

    A seed with a non-finite or zero change at some depth (a diverged step) gives no slope.
    """
    out = {}
    x = np.log(ds.depth.values.astype(float))
    for label in ds.alpha_gamma.values:
        for quantity in ("delta_f", "delta_h"):
            table = ds[quantity].sel(alpha_gamma=label).transpose("seed", "depth").values
            slopes = [
                np.polyfit(x, np.log(row), 1)[0] if np.all(np.isfinite(row) & (row > 0)) else np.nan
                for row in table
            ]
            out[(str(label), quantity)] = t_interval(slopes)
    return out


def plot(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """Δf and Δh vs L (log–log) per (α, γ), with the predicted slopes as dashed guides."""
    fig, axes = new_figure(2, 1, width=3.6, height=3.0)
    depths = ds.depth.values.astype(float)
    slopes = fits(ds)
    for col, quantity in enumerate(("delta_f", "delta_h")):
        ax = axes[0, col]
        for k, label in enumerate(ds.alpha_gamma.values):
            values = ds[quantity].sel(alpha_gamma=label)
            color = f"C{k}"
            slope = slopes[(str(label), quantity)].value
            mean = plot_depth_points(ax, depths, values, color=color, label=label, slope=slope)
            pred = predicted(str(label))[quantity]
            ref = float(mean[0])
            ax.plot(depths, ref * (depths / depths[0]) ** pred, "--", color=color, lw=0.8)
        log_depth_axes(ax, "RMS(f₁ − f₀)" if quantity == "delta_f" else "mean RMS(h₁ˡ − h₀ˡ)")
        ax.set_title("output change Δf" if quantity == "delta_f" else "feature change Δh")
        ax.legend(fontsize=6)
    fig.suptitle(
        f"one SGD step, width {ds.attrs.get('width')}, φ = {ds.attrs.get('phi')}; "
        "dashed: predicted exponents"
    )
    return save_figure(fig, out_dir, NAME)


def claims(ds: xr.Dataset) -> list[Claim]:
    """Each fitted exponent within ±0.15 of the classification's (App. D.2, Claims 7.2-7.3)."""
    out = []
    for (label, quantity), estimate in fits(ds).items():
        pred = predicted(label)[quantity]
        name = "Δf" if quantity == "delta_f" else "Δh"
        source = (
            "paper: App. D.2 derives f̊_1 = Θ(L^(1−α−γ)), behind Claim 7.2's stable/trivial split"
            if quantity == "delta_f"
            else "paper: Claims 7.2-7.3 (App. D.2: Δh after one step = Θ(L^max(1−α−γ, −γ)))"
        )
        out.append(
            Claim(
                experiment=NAME,
                claim=f"{name} after one step ∝ L^{pred:g} for (α, γ) = ({label})",
                source=source,
                quantity=f"fitted exponent of {name} vs L, one SGD step, relu, "
                f"L = {int(ds.depth[0])}..{int(ds.depth[-1])}",
                estimate=estimate,
                paper=f"{pred:g}",
                low=pred - 0.15,
                high=pred + 0.15,
                range_reason="prediction ± 0.15 for finite-L corrections",
            )
        )
    return out
