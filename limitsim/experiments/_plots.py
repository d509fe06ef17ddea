"""Plot helpers shared by the experiments' figures."""

from __future__ import annotations

import math
from typing import Any

import xarray as xr

__all__ = ["plot_seed_mean"]


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
