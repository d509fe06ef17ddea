"""Helpers shared by the experiments: sweeps into a store, tasks, optimum estimates.

Experiments run their grids through :func:`limitsim.sweeps.sweep.run_sweep`, so every finished
grid point is on disk at once and a killed ``limitsim figures`` resumes where it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray

from limitsim.parametrization import Parametrization
from limitsim.stats import Estimate, argmin_fit, t_interval
from limitsim.task import Task

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "FLAT_OPTIMUM",
    "SIGN_ONLY",
    "TRANSFER_SLOPE",
    "ClaimRange",
    "Context",
    "OptimumTrend",
    "make_task",
    "optimum_trend",
    "preset",
    "seed_axis",
    "sweep",
]


class ClaimRange(TypedDict):
    """The accepted range of a :class:`~limitsim.report.Claim` (its ``low``, ``high`` and
    ``range_reason`` fields)."""

    low: float
    high: float
    range_reason: str


#: The range of a claim decided by the sign of its estimate alone: ``Claim(..., **SIGN_ONLY)``.
SIGN_ONLY: ClaimRange = {"low": 0.0, "high": math.inf, "range_reason": "sign only"}
#: Accepted slopes of the optimal log2 η per doubling of L for "transfers": half
#: the −1/2 per doubling of a rate mis-scaled by L^-1/2.
TRANSFER_SLOPE = 0.25
#: The range of "the optimal log2 η does not move with depth": ``Claim(..., **FLAT_OPTIMUM)``.
FLAT_OPTIMUM: ClaimRange = {
    "low": -TRANSFER_SLOPE,
    "high": TRANSFER_SLOPE,
    "range_reason": "±0.25: half the L^-1/2 shift (theory)",
}


@dataclass(frozen=True)
class Context:
    """Where and how experiments run their sweeps.

    Attributes
    ----------
    store_root : Path
        Directory holding one sweep store per experiment (``<store_root>/<name>``).
    scheduler : str, optional
        dask.distributed scheduler address; local processes when None.
    workers : int, optional
        Local worker processes (default: all cores).
    progress : bool
        Progress bars.
    seed : int
        Base seed of every experiment (:func:`seed_axis`).
    """

    store_root: Path
    scheduler: str | None = None
    workers: int | None = None
    progress: bool = True
    seed: int = 0


#: Seeds of different base seeds never overlap while an experiment uses fewer than this many.
SEED_STRIDE = 1000


def seed_axis(context: Context | None, count: int) -> list[int]:
    """The ``count`` seeds of an experiment for the context's base seed b: b·1000 + 0..count−1.

    Different base seeds give disjoint seed sets, so two reports with different ``--seed``
    are independent replications.  ``context=None`` (tests, library use) means base seed 0.
    """
    if not 1 <= count < SEED_STRIDE:
        raise ValueError(f"seeds must be in [1, {SEED_STRIDE - 1}], got {count}")
    base = 0 if context is None else context.seed
    return [base * SEED_STRIDE + k for k in range(count)]


def eta_windows_filter(windows: Mapping[str, Sequence[float]]) -> str:
    """Grid filter keeping, for each optimizer, the log2 η inside its window ``windows[opt]``."""
    return " or ".join(
        f"(optimizer == {opt!r} and {min(w)} <= log2_eta <= {max(w)})" for opt, w in windows.items()
    )


def sweep(
    context: Context | None,
    name: str,
    function: Callable[..., Any],
    grid: Any,
    *,
    batch_axes: Sequence[str] = (),
    batch_size: int | None = None,
) -> xr.Dataset:
    """Run ``function`` over ``grid`` in the store ``<store_root>/<name>`` (resumable).

    Points recorded failed by an earlier run are retried; if any point fails,
    :class:`~limitsim.sweeps._errors.PointsFailed` is raised after the sweep (every other
    point is stored).
    """
    from limitsim.sweeps.sweep import run_sweep

    if context is None:  # tests and library use: a throw-away store, in this process
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            ds: xr.Dataset = run_sweep(
                function,
                grid,
                store=Path(tmp) / name,
                batch_axes=batch_axes,
                executor="inline",
                progress=False,
            )
            return check_failures(ds, name)
    executor = "dask" if context.scheduler else "processes"
    result: xr.Dataset = run_sweep(
        function,
        grid,
        store=context.store_root / name,
        batch_axes=batch_axes,
        batch_size=batch_size,
        executor=executor,
        scheduler=context.scheduler,
        workers=context.workers,
        progress=context.progress,
        retry_failed=True,
    )
    return check_failures(result, name)


def check_failures(ds: xr.Dataset, name: str) -> xr.Dataset:
    """``ds`` if no point of the sweep ``name`` failed, else :class:`PointsFailed`.

    Diverged points are results (NaN); failed points are bugs or lost workers and would
    otherwise silently become NaN in the claims.
    """
    from limitsim.sweeps._errors import PointsFailed

    failed = ds.status.values == "failed"
    if failed.any():
        lines = str(ds.error.values[failed].ravel()[0]).strip().splitlines()
        raise PointsFailed(name, int(failed.sum()), lines[-1] if lines else "?")
    return ds


def make_task(spec: dict[str, Any]) -> Task:
    """The task named by a sweep point's fixed parameters (``task``, ``steps``, ``batch``)."""
    from limitsim.data import load_dataset

    kwargs = {"steps": int(spec["steps"]), "batch_size": int(spec["batch"])}
    if "task_seed" in spec:
        kwargs["seed"] = int(spec["task_seed"])
    return load_dataset(str(spec["task"]), **kwargs)


def preset(name: str, **kwargs: Any) -> Parametrization:
    """A named preset (``depth_mup``, ``block_only``, ``ode``, ``standard``)."""
    return Parametrization.preset(name, **kwargs)


@dataclass(frozen=True)
class OptimumTrend:
    """How the optimum of a hyperparameter moves with depth, per seed (:func:`optimum_trend`).

    Attributes
    ----------
    slope : Estimate
        Slope of the per-seed optimum against log2 L, t interval over seeds.
    optima : ndarray, shape (n_depths, n_seeds)
        Per-seed optimum (:func:`limitsim.stats.argmin_fit`) at each depth; NaN where every
        grid point diverged.
    at_edge : ndarray of bool, shape (n_depths, n_seeds)
        Optima at the first or last grid point (only bounds).
    slopes : ndarray, shape (n_seeds,)
        Per-seed slopes (NaN for a seed with a lost depth), for paired comparisons.
    """

    slope: Estimate
    optima: NDArray[np.float64]
    at_edge: NDArray[np.bool_]
    slopes: NDArray[np.float64]

    @property
    def edge_fraction(self) -> float:
        """Fraction of the per-seed optima that sit at a grid edge."""
        return float(self.at_edge.mean()) if self.at_edge.size else 0.0

    def per_depth(self) -> list[Estimate]:
        """Mean per-seed optimum at each depth with its t interval over seeds."""
        return [t_interval(row) for row in self.optima]

    def undecided(self, grid: str, depths: Sequence[int]) -> str:
        """A reason the slope cannot be judged, or ``""`` (edge optima, lost depths)."""
        if self.edge_fraction > EDGE_TOLERANCE:
            worst = int(np.argmax(self.at_edge.mean(axis=1)))
            return (
                f"{self.edge_fraction:.0%} of per-seed optima at the {grid} grid's edge, "
                f"most at L = {depths[worst]}"
            )
        if not np.isfinite(self.optima).any(axis=1).all():
            return "every run diverged at some depth"
        return ""


#: Largest fraction of per-seed optima at a grid edge for which a trend is still judged.
EDGE_TOLERANCE = 0.1


def optimum_trend(
    grid: ArrayLike,
    losses: ArrayLike,
    depths: Sequence[int],
    *,
    half_width: int = 2,
    locate: Callable[[ArrayLike, ArrayLike], tuple[float, bool]] | None = None,
) -> OptimumTrend:
    """Per-seed optimum over ``grid`` at each depth and its slope against log2 L.

    Parameters
    ----------
    grid : array_like, shape (n_grid,)
        Hyperparameter values (log2 η or log2 a).
    losses : array_like, shape (n_depths, n_grid, n_seeds)
        LogLoss per depth, grid point and seed; NaN marks a diverged run.  Seed ``s`` is the
        same initialisation and batch order at every grid point, so each seed gives one curve.
    depths : sequence of int
        The depths L of the first axis.

    locate : callable, optional
        ``locate(grid, curve) -> (location, at_edge)`` instead of
        :func:`limitsim.stats.argmin_fit` with ``half_width`` (e.g.
        :func:`limitsim.stats.spline_argmin`).

    Notes
    -----
    Per seed, the optimum is :func:`limitsim.stats.argmin_fit` (a least-squares parabola over
    the points within ``half_width`` steps of the grid minimum), which moves continuously with
    noise instead of jumping by grid steps, or ``locate``; the slope of the optima against
    log2 L is fitted per seed (seeds with a lost depth are dropped), and its interval is
    Student's t over seeds.
    """
    x = np.asarray(grid, dtype=np.float64)
    table = np.asarray(losses, dtype=np.float64)
    n_depths, _, n_seeds = table.shape
    optima = np.full((n_depths, n_seeds), np.nan)
    at_edge = np.zeros((n_depths, n_seeds), dtype=bool)
    for i in range(n_depths):
        for s in range(n_seeds):
            curve = table[i, :, s]
            optima[i, s], at_edge[i, s] = (
                argmin_fit(x, curve, half_width=half_width) if locate is None else locate(x, curve)
            )
    log_depths = np.log2(np.asarray(depths, dtype=np.float64))
    slopes = np.array(
        [
            float(np.polyfit(log_depths, optima[:, s], 1)[0])
            if np.all(np.isfinite(optima[:, s]))
            else math.nan
            for s in range(n_seeds)
        ]
    )
    return OptimumTrend(t_interval(slopes), optima, at_edge, slopes)
