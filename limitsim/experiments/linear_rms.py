"""Coordinate sizes of a trained linear resnet against width and depth (the paper's Figs. 8, 9).

Task: scikit-learn's digits, inputs projected on their top ``d_in`` principal components and
scaled to unit norm, scalar target ±1 (even/odd digit), squared loss, SGD with Depth-µP
(a = 1, η = ``eta``) for ``max(steps) + 1`` steps (the extra step lets ``f_eval`` hold the
output after the last recorded update).  The probe is a held-out digit.

Quantities (``theory/algorithms.md`` §3, coordinate checks): the RMS ``sqrt(⟨x^l|x^l⟩)`` of the
probe's features at the input layer (l = 0) and at l/L = 1/4, 1/2, 3/4, 1, and the size
``|f|`` of its output, after 1, 5 and 10 updates.

- Fig. 8: finite networks (:func:`limitsim.train_finite`, φ = linear, depth ``depth``) against
  width, mean ± standard error over seeds, with the exact n = ∞ limit
  (:func:`limitsim.linear_limit`) as dashed lines.
- Fig. 9: the n = ∞ limit alone against depth: the curves flatten (convergence in L).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from limitsim.experiments._common import seed_axis
from limitsim.experiments.profiles import ExperimentSizes
from limitsim.linear.limit import linear_limit
from limitsim.parametrization import Parametrization
from limitsim.run import Record, Run
from limitsim.stats import exact, t_interval
from limitsim.task import Task

NAME = "linear_rms"
TITLE = "Linear resnets: feature sizes vs width (finite → limit) and vs depth (Figs. 8, 9)"
QUANTITIES = ("input", "l/L=1/4", "l/L=1/2", "l/L=3/4", "l/L=1", "output")
FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True, kw_only=True)
class Sizes(ExperimentSizes):
    """Sizes of the linear_rms experiment; the fields are read by :func:`run`."""

    widths: tuple[int, ...]
    seeds: int
    depth: int
    depths: tuple[int, ...]
    steps: tuple[int, ...]
    batch: int
    d_in: int
    eta: float


#: tiny (tests), quick (2 cores, minutes) and paper (a cluster), each derived from the last.
TINY = Sizes(
    widths=(64, 128),
    seeds=2,
    depth=8,
    depths=(4, 8, 16),
    steps=(1, 5, 10),
    batch=4,
    d_in=4,
    eta=0.5,
)
QUICK = replace(
    TINY,
    widths=(128, 256, 512, 1024),
    seeds=8,
    depth=64,
    depths=(16, 32, 64, 128, 256, 512),
    batch=8,
    d_in=8,
)
PAPER = replace(
    QUICK,
    widths=(128, 256, 512, 1024, 2048, 4096, 8192),
)
STANDARD = replace(QUICK)
SIZES = {"tiny": TINY, "quick": QUICK, "standard": STANDARD, "paper": PAPER}


def make_task(*, steps: int, batch: int, d_in: int, seed: int = 0) -> tuple[Task, np.ndarray]:
    """The digits task of the module docstring and its probe (a held-out digit)."""
    from limitsim.data import digits

    base = digits(steps=steps, batch_size=batch, seed=seed, loss="mse", eval_fraction=0.2)
    assert base.eval_X is not None
    _, _, vt = np.linalg.svd(base.X.reshape(-1, base.d_in), full_matrices=False)
    project = vt[:d_in].T

    def prepare(x: np.ndarray) -> np.ndarray:
        z = x @ project
        out: np.ndarray = z / np.linalg.norm(z, axis=-1, keepdims=True)
        return out

    labels = np.argmax(base.Y, axis=-1)
    Y = np.where(labels % 2 == 0, 1.0, -1.0)[..., None]
    probe = prepare(base.eval_X[0])
    task = Task.from_batches(
        prepare(base.X),
        Y,
        loss="mse",
        eval_X=probe[None, :],
        name=f"digits, {d_in} PCA dims, even/odd ±1",
    )
    return task, probe


#: Seeds trained per call, one per thread: the float64 weights of 8 nets of width 1024 and
#: depth 64 would take 4 GiB, and first touches of fresh memory cost about 7 s per GiB on
#: virtual machines whose memory the host backs lazily.  The numbers do not depend on it
#: (:func:`~limitsim.finite.train.train_finite_batch`).
SEEDS_PER_CALL = 2


def _sizes(run: Run, L: int, steps: tuple[int, ...]) -> np.ndarray:
    """(steps, quantities) array of RMS values from a run recorded at ``steps``."""
    rec = run.recorded
    assert rec is not None and run.f_eval is not None
    layers = [round(fr * L) for fr in FRACTIONS]
    out = np.empty((len(steps), len(QUANTITIES)))
    for i, t in enumerate(steps):
        diag = np.diagonal(rec.x_layers[rec.step_index(t)])
        out[i, :-1] = np.sqrt(diag[layers])
        out[i, -1] = np.abs(run.f_eval[t, 0, 0])
    return out


def run(sizes: Mapping[str, Any], context: Any = None) -> xr.Dataset:
    """Finite networks against width at ``depth``, and the limit against width and depth."""
    from limitsim.finite.train import train_finite_batch

    steps = tuple(int(t) for t in sizes["steps"])
    widths, depths = list(sizes["widths"]), list(sizes["depths"])
    seeds, L = int(sizes["seeds"]), int(sizes["depth"])
    task, probe = make_task(
        steps=max(steps) + 1, batch=int(sizes["batch"]), d_in=int(sizes["d_in"])
    )
    param = Parametrization.depth_mup(eta=float(sizes["eta"]))
    record = Record(steps=steps, probe=probe, backward=False)
    seed_values = seed_axis(context, seeds)
    finite = np.full((len(widths), seeds, len(steps), len(QUANTITIES)), np.nan)
    for i, n in enumerate(widths):
        for first in range(0, seeds, SEEDS_PER_CALL):  # a few float64 nets at a time (memory)
            runs = train_finite_batch(
                task, param, depth=L, width=int(n), phi="linear", record=record, threads=2,
                seeds=seed_values[first : first + SEEDS_PER_CALL],
            )  # fmt: skip
            finite[i, first : first + len(runs)] = [_sizes(out, L, steps) for out in runs]
    limit = _sizes(linear_limit(task, param, depth=L, record=record), L, steps)
    by_depth = np.stack(
        [
            _sizes(linear_limit(task, param, depth=int(D), record=record), int(D), steps)
            for D in depths
        ]
    )
    coords = {
        "width": widths,
        "seed": seed_values,
        "step": list(steps),
        "quantity": list(QUANTITIES),
        "depth": depths,
    }
    return xr.Dataset(
        {
            "finite": (("width", "seed", "step", "quantity"), finite),
            "limit": (("step", "quantity"), limit),
            "limit_by_depth": (("depth", "step", "quantity"), by_depth),
        },
        coords=coords,
        attrs={
            "task": task.name,
            "parametrization": f"depth_mup, a = 1, eta = {param.eta}",
            "finite_depth": L,
        },
    )


def plot(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """Top row: RMS vs width (finite, mean ± SE; limit dashed).  Bottom: limit vs depth."""
    from limitsim.plotting import new_figure, save_figure

    steps = [int(t) for t in ds.step.values]
    fig, axes = new_figure(len(steps), 2, width=3.0, height=2.6)
    widths = ds.width.values.astype(float)
    depths = ds.depth.values.astype(float)
    seeds = ds.sizes["seed"]
    for col, t in enumerate(steps):
        top, bottom = axes[0, col], axes[1, col]
        for k, q in enumerate(QUANTITIES):
            color = f"C{k}"
            values = ds.finite.sel(step=t, quantity=q).values
            mean = values.mean(axis=1)
            se = values.std(axis=1, ddof=1) / np.sqrt(seeds) if seeds > 1 else 0 * mean
            top.errorbar(widths, mean, yerr=se, color=color, marker="o", ms=3, label=q)
            top.axhline(float(ds.limit.sel(step=t, quantity=q)), color=color, ls="--", lw=1)
            bottom.plot(
                depths,
                ds.limit_by_depth.sel(step=t, quantity=q),
                color=color,
                marker="o",
                ms=3,
                label=q,
            )
        top.set_xscale("log", base=2)
        top.set_yscale("log")
        top.set_title(f"after {t} updates, depth {ds.attrs['finite_depth']}")
        top.set_xlabel("width n")
        bottom.set_xscale("log", base=2)
        bottom.set_yscale("log")
        bottom.set_title(f"after {t} updates, n = ∞")
        bottom.set_xlabel("depth L")
    axes[0, 0].set_ylabel("RMS (|f| for the output)")
    axes[1, 0].set_ylabel("RMS (|f| for the output)")
    axes[1, 0].legend(loc="center right", ncols=2)
    fig.suptitle(
        f"Linear resnet, SGD, {ds.attrs['parametrization']}; {ds.attrs['task']}\n"
        "solid: finite width (mean ± SE); dashed: n = ∞; bottom: n = ∞ against depth"
    )
    return save_figure(fig, out_dir, NAME)


def claims(ds: xr.Dataset) -> list[Any]:
    """Fig. 8: finite feature RMS at the largest width match the limit; Fig. 9: flat in depth.

    Fig. 8 is scored per network: for each seed, the RMS over steps and feature quantities
    (input and hidden layers, whose RMS concentrate) of the relative deviation from the limit,
    with a t interval over seeds.  The output's ``|f|`` is plotted but not scored (it is a
    single O(1) fluctuating coordinate, not an RMS).
    """
    from limitsim.report import Claim

    features = slice(0, len(QUANTITIES) - 1)
    values = ds.finite.isel(width=-1, quantity=features).values  # (seed, step, quantity)
    limit = ds.limit.isel(quantity=features).values
    per_seed = np.sqrt(np.mean(((values - limit) / limit) ** 2, axis=(1, 2)))
    by_depth = ds.limit_by_depth.values
    change = np.abs(by_depth[-1] - by_depth[-2]) / np.abs(by_depth[-1])
    width = int(ds.width.values[-1])
    return [
        Claim(
            experiment=NAME,
            claim="finite-width feature RMS match the Γ/C infinite-width prediction",
            source="paper: Fig. 8: finite widths approach the dashed infinite-width lines",
            quantity=f"per-network RMS relative deviation of the feature RMS from the limit "
            f"(steps {[int(t) for t in ds.step.values]}, 5 layers), width {width}, linear, depth "
            f"{ds.attrs['finite_depth']}, SGD",
            estimate=t_interval(per_seed),
            paper="dashed lines match as width grows",
            low=0.0,
            high=0.1,
            range_reason="10%; n^-1/2 fluctuations are ≈ 3% at n = 1024",
        ),
        Claim(
            experiment=NAME,
            claim="the infinite-width curves are flat in depth quickly",
            source="paper: Fig. 9: the Γ/C curves flatten quickly in depth",
            quantity=f"max relative change of the n = ∞ RMS, depth {int(ds.depth.values[-2])} "
            f"→ {int(ds.depth.values[-1])}",
            estimate=exact(float(change.max())),
            paper="convergence in L",
            low=0.0,
            high=0.05,
            range_reason="5%: O(1/L) corrections at L = 256",
        ),
    ]
