"""Finite resnets on digits: the point function and summaries shared by the experiments.

:mod:`~limitsim.experiments.transfer`, :mod:`~limitsim.experiments.multiplier`,
:mod:`~limitsim.experiments.prenonlin`, :mod:`~limitsim.experiments.nonlinearity`,
:mod:`~limitsim.experiments.diversity` and :mod:`~limitsim.experiments.block_depth` train
finite resnets (Depth-µP by default, SGD, float32, frozen input/output layers, base depth 8)
on the bundled digits data and compare the paper's "LogLoss": the natural log of the training
loss averaged over the last ``window`` steps (``tp6-notes.md`` §6).  A grid point is the full
configuration; the keys read here are

- per point: ``log2_eta`` (η = ``base_eta`` · 2^log2_eta, or ``base_eta_<optimizer>`` when
  a grid mixes optimizers), ``log2_a`` (a = 2^log2_a), ``seed``, optionally
  ``parametrization`` (a preset name, default ``depth_mup``) and ``optimizer`` (``sgd``, the
  default, or ``adam``);
- per architecture (shared by the points of one batch): ``depth``, ``width``, ``phi``,
  optionally ``block`` (``post``/``pre``), ``block_depth`` (default 1) and ``pre_ln``
  (default False), ``task``, ``steps``, ``batch``, ``window``, optionally ``record_steps``
  (steps at which the probe kernels are recorded) and ``record_backward`` (default True;
  False skips the (L, L) δh̃ kernels, ``lag1`` is NaN) and ``loss_checkpoints`` (steps s at
  which the LogLoss of the ``window`` steps before s is also returned, as ``log_loss_at``: the
  paper's earlier windows such as "step=10000:11000", from the same runs).

With ``record_steps`` the probe is the first held-out digit (``task.eval_X[0]``), and each
point also returns, per recorded step, the lag-1 correlation of ``δh̃`` across blocks
(:func:`limitsim.measures.lag_correlation`), the diversity exponent κ̂
(:func:`limitsim.measures.diversity_exponent`, λ ∈ {1/4, 1/2, 3/4}, ε ∈ [1/256, 1/16]; NaN when
the depth resolves fewer than three ε) and the diversity ``d(ε = k/L)`` for k = 1..⌊L/16⌋.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from limitsim.experiments._common import Context, make_task, preset, sweep
from limitsim.experiments.profiles import ExperimentSizes

__all__ = [
    "BASE_DEPTH",
    "DIVERSITY_LAMBDAS",
    "EPS_MAX",
    "TRAINING",
    "DepthGrid",
    "DigitsTraining",
    "EtaGrid",
    "diversity_measures",
    "edge_fraction",
    "per_seed_min",
    "rename_results",
    "sweep_digits",
    "tidy",
    "train_points",
]

BASE_DEPTH = 8
#: Depth fractions λ over which d² is averaged, and the largest ε (the paper's Figs. 17–19).
DIVERSITY_LAMBDAS = (0.25, 0.5, 0.75)
EPS_MAX = 1 / 16


@dataclass(frozen=True, kw_only=True)
class DigitsTraining(ExperimentSizes):
    """Training settings every digits experiment has (read by :func:`train_points`).

    Attributes
    ----------
    seeds : int
        Independent initialisations (and batch orders) per configuration.
    width, steps, batch : int
        Width n, optimizer steps and examples per step.
    window : int
        Last steps whose training loss is averaged into the LogLoss.
    task : str
        Dataset name (:func:`limitsim.data.load_dataset`).
    """

    seeds: int
    width: int
    steps: int
    batch: int
    window: int
    task: str = "digits"


@dataclass(frozen=True, kw_only=True)
class DepthGrid(DigitsTraining):
    """Digits training over a grid of depths with one optimizer.

    Attributes
    ----------
    depths : tuple of int
        Depths L of the grid.
    optimizer : str
        ``sgd`` or ``adam``.
    base_eta : float
        Learning rate at log2_eta = 0: η = base_eta · 2^log2_eta.
    """

    depths: tuple[int, ...]
    optimizer: str
    base_eta: float


@dataclass(frozen=True, kw_only=True)
class EtaGrid(DepthGrid):
    """A :class:`DepthGrid` that also sweeps the learning rate.

    Attributes
    ----------
    log2_etas : tuple of float
        log2(η / base_eta) of the grid.
    """

    log2_etas: tuple[float, ...]


#: Training settings shared by every digits experiment in each profile (an experiment may set
#: its own steps; the paper profile sets each experiment's steps and window).  The quick
#: profile trains 120 steps to fit its ten-minute budget on 2 cores (the seeds stay at 8, the
#: least the claims report allows); the standard profile, derived from it, trains 200.
TRAINING: dict[str, dict[str, Any]] = {
    "tiny": {"seeds": 2, "width": 16, "batch": 8, "window": 2},
    "quick": {"seeds": 8, "width": 64, "batch": 32, "steps": 120, "window": 20},
    "standard": {"steps": 200},
    "paper": {"width": 256, "batch": 64},
}


def train_points(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Train the points of one architecture together (sweep function; module docstring)."""
    from limitsim.finite.train import train_finite_batch
    from limitsim.run import Record

    first = points[0]
    task = make_task(first)
    params = [
        preset(
            str(p.get("parametrization", "depth_mup")),
            eta=_base_eta(p) * 2.0 ** float(p["log2_eta"]),
            a=2.0 ** float(p["log2_a"]),
            optimizer=str(p.get("optimizer", "sgd")),
            base_depth=BASE_DEPTH,
        )
        for p in points
    ]
    steps = tuple(int(s) for s in first.get("record_steps", ()))
    record = None
    if steps:
        assert task.eval_X is not None
        backward = bool(first.get("record_backward", True))
        record = Record(steps=steps, probe=task.eval_X[0], backward=backward)
    runs = train_finite_batch(
        task,
        params,
        depth=int(first["depth"]),
        width=int(first["width"]),
        phi=str(first["phi"]),
        block=str(first.get("block", "post")),  # type: ignore[arg-type]
        block_depth=int(first.get("block_depth", 1)),
        pre_ln=bool(first.get("pre_ln", False)),
        seeds=[int(p["seed"]) for p in points],
        dtype="float32",
        record=record,
        eval_every=0,
    )
    checkpoints = tuple(int(s) for s in first.get("loss_checkpoints", ()))
    return [_summary(run, int(first["window"]), steps, checkpoints) for run in runs]


def _base_eta(point: dict[str, Any]) -> float:
    """``base_eta_<optimizer>`` when the grid mixes optimizers, else ``base_eta``."""
    key = f"base_eta_{point.get('optimizer', 'sgd')}"
    return float(point[key] if key in point else point["base_eta"])


def sweep_digits(
    context: Context | None,
    name: str,
    sizes: Mapping[str, Any],
    axes: dict[str, list[Any]],
    fixed: tuple[str, ...],
    batch_axes: tuple[str, ...],
) -> xr.Dataset:
    """:func:`train_points` over ``axes`` in the store ``name``, without recorded steps.

    The fixed keys ``fixed`` are taken from ``sizes`` and become the Dataset's attrs; points
    that differ only along ``batch_axes`` train together, at most ``sizes["batch_size"]``
    (default 8) at once.
    """
    from limitsim.sweeps.grid import Grid

    grid = Grid(axes=axes, fixed={key: sizes[key] for key in fixed})
    ds = sweep(
        context,
        name,
        train_points,
        grid,
        batch_axes=batch_axes,
        batch_size=int(sizes.get("batch_size", 8)),
    )
    ds = tidy(ds, ())
    ds.attrs = dict(grid.fixed)
    return ds


def _summary(
    run: Any, window: int, steps: tuple[int, ...], checkpoints: tuple[int, ...] = ()
) -> dict[str, Any]:
    """Log of the window-averaged training loss, at the end and at each checkpoint s (the
    ``window`` steps before s; NaN if the run diverged before s), and, when recorded, the
    diversity measures."""
    out: dict[str, Any] = {}
    if checkpoints:
        out["log_loss_at"] = np.array(
            [math.log(float(np.mean(run.loss[max(0, s - window) : s]))) for s in checkpoints]
        )
    if run.diverged:
        return out | {"log_loss": math.nan, "diverged": True}
    out["log_loss"] = math.log(float(np.mean(run.loss[-window:])))
    if steps:
        out.update(diversity_measures(run, steps))
    return out


def diversity_measures(run: Any, steps: tuple[int, ...]) -> dict[str, np.ndarray]:
    """``lag1`` (R,), ``kappa`` (R,) and ``d`` (R, ⌊L/16⌋) of a recorded run (module doc)."""
    from limitsim.measures import diversity_exponent, feature_diversity, lag_correlation

    L = run.recorded.depth
    ks = np.arange(1, math.floor(EPS_MAX * L + 1e-9) + 1)
    lag1 = np.full(len(steps), np.nan)
    kappa = np.full(len(steps), np.nan)
    d = np.full((len(steps), ks.size), np.nan)
    for r, t in enumerate(steps):
        if L >= 2 and run.recorded.dh_layers is not None:
            lag1[r] = lag_correlation(run, [1], step=t)[0]
        if ks.size:
            d[r] = feature_diversity(run, ks / L, lam=DIVERSITY_LAMBDAS, step=t)
        if ks.size >= 3 and np.all(d[r] > 0):
            kappa[r] = diversity_exponent(run, lam=DIVERSITY_LAMBDAS, step=t).kappa
    return {"lag1": lag1, "kappa": kappa, "d": d}


def per_seed_min(values: xr.DataArray, dims: tuple[str, ...]) -> xr.DataArray:
    """Minimum over ``dims`` of ``values`` for each seed separately (diverged NaN skipped).

    One number per seed, so arms that share seeds can be compared by paired differences
    (:func:`limitsim.stats.paired_interval`); a seed that diverged everywhere gives NaN.
    """
    return values.min(dims, skipna=True)


def edge_fraction(values: xr.DataArray, dim: str) -> float:
    """Fraction of the curves along ``dim`` (e.g. one per seed and depth) whose minimum is the
    first or last grid point: there the minimum over the grid is only a bound on the optimum.
    """
    filled = values.fillna(np.inf)
    index = filled.argmin(dim)
    ok = values.notnull().any(dim)
    at_edge = ((index == 0) | (index == values.sizes[dim] - 1)) & ok
    return float(at_edge.sum() / max(int(ok.sum()), 1))


def tidy(ds: xr.Dataset, steps: tuple[int, ...], prefix: str = "") -> xr.Dataset:
    """Name the extra dimensions of the sweep's diversity results: ``step`` and ``k``.

    ``lag1``/``kappa`` (…, R) and ``d`` (…, R, K) come back with dimensions ``<name>_dim0``
    (the recorded steps) and ``d_dim1`` (ε = k/L, k = 1..K), ``log_loss_at`` (…, C) with
    ``log_loss_at_dim0`` (the loss checkpoints, renamed ``checkpoint``; its coordinate is
    set by the caller); variables get ``prefix``.
    """
    names = {
        "lag1_dim0": "step",
        "kappa_dim0": "step",
        "d_dim0": "step",
        "d_dim1": "k",
        "log_loss_at_dim0": "checkpoint",
    }
    variables = ("log_loss", "log_loss_at", "lag1", "kappa", "d", "status")
    return rename_results(ds, names, variables, prefix, steps, step_dim="step", k_dim="k")


def rename_results(
    ds: xr.Dataset,
    names: Mapping[str, str],
    variables: tuple[str, ...],
    prefix: str,
    steps: tuple[int, ...],
    *,
    step_dim: str,
    k_dim: str,
) -> xr.Dataset:
    """The ``variables`` of ``ds`` present in it, named ``prefix + name``, with their
    dimensions renamed by ``names``; ``step_dim`` gets the coordinate ``steps`` and ``k_dim``
    the coordinate 1..K."""
    out = {}
    for var in variables:
        if var in ds:
            da = ds[var]
            out[f"{prefix}{var}"] = da.rename({k: v for k, v in names.items() if k in da.dims})
    tidied = xr.Dataset(out)
    if step_dim in tidied.dims:
        tidied = tidied.assign_coords({step_dim: list(steps)})
    if k_dim in tidied.dims:
        tidied = tidied.assign_coords({k_dim: np.arange(1, tidied.sizes[k_dim] + 1)})
    return tidied
