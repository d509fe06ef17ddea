"""Finite-width optima for the n = ∞ transfer figure (:mod:`limitsim.experiments.limit_transfer`).

The same full-batch regression, φ, steps and learning-rate windows as the particle runs,
trained by finite resnets (route R4, :func:`limitsim.train_finite_batch`, float32, frozen
input and output layers, base depth 1) at each width of ``finite_widths``.  A seed is one
initialization, shared by every η of its (optimizer, width, depth) (one batched call), so each
seed gives one curve, whose optimum is found as for the n = ∞ curves.  The plotted quantity
is the log of the seed's mean training loss over steps 1..T−1, which tends to the quantity the
particle runs estimate as the width grows, so the finite optima should approach the n = ∞ ones
(the figure's overlay; optima by
:func:`limitsim.experiments._limit_transfer_claims.trend` with ``width``).  Block-only is read
off Depth-µP by the same identity as at n = ∞ (it holds at every width).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from limitsim.experiments._common import Context, eta_windows_filter, seed_axis, sweep
from limitsim.experiments._limit_transfer_claims import NAME
from limitsim.experiments._synthetic import few_point_task

__all__ = ["POINT_KEYS", "finite_points", "run_finite"]

#: The sizes every finite point carries (besides optimizer, width, depth, log2 η and seed).
POINT_KEYS = ("phi", "steps", "n_points", "d_in", "task_seed")


def finite_points(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Train learning rates of one (optimizer, width, depth, seed) together (sweep function).

    Returns per point ``log_loss`` = log mean_{t≥1} loss_t (NaN if diverged) and ``diverged``.
    """
    from limitsim.finite.train import train_finite_batch
    from limitsim.parametrization import Parametrization
    from limitsim.sweeps.grid import point_seed

    first = points[0]
    optimizer = str(first["optimizer"])
    params = [
        Parametrization.depth_mup(eta=2.0 ** float(p["log2_eta"]), optimizer=optimizer)
        for p in points
    ]
    seed = point_seed(first, ("seed", "depth", "optimizer", "width"))
    runs = train_finite_batch(
        few_point_task(first, evaluation=False),
        params,
        depth=int(first["depth"]),
        width=int(first["width"]),
        phi=str(first["phi"]),
        seeds=seed,
        dtype="float32",
        eval_every=0,
    )
    return [
        {
            "log_loss": math.nan if run.diverged else math.log(float(np.mean(run.loss[1:]))),
            "diverged": run.diverged,
        }
        for run in runs
    ]


def run_finite(sizes: Mapping[str, Any], context: Context | None) -> xr.DataArray:
    """``finite_log_loss`` (optimizer, width, depth, log2_eta, seed) on Depth-µP's windows.

    NaN outside an optimizer's window and for diverged runs.
    """
    from limitsim.sweeps.grid import Grid

    windows = {opt: list(sizes["log2_etas"][opt]) for opt in sizes["optimizers"]}
    grid = Grid(
        axes={
            "optimizer": list(sizes["optimizers"]),
            "width": list(sizes["finite_widths"]),
            "depth": list(sizes["depths"]),
            "seed": seed_axis(context, int(sizes["seeds"])),
            "log2_eta": sorted({v for w in windows.values() for v in w}),
        },
        filters=[eta_windows_filter(windows)],
        fixed={key: sizes[key] for key in POINT_KEYS},
    )
    raw = sweep(
        context,
        f"{NAME}_finite",
        finite_points,
        grid,
        batch_axes=("log2_eta",),
        batch_size=int(sizes["finite_batch"]),
    )
    log_loss: xr.DataArray = raw.log_loss.transpose(
        "optimizer", "width", "depth", "log2_eta", "seed"
    )
    return log_loss.drop_vars([c for c in log_loss.coords if c not in log_loss.dims])
