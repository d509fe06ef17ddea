"""Helpers shared by the experiments: sweeps into a store, tasks, optimum estimates.

Experiments run their grids through :func:`limitsim.sweep.run_sweep`, so every finished
grid point is on disk at once and a killed ``limitsim figures`` resumes where it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from limitsim.parametrization import Parametrization
from limitsim.task import Task

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["Context", "argmin_log2", "make_task", "preset", "sweep"]


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
    """

    store_root: Path
    scheduler: str | None = None
    workers: int | None = None
    progress: bool = True


def sweep(
    context: Context | None,
    name: str,
    function: Callable[..., Any],
    grid: Any,
    *,
    batch_axes: Sequence[str] = (),
    batch_size: int | None = None,
) -> xr.Dataset:
    """Run ``function`` over ``grid`` in the store ``<store_root>/<name>`` (resumable)."""
    from limitsim.sweep import run_sweep

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
            return ds
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
    )
    return result


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


def argmin_log2(x: ArrayLike, losses: ArrayLike) -> float:
    """Location of the minimum of ``losses`` over the grid ``x`` (log2 values).

    A parabola through the grid minimum and its two neighbours refines the location (clipped
    to that bracket); NaN (diverged) entries count as +inf; all-NaN gives NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.where(np.isfinite(losses), np.asarray(losses, dtype=np.float64), np.inf)
    if not np.isfinite(y).any():
        return math.nan
    k = int(np.argmin(y))
    if 0 < k < x.size - 1 and np.all(np.isfinite(y[k - 1 : k + 2])):
        x0, x1, x2 = x[k - 1 : k + 2]
        y0, y1, y2 = y[k - 1 : k + 2]
        denom = (x0 - x1) * (x0 - x2) * (x1 - x2)
        a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denom
        b = (x2**2 * (y0 - y1) + x1**2 * (y2 - y0) + x0**2 * (y1 - y2)) / denom
        if a > 0:
            return float(np.clip(-b / (2 * a), x0, x2))
    return float(x[k])


def bootstrap_argmin(
    x: NDArray[np.float64], losses: NDArray[np.float64], *, n_boot: int = 200, seed: int = 0
) -> tuple[float, float]:
    """``argmin_log2`` of the seed-mean curve and its bootstrap standard error over seeds.

    ``losses`` has shape (n_x, n_seeds).
    """
    finite = np.all(np.isfinite(losses), axis=1)  # a diverged seed makes the point diverged
    mean = np.where(finite, np.where(np.isfinite(losses), losses, 0.0).mean(axis=1), np.nan)
    best = argmin_log2(x, mean)
    n_seeds = losses.shape[1]
    if n_seeds < 2 or not math.isfinite(best):
        return best, math.nan if n_seeds < 2 else 0.0
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        pick = rng.integers(0, n_seeds, n_seeds)
        sample = losses[:, pick]
        curve = np.where(np.all(np.isfinite(sample), axis=1), sample.mean(axis=1), np.nan)
        draws.append(argmin_log2(x, curve))
    return best, float(np.nanstd(draws))
