"""Shared matplotlib style for limitsim figures: colours per depth, saving PNG and PDF."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from limitsim.stats import Estimate

__all__ = ["depth_colors", "errorbar_estimates", "figure_legend", "new_figure", "save_figure"]

# Keys typed Any: matplotlib >= 3.10 types rc_context keys as a Literal of all rc names.
RC: dict[Any, Any] = {
    "figure.dpi": 110,
    "savefig.dpi": 160,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.6,
}


def depth_colors(depths: Sequence[float]) -> dict[float, Any]:
    """One colour per depth, by log2 L on the viridis scale (same L → same colour everywhere)."""
    cmap = plt.get_cmap("viridis")
    logs = [math.log2(d) for d in depths]
    lo, hi = min(logs), max(logs)
    span = hi - lo or 1.0
    return {d: cmap(0.9 * (math.log2(d) - lo) / span) for d in depths}


def errorbar_estimates(ax: Any, x: Any, estimates: Sequence[Estimate], **kwargs: Any) -> Any:
    """Points at the estimates' values with their (asymmetric) 95% intervals as bars."""
    value = [e.value for e in estimates]
    bars = [[e.value - e.low for e in estimates], [e.high - e.value for e in estimates]]
    return ax.errorbar(x, value, yerr=bars, capsize=2, **kwargs)


def figure_legend(fig: Any, ax: Any) -> None:
    """One legend for ``fig``, right of its panels, holding the entries of the panel ``ax``."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center")


def new_figure(ncols: int = 1, nrows: int = 1, *, width: float = 3.4, height: float = 2.8) -> Any:
    """A figure with ``nrows × ncols`` panels of ``width × height`` inches."""
    with plt.rc_context(RC):
        fig, axes = plt.subplots(
            nrows,
            ncols,
            figsize=(width * ncols, height * nrows),
            squeeze=False,
            layout="constrained",
        )
    return fig, axes


def save_figure(fig: Any, out_dir: Path, name: str) -> list[Path]:
    """Save ``fig`` as ``name.png`` and ``name.pdf`` in ``out_dir``; close it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    with plt.rc_context(RC):
        for path in paths:
            fig.savefig(path)
    plt.close(fig)
    return paths
