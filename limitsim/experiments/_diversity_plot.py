"""Feature-diversity figures: the normalised curves of Figs. 17–19 from stored d(ε = k/L).

Experiments store ``d`` at ε = k/L, k = 1..K (dimension ``k``).  The paper normalises at
ε_ref = 1/256; a depth below 256 cannot resolve it, so we normalise at
``ε_ref = max(1/256, 1/L)`` (the smallest resolvable ε) and say so on the axis:

- Fig. 17: ``c d(ε)`` with ``c d(ε_ref) = 1``;
- Figs. 18–19: ``d(ε) / (c′ ε^{1/2})`` with ``c′ d(ε_ref) / ε_ref^{1/2} = 1`` (flat ⇔ κ = 1/2).

Curves are normalised per seed (or per replica) and then averaged; bands are ±1 SE.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from limitsim.experiments._diversity_fit import depths_of, time_slopes
from limitsim.plotting import depth_colors, errorbar_estimates, new_figure, save_figure
from limitsim.stats import t_interval

__all__ = ["normalize_curves", "plot_normalized", "plot_routes"]

EPS_REF = 1 / 256


def normalize_curves(d: xr.DataArray, depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ε, scaled, ratio) of the stored ``d`` (dims ``k`` and optionally ``seed``).

    Returns arrays of shape (K,) for ε and (S, K) for the two normalised curves (S = 1
    without a seed dimension); NaN columns (k beyond L/16) are dropped.
    """
    table = d.transpose(..., "k").values.reshape(-1, d.sizes["k"])
    eps = d.k.values.astype(float) / depth
    keep = np.isfinite(table).any(axis=0)
    table, eps = table[:, keep], eps[keep]
    k_ref = max(1, round(EPS_REF * depth))
    ref = table[:, k_ref - 1 : k_ref]
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = table / ref
        ratio = scaled * math.sqrt(k_ref / depth) / np.sqrt(eps)
    return eps, scaled, ratio


def plot_normalized(
    ax: Any,
    d: xr.DataArray,
    depth: int,
    *,
    color: Any,
    style: str = "-",
    label: str | None = None,
    which: str = "ratio",
) -> None:
    """Draw the seed-mean normalised curve (``which``: ``"ratio"`` or ``"scaled"``) ±1 SE."""
    eps, scaled, ratio = normalize_curves(d, depth)
    curves = ratio if which == "ratio" else scaled
    if eps.size == 0:
        return
    mean = np.nanmean(curves, axis=0)
    n = np.sum(np.isfinite(curves), axis=0)
    se = np.where(n > 1, np.nanstd(curves, axis=0, ddof=min(1, curves.shape[0] - 1)), 0.0)
    se = se / np.sqrt(np.maximum(n, 1))
    ax.plot(eps, mean, style, color=color, label=label, lw=1.3)
    ax.fill_between(eps, mean - se, mean + se, color=color, alpha=0.15, lw=0)
    ax.set_xscale("log", base=2)


def plot_routes(
    ds: xr.Dataset,
    out_dir: Path,
    name: str,
    *,
    labels: dict[str, str],
    styles: dict[str, str],
) -> list[Path]:
    """The diversity experiment's figure (:mod:`limitsim.experiments.diversity` datasets).

    Rows: the n = ∞ linear limit (``limit_*`` variables) and finite nets; columns: Fig. 17
    (c·d(ε)), Fig. 18 (d/(cε^1/2)) at the last recorded step, κ̂ vs log2 L at every
    recorded step, and the slope of Fig. 18's curve at the largest depth against the recorded
    step t, for each parametrization (``labels``/``styles`` by name).
    """
    fig, axes = new_figure(4, 2, width=3.5, height=2.9)
    colors = depth_colors(sorted({int(L) for L in (*ds.depth.values, *ds.limit_depth.values)}))
    routes = (
        (
            "limit",
            "limit_d",
            "limit_depth",
            "limit_step",
            "limit_k",
            f"n = ∞ linear, t = {int(ds.limit_step.values[-1])}",
        ),
        (
            "finite",
            "d",
            "depth",
            "step",
            "k",
            f"finite relu, n = {ds.attrs.get('width')}, t = {int(ds.step.values[-1])}",
        ),
    )
    for row, (route, var, depth_dim, step_dim, k_dim, title) in enumerate(routes):
        depths = [int(L) for L in ds[depth_dim].values]
        data = ds[var].isel({step_dim: -1}).rename({k_dim: "k"})
        for col, which in enumerate(("scaled", "ratio")):
            ax = axes[row, col]
            for param in ds.parametrization.values:
                for L in depths:
                    plot_normalized(
                        ax,
                        data.sel({"parametrization": param, depth_dim: L}),
                        L,
                        color=colors[L],
                        style=styles.get(str(param), ":"),
                        label=f"{labels.get(str(param), param)}, L = {L}",
                        which=which,
                    )
            _guides(ax, which, max(1 / 256, 1 / max(depths)))
            ax.set_xlabel("ε (log2 scale)")
            ax.set_ylabel(
                "c·d(ε), c·d(ε_ref) = 1" if which == "scaled" else "d(ε) / (c ε^1/2), = 1 at ε_ref"
            )
            if which == "scaled":
                ax.set_yscale("log", base=2)
            ax.set_title(f"{title} ({'Fig. 17' if which == 'scaled' else 'Fig. 18'})")
        _plot_kappa(axes[row, 2], ds, route, labels=labels, styles=styles)
        _plot_time_slopes(axes[row, 3], ds, route, labels=labels, styles=styles)
    axes[0, 0].legend(fontsize=5.5, ncol=2)
    fig.suptitle(
        "feature diversity, Depth-µP (solid) vs ODE (dashed); base depth 8; limit: linear, SGD, "
        f"a = 8^-1/2, η = {ds.attrs.get('limit_eta')}; finite: relu, "
        f"{ds.attrs.get('optimizer', 'sgd')}, a = 2^{ds.attrs.get('log2_a')}"
        f", η = {ds.attrs.get('base_eta')}·2^{ds.attrs.get('log2_eta')}, digits\n"
        "ε_ref = max(1/256, 1/L); grey: ε^1/2 (solid) and ε (dashed) guides; "
        "bands ±1 SE over seeds (finite), fit SE (limit)",
        fontsize=9,
    )
    return save_figure(fig, out_dir, name)


def _plot_kappa(
    ax: Any, ds: xr.Dataset, route: str, *, labels: dict[str, str], styles: dict[str, str]
) -> None:
    """κ̂ against log2 L at every recorded step (later steps darker), one colour per
    parametrization."""
    step_dim = "limit_step" if route == "limit" else "step"
    depths = depths_of(ds, route)
    for k, param in enumerate(ds.parametrization.values):
        for r, alpha in zip(range(ds.sizes[step_dim]), (0.35, 0.65, 1.0), strict=False):
            mean, se = _kappa_curve(ds, route, str(param), r)
            ax.errorbar(
                np.log2(depths),
                mean,
                yerr=se,
                marker="o",
                capsize=2,
                color=f"C{k}",
                alpha=alpha,
                ls=styles.get(str(param), ":"),
                label=f"{labels.get(str(param), param)}, t = {int(ds[step_dim].values[r])}",
            )
    ax.axhline(0.5, color="0.5", lw=0.8, ls=":")
    ax.axhline(0.0, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("log2 L (depth)")
    ax.set_ylabel("κ̂ (ε ∈ [1/256, 1/16])")
    ax.set_title(f"diversity exponent ({route})")
    ax.legend(fontsize=5.5)


def _plot_time_slopes(
    ax: Any, ds: xr.Dataset, route: str, *, labels: dict[str, str], styles: dict[str, str]
) -> None:
    """Fig. 18 over training: slope 1/2 − κ̂ at the largest depth vs t (95% intervals: t over
    seeds for finite nets, the log–log fit's for the limit)."""
    steps = ds["limit_step" if route == "limit" else "step"].values.astype(float)
    for k, param in enumerate(str(p) for p in ds.parametrization.values):
        slopes = time_slopes(ds, route, param)
        rows = [
            per_seed[0] if route == "limit" else t_interval([e.value for e in per_seed])
            for per_seed in slopes
        ]
        errorbar_estimates(ax, steps, rows, marker="o", color=f"C{k}",
                           ls=styles.get(param, ":"), label=labels.get(param, param))  # fmt: skip
    top = depths_of(ds, route)[-1]
    ax.axhline(0.0, color="0.5", lw=0.8, ls=":")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training step t (log2 scale)")
    ax.set_ylabel("slope 1/2 − κ̂ of d/(cε^1/2), 95% CI")
    ax.set_title(f"Fig. 18 over training: L = {top}, ε ∈ [1/{top}, 1/16] ({route})", fontsize=8)
    ax.legend(fontsize=6)


def _guides(ax: Any, which: str, eps_min: float) -> None:
    """Grey Θ(ε^1/2) and Θ(ε) guides from (``eps_min``, 1) to ε = 1/16."""
    eps = np.geomspace(eps_min, 1 / 16, 20)
    for power, style in ((0.5, "-"), (1.0, "--")):
        curve = (eps / eps_min) ** (power if which == "scaled" else power - 0.5)
        ax.plot(eps, curve, style, color="0.6", lw=0.8)


def _kappa_curve(ds: xr.Dataset, route: str, param: str, r: int) -> tuple[Any, Any]:
    """κ̂ per depth at recorded step index r and its SE (fit SE for the limit, seeds else)."""
    if route == "limit":
        return (
            ds.limit_kappa.sel(parametrization=param).isel(limit_step=r).values,
            ds.limit_kappa_se.sel(parametrization=param).isel(limit_step=r).values,
        )
    values = ds.kappa.sel(parametrization=param).isel(step=r)
    return (
        values.mean("seed").values,
        (values.std("seed", ddof=1) / math.sqrt(values.sizes["seed"])).values,
    )
