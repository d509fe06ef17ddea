"""The coordinate-check figure: each quantity against width and against depth, per parametrization.

Reads the Dataset of :func:`limitsim.commands.coordcheck.coordcheck`.  Columns are x, h
(at the Dataset's depth fraction) and f; the top row is against the width n at the largest
depth, the bottom row against the depth L at the largest width.  Per parametrization: the
mean over seeds (bold, markers) with its 95% t-interval (band), the other depths or widths
as thin lines, and a dashed line with the predicted slope through the curve's geometric mean;
the legend gives the fitted slope with its 95% interval next to the predicted one.  A
column's two panels share a log y-axis spanning at least :data:`MIN_DECADES` decades, so a
flat curve looks flat and a growing one climbs visibly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from limitsim.stats import from_standard_error

__all__ = ["MIN_DECADES", "plot_coordcheck"]

#: Fewest decades every y-axis spans.
MIN_DECADES = 3.0
#: Display names of the presets.
LABELS = {
    "depth_mup": "Depth-µP",
    "block_only": "block-only",
    "ode": "ODE (1/L)",
    "standard": "SP",
}
COLORS = ("tab:blue", "tab:red", "tab:orange", "tab:green", "tab:purple")
MARKERS = ("o", "s", "^", "D", "v")


def plot_coordcheck(
    data: Any, path: Path, *, quantity: str = "delta", step: int | None = None, title: str = ""
) -> None:
    """Draw the coordinate check of ``data`` at ``step`` (default the last) into ``path``.

    Parameters
    ----------
    data : xarray.Dataset
        As returned by :func:`limitsim.commands.coordcheck.coordcheck`.
    path : Path
        Figure file (any matplotlib format).
    quantity : {"delta", "rms"}
        RMS of the change since initialization, or RMS itself.
    step : int, optional
        A recorded step ≥ 1.
    title : str
        First line of the figure's title.
    """
    import matplotlib.pyplot as plt

    from limitsim.plotting import RC, new_figure

    if quantity not in ("delta", "rms"):
        raise ValueError(f"quantity must be 'delta' or 'rms', got {quantity!r}")
    steps = [int(s) for s in data.step.values if s > 0]
    step = steps[-1] if step is None else step
    if step not in steps:
        raise ValueError(f"step must be one of the recorded steps {steps}, got {step}")
    fraction = float(data.attrs["fraction"])
    seeds = int(data.attrs["seeds"])
    width_max, depth_max = int(data.width.values[-1]), int(data.depth.values[-1])
    fig, axes = new_figure(3, 2, width=3.9, height=3.0)
    with plt.rc_context(RC):
        for col, name in enumerate(("x", "h", "f")):
            key = f"{name}_{quantity}"
            table, se = data[key], data[f"{key}_se"]
            if "fraction" in table.dims:
                table, se = table.sel(fraction=fraction), se.sel(fraction=fraction)
            table, se = table.sel(step=step), se.sel(step=step)
            bottom, top = _y_range(table.values)
            for row, axis in enumerate(("width", "depth")):
                ax = axes[row, col]
                other = "depth" if axis == "width" else "width"
                for i, param in enumerate(data.parametrization.values):
                    curves = table.sel(parametrization=param).transpose(other, axis)
                    errors = se.sel(parametrization=param).transpose(other, axis)
                    _draw(ax, data, key, i, axis, curves, errors, seeds, bottom, step)
                ax.set_xscale("log", base=2)
                ax.set_yscale("log")
                grid = data[axis].values.astype(float)
                ax.set_xlim(grid[0] / 2**0.25, grid[-1] * 2**0.25)
                ax.set_xticks(grid, [str(int(v)) for v in grid])
                ax.minorticks_off()
                ax.set_ylim(bottom, top)
                if not np.any(np.isfinite(table.values) & (table.values > 0)):
                    # e.g. f after the last update: no output is computed there
                    ax.text(0.5, 0.5, "not available", transform=ax.transAxes, ha="center")
                fixed = f"L = {depth_max}" if axis == "width" else f"n = {width_max}"
                ax.set_xlabel(f"{'width n' if axis == 'width' else 'depth L'} ({fixed})")
                label = f"RMS {'Δ' if quantity == 'delta' else ''}{name}"
                where = "" if name == "f" else f" at layer ⌊{fraction:g}L⌋"
                ax.set_title(f"{label}{where}")
                ax.legend(loc="upper left", fontsize=6.5, handlelength=1.5)
        fig.suptitle(
            f"{title}\nstep {step}: mean of {seeds} seeds, band 95% t-interval; thin lines: "
            f"the other depths (top) or widths (bottom); dashed: the predicted slope",
            fontsize=9,
        )
        fig.savefig(path)
    plt.close(fig)


def _draw(
    ax: Any,
    data: Any,
    key: str,
    i: int,
    axis: str,
    curves: Any,
    errors: Any,
    seeds: int,
    bottom: float,
    step: int,
) -> None:
    """One parametrization in one panel: thin other curves, bold mean and band, guide."""
    color, marker = COLORS[i % len(COLORS)], MARKERS[i % len(MARKERS)]
    x = data[axis].values.astype(float)
    for row in curves.values[:-1]:
        ax.plot(x, _positive(row), color=color, lw=0.7, alpha=0.3)
    mean, se = curves.values[-1].astype(float), errors.values[-1].astype(float)
    half = np.array([_half_width(m, s, seeds) for m, s in zip(mean, se, strict=True)])
    ax.fill_between(x, np.maximum(mean - half, bottom), mean + half, color=color, alpha=0.2, lw=0)
    name = str(data.parametrization.values[i])
    sel = {"parametrization": name, "quantity": key, "axis": axis}
    fit = data.exponent.sel(step=step, **sel)
    low, high = (
        float(data.exponent_low.sel(step=step, **sel)),
        float(data.exponent_high.sel(step=step, **sel)),
    )
    predicted = float(data.predicted_exponent.sel(**sel))
    label = (
        f"{LABELS.get(name, name)} ({_fraction(float(data.alpha.values[i]))}, "
        f"{_fraction(float(data.gamma.values[i]))}): slope {_number(float(fit))}"
    )
    if math.isfinite(low):
        label += f" [{_number(low)}, {_number(high)}]"
    label += f"; theory {f'{predicted:g}' if math.isfinite(predicted) else 'none'}"
    ax.plot(x, _positive(mean), color=color, marker=marker, ms=4, label=label)
    finite = np.isfinite(mean) & (mean > 0)
    if math.isfinite(predicted) and finite.sum() >= 2:
        centre_x = np.exp(np.mean(np.log(x[finite])))
        centre_y = np.exp(np.mean(np.log(mean[finite])))
        ax.plot(x, centre_y * (x / centre_x) ** predicted, color=color, ls="--", lw=0.9)


def _y_range(values: Any) -> tuple[float, float]:
    """Log-axis limits covering the positive finite ``values``, at least MIN_DECADES wide.

    The top 40% of a decade more is left free for the legend.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return 1e-3, 1.0
    lo, hi = math.log10(float(v.min())), math.log10(float(v.max()))
    if hi - lo < MIN_DECADES - 0.5:
        mid = (hi + lo) / 2
        lo, hi = mid - MIN_DECADES / 2, mid + MIN_DECADES / 2
    else:
        lo, hi = lo - 0.25, hi + 0.25
    return 10.0**lo, 10.0 ** (hi + 0.4)


def _half_width(mean: float, se: float, seeds: int) -> float:
    """Half-width of the 95% t-interval of a mean of ``seeds`` seeds (0 when undefined)."""
    interval = from_standard_error(mean, se, dof=seeds - 1, seeds=seeds)
    return interval.high - mean if interval.finite else 0.0


def _positive(values: Any) -> Any:
    """``values`` with non-positive entries masked (NaN), for a log axis."""
    v = np.asarray(values, dtype=float)
    return np.where(v > 0, v, np.nan)


def _fraction(value: float) -> str:
    """0.5 as '1/2', other values as '%g'."""
    return "1/2" if value == 0.5 else f"{value:g}"


def _number(value: float) -> str:
    """A slope to two decimals with a real minus sign ('n/a' when it could not be fitted)."""
    return f"{value:.2f}".replace("-", "−") if math.isfinite(value) else "n/a"
