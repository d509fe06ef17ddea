"""Plot helpers shared by the experiments' figures."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from limitsim.experiments._common import OptimumTrend
from limitsim.plotting import errorbar_estimates

__all__ = ["log_depth_axes", "plot_depth_points", "plot_optima", "plot_seed_mean"]


def plot_seed_mean(
    ax: Any,
    x: Any,
    curve: xr.DataArray,
    *,
    color: Any,
    label: str,
    style: str = "o-",
    ms: float = 3.0,
    alpha: float = 0.2,
    gaps: bool = True,
) -> None:
    """Draw the mean over seeds of ``curve`` against ``x`` with a ±1 standard-error band.

    Parameters
    ----------
    ax : matplotlib Axes
        Where to draw.
    x : array_like, shape (n,)
        Abscissae.
    curve : xarray.DataArray, dims (n, seed)
        Values per abscissa and seed; the band is std over seeds (ddof 0) / √(seeds).
    color, label, style, ms, alpha
        Line colour, legend label, line style (with the marker), marker size, band opacity.
    gaps : bool
        True: an abscissa where any seed is NaN (diverged) is left as a gap; False: the mean
        is over the finite seeds.
    """
    mean = curve.mean("seed", skipna=False if gaps else None)
    se = curve.std("seed") / math.sqrt(max(curve.sizes["seed"], 1))
    ax.plot(x, mean, style, ms=ms, color=color, label=label)
    ax.fill_between(x, mean - se, mean + se, color=color, alpha=alpha)


def plot_optima(
    ax: Any, depths: Sequence[int], trends: Mapping[str, OptimumTrend], labels: tuple[str, str, str]
) -> None:
    """Draw each trend's per-seed optimum against log2 L with its 95% t intervals.

    Parameters
    ----------
    ax : matplotlib Axes
        Where to draw.
    depths : sequence of int, shape (D,)
        The depths of the trends.
    trends : mapping of str to OptimumTrend
        Legend label -> optima at ``depths``; the k-th trend is drawn in colour ``Ck``.
    labels : (str, str, str)
        The x label, y label and title.
    """
    for k, (label, trend) in enumerate(trends.items()):
        errorbar_estimates(ax, np.log2(depths), trend.per_depth(), marker="o", color=f"C{k}",
                           label=label)  # fmt: skip
    xlabel, ylabel, title = labels
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)


def plot_depth_points(
    ax: Any, depths: Any, values: xr.DataArray, *, color: str, label: str, slope: float
) -> Any:
    """Draw ``values`` against the depths: mean ± 1 standard error over seeds, or the values.

    Parameters
    ----------
    ax, depths : matplotlib Axes, array_like of shape (D,)
        Where to draw, and the abscissae.
    values : xarray.DataArray, dims (D,) or (D, seed)
        One value per depth (no bars), or per depth and seed (bars: std over seeds, ddof 0,
        / √(seeds)).
    color, label, slope : str, str, float
        Colour; the legend reads ``"(α, γ) = (<label>): slope <slope>"`` with the fitted
        exponent ``slope``.

    Returns
    -------
    numpy.ndarray, shape (D,)
        The plotted points (the means over seeds).
    """
    mean, err = values.values, None
    if "seed" in values.dims:
        mean = values.mean("seed").values
        err = (values.std("seed") / math.sqrt(values.sizes["seed"])).values
    ax.errorbar(depths, mean, yerr=err, marker="o", ms=3, capsize=2, color=color,
                label=f"(α, γ) = ({label}): slope {slope:.2f}")  # fmt: skip
    return mean


def log_depth_axes(ax: Any, ylabel: str, *, log_y: bool = True) -> None:
    """Log2 depth axis (and a log y axis unless ``log_y`` is False) labelled ``ylabel``."""
    ax.set_xscale("log", base=2)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("depth L (log2 scale)")
    ax.set_ylabel(ylabel)
