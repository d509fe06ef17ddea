"""Learning-rate transfer across depth at n = ∞ (beyond the paper: the n = ∞ analogue of Fig. 10).

The infinite-width limit is trained directly by the particle simulator (route R3,
:func:`limitsim.simulate_limit`) on a short full-batch regression (:func:`limitsim.data.few_point`:
``n_points`` unit-norm inputs, N(0, 1) targets, squared loss, ``steps`` steps), φ = ``phi``,
frozen input and output layers, for every (optimizer, depth L, log2 η, seed).  The plotted
quantity is ``log_loss = log mean_{t=1..T-1} loss_t``: the log of the training loss averaged
over the trajectory after the first update (the loss at t = 0 does not depend on η), with the
Monte Carlo variance of f removed from each seed's squared loss (:func:`log_losses`).
Parametrizations use base depth 1 and a = 1 (branch multiplier ``L^{-1/2}``).

**Block-only is Depth-µP with a depth-dependent learning rate** (derivation).  Both have
α = 1/2, so the same branch multiplier ``L^{-1/2}`` and, for Adam, the same gradient scale
``n L^{1/2}`` (:meth:`~limitsim.parametrization.Parametrization.gradient_scale` depends on α
only).  The learning rates differ only through γ: SGD's raw rate is ``η L^{α-γ}`` (``η`` for
Depth-µP, ``η L^{1/2}`` for block-only) and Adam's update scale is ``η L^{-γ}`` (``η L^{-1/2}``
and ``η``).  Hence block-only at (η, L) is *exactly* Depth-µP at (η L^{1/2}, L), for SGD and
Adam, at every width including n = ∞:

    loss_block_only(log2 η, L) = loss_depth_mup(log2 η + ½ log2 L, L),
    η*_block_only(L) = η*_depth_mup(L) · L^{-1/2}.

So the optimum's slope against log2 L is the Depth-µP slope minus 1/2.  If Depth-µP
transfers (slope 0: its n = ∞ limit has an L → ∞ limit, Claim 7.5), block-only's optimum
drifts left by 1/2 per doubling of L (the paper's Fig. 10 middle for Adam at finite width).
The block-only curves are therefore not simulated separately: they are the Depth-µP runs
re-read at η L^{-1/2} (``tests/test_experiment_limit_transfer.py`` checks the identity on
direct simulations), on a grid shifted by ½ log2 L (a multiple of the 0.5 grid step for
depths that are powers of two).

**Monte Carlo intervals.**  Each seed is two independent particle simulations, of
``N = n_particles`` and ``N/2`` particles (one replica each: the seeds are the independent
units), extrapolated to N = ∞ linearly in 1/N (:func:`limit_point`): a simulation's outputs
carry a bias ``b/N`` (K/N_r in :mod:`limitsim.particles.simulate`, K = steps · n_points hats
per matrix) that the seed mean does not remove, ``2 f_N − f_{N/2}`` removes it to first
order, at 1.5 times the cost of one simulation.  The seed's simulations are shared by all η of
that (optimizer, depth, seed) (common random numbers: the same base samples and innovations at
every η, so one seed's curve over η is smooth).  The plotted log loss is the log of an
unbiased estimate of the limit's loss, a U-statistic over pairs of seeds, with a jackknife
standard error (:func:`seed_mean_log`).  Per seed and depth the optimum is
:func:`limitsim.stats.spline_argmin` of that seed's curve; the slope of the optimum against
log2 L is fitted per seed and its interval is Student's t over seeds
(:func:`~limitsim.experiments._common.optimum_trend`), as for finite networks in
:mod:`limitsim.experiments.transfer`.

Calibration on the exact linear limit at the quick sizes (φ = identity, SGD, z-scores against
the exact answer; ``benchmarks/particle_calibration.py`` over every depth and η of a window
around the optimum, ``tests/test_particle_calibration.py``; the measured ratios are in
``benchmarks/README.md``, "Calibration of the n = ∞ transfer rows").  The extrapolation makes
the intervals of the outputs, of the log losses (where the loss does not explode, two grid
steps past the optimum at the smallest depths) and of both rows (slope and last-doubling
shift) calibrated; a single simulation's are too narrow and biased.
:func:`~limitsim.stats.spline_argmin` is used rather than :func:`~limitsim.stats.argmin_fit`,
whose parabola is biased on such asymmetric curves (toward small η) and gives a biased slope
with too narrow intervals, even after the extrapolation.  Adam uses ``n_partners`` sampled
partner particles (:func:`limitsim.simulate_limit`; an extra O(1/n_partners) bias through φ,
not removed by the extrapolation in N), which has no exact reference to calibrate against.

Claims (``extension``: the paper shows finite networks only), per optimizer:

- Depth-µP: the slope of the optimal log2 η against log2 L lies in [−0.25, 0.25], and so does
  the shift of the optimum over the last doubling of L (paired over seeds);
- block-only (1/2, 0): the slope is ≤ −0.25 (the derivation gives Depth-µP's slope − 1/2).
  ±0.25 is half the L^{-1/2} shift, the midpoint between the two hypotheses (as in
  :mod:`limitsim.experiments.transfer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from limitsim.experiments._common import Context, eta_windows_filter, seed_axis, sweep
from limitsim.experiments._limit_transfer_claims import NAME, PARAM_LABELS, PARAMS, shift, trend
from limitsim.experiments._limit_transfer_claims import claims as claims  # of run's data
from limitsim.experiments._limit_transfer_finite import run_finite
from limitsim.experiments._limit_transfer_losses import log_losses, seed_mean_log
from limitsim.experiments._synthetic import FewPointTask, few_point_task
from limitsim.experiments.profiles import log2_grid
from limitsim.plotting import (
    depth_colors,
    errorbar_estimates,
    figure_legend,
    new_figure,
    save_figure,
)

TITLE = "Learning-rate transfer across depth at n = ∞ (particle simulator; Fig. 10 analogue)"
#: Grid step of log2 η: block-only's grid is Depth-µP's shifted by ½ log2 L.
GRID_STEP = 0.5


@dataclass(frozen=True, kw_only=True)
class Sizes(FewPointTask):
    """Sizes of the n = ∞ transfer experiment; the fields are read by :func:`run`.

    ``log2_etas`` are Depth-µP's windows of log2 η per optimizer (step 0.5); ``depths`` are
    powers of two; ``n_particles`` is per seed, in ``n_replicas`` replicas: by default one
    system of all of them (the seeds are the independent units, and one replica has half the
    O(K/N_r) bias of two at the same cost; module docstring).  ``finite_widths`` are the
    widths of the finite networks whose optima are overlaid
    (:mod:`~limitsim.experiments._limit_transfer_finite`; none in quick, whose 10-minute
    budget they would exceed: a few-point batch costs a width-n network O(L n²) per step in
    weight updates whatever the batch); ``finite_batch`` learning rates train together.
    """

    optimizers: tuple[str, ...]
    depths: tuple[int, ...]
    log2_etas: Mapping[str, tuple[float, ...]]
    phi: str
    n_particles: int
    n_partners: int
    seeds: int
    n_replicas: int = 1
    finite_widths: tuple[int, ...] = ()
    finite_batch: int = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        if any(L < 1 or L & (L - 1) for L in self.depths):
            raise ValueError(f"depths must be powers of two, got {self.depths}")
        for opt, grid in self.log2_etas.items():
            steps = np.diff(np.asarray(grid, dtype=np.float64))
            if len(grid) < 3 or not np.allclose(steps, GRID_STEP):
                raise ValueError(
                    f"log2_etas[{opt!r}] must be ≥ 3 values in steps of {GRID_STEP}, got {grid}"
                )
        if set(self.optimizers) - set(self.log2_etas):
            raise ValueError(f"log2_etas needs a window for every optimizer {self.optimizers}")


#: tiny (tests), quick (2 cores, about a minute), standard and paper, each derived.
TINY = Sizes(
    optimizers=("sgd", "adam"),
    depths=(2, 4, 8),
    log2_etas={"sgd": log2_grid(1.0, 3.5), "adam": log2_grid(0.0, 2.5)},
    phi="relu",
    steps=4,
    n_points=4,
    d_in=16,
    task_seed=0,
    n_particles=512,
    n_partners=16,
    seeds=3,
    finite_widths=(16, 32),
)
QUICK = replace(
    TINY,
    depths=(4, 8, 16, 32, 64),
    log2_etas={"sgd": log2_grid(0.5, 4.5), "adam": log2_grid(-0.5, 3.5)},
    steps=6,
    n_particles=512,
    n_partners=32,
    seeds=8,
    finite_widths=(),
)
STANDARD = replace(
    QUICK,
    depths=(4, 8, 16, 32, 64, 128),
    n_particles=1024,
    finite_widths=(64, 128, 256),
)
PAPER = replace(
    QUICK,
    depths=(4, 8, 16, 32, 64, 128, 256, 512, 1024),
    log2_etas={"sgd": log2_grid(-1.0, 6.0), "adam": log2_grid(-2.0, 5.0)},
    n_particles=4096,
    n_partners=128,
    seeds=32,
    finite_widths=(128, 256, 512),
    finite_batch=1,
)
SIZES = {"tiny": TINY, "quick": QUICK, "standard": STANDARD, "paper": PAPER}
#: The sizes every point of the sweep carries (besides optimizer, depth, log2 η and seed).
POINT_KEYS = (
    "phi",
    "steps",
    "n_points",
    "d_in",
    "task_seed",
    "n_particles",
    "n_replicas",
    "n_partners",
)


def make_task(point: Mapping[str, Any]) -> Any:
    """The full-batch regression of a point, without evaluation inputs (training loss only)."""
    return few_point_task(point, evaluation=False)


def limit_point(point: dict[str, Any]) -> dict[str, Any]:
    """One seed's n = ∞ run under Depth-µP (sweep function): outputs ``f`` (T, B).

    Two independent simulations, of ``N = n_particles`` and ``N/2`` particles, extrapolated
    to N = ∞ linearly in 1/N: ``f = 2 f_N − f_{N/2}`` (``f_full``, ``f_half`` are returned too).
    The simulator's outputs carry a bias ``b/N + O(1/N²)`` (``K/N_r`` in
    :mod:`limitsim.particles.simulate`), which the extrapolation removes to first order, at
    1.5 times the cost of one simulation and about 2.4 times its standard deviation (module
    docstring).  The simulator's seed is derived from (seed, depth, optimizer) only, so every
    η of a seed uses the same random numbers.  ``f`` is NaN from a diverged step of either
    simulation on.
    """
    from limitsim.parametrization import Parametrization
    from limitsim.particles.simulate import simulate_limit
    from limitsim.sweeps.grid import point_seed

    optimizer = str(point["optimizer"])
    param = Parametrization.depth_mup(eta=2.0 ** float(point["log2_eta"]), optimizer=optimizer)
    rng = np.random.default_rng(point_seed(point, ("seed", "depth", "optimizer")))
    task = make_task(point)
    n_particles = int(point["n_particles"])
    f = {}
    diverged = False
    for name, n in (("f_full", n_particles), ("f_half", n_particles // 2)):
        run = simulate_limit(
            task,
            param,
            depth=int(point["depth"]),
            phi=str(point["phi"]),
            n_particles=n,
            n_replicas=int(point["n_replicas"]),
            n_partners=int(point["n_partners"]) if optimizer == "adam" else None,
            seed=rng,
            progress=False,
        )
        f[name] = run.f[..., 0]
        diverged |= run.diverged
    return {"f": 2.0 * f["f_full"] - f["f_half"], **f, "diverged": diverged}


def run(sizes: Mapping[str, Any], context: Context | None = None) -> xr.Dataset:
    """Depth-µP over (optimizer, depth, log2 η, seed); block-only by the identity (docstring).

    Returns a Dataset with ``log_loss`` (optimizer, param, depth, log2_eta, seed) on the union
    of both parametrizations' grids (NaN outside a curve's window) and ``f_depth_mup``
    (optimizer, depth, log2_eta, seed, step, example): Depth-µP's outputs.
    """
    from limitsim.sweeps.grid import Grid

    windows = {opt: list(sizes["log2_etas"][opt]) for opt in sizes["optimizers"]}
    grid = Grid(
        axes={
            "optimizer": list(sizes["optimizers"]),
            "depth": list(sizes["depths"]),
            "log2_eta": sorted({v for w in windows.values() for v in w}),
            "seed": seed_axis(context, int(sizes["seeds"])),
        },
        filters=[eta_windows_filter(windows)],
        fixed={key: sizes[key] for key in POINT_KEYS},
    )
    raw = sweep(context, NAME, limit_point, grid)
    f = raw.f.rename(f_dim0="step", f_dim1="example").transpose(
        "optimizer", "depth", "log2_eta", "seed", "step", "example"
    )
    f = f.drop_vars([c for c in f.coords if c not in f.dims])
    mup = xr.DataArray(
        log_losses(f.values, make_task(sizes).Y[0, :, 0]),
        dims=("optimizer", "depth", "log2_eta", "seed"),
        coords={d: f[d] for d in ("optimizer", "depth", "log2_eta", "seed")},
    )
    depths = [int(L) for L in sizes["depths"]]
    seeds = raw.seed.values
    axis, table = _param_table(mup, windows, depths, len(seeds))
    ds = xr.Dataset(
        {
            "log_loss": (("optimizer", "param", "depth", "log2_eta", "seed"), table),
            "f_depth_mup": f,
        },
        coords={
            "optimizer": list(windows),
            "param": list(PARAMS),
            "depth": depths,
            "log2_eta": axis,
            "seed": seeds,
        },
    )
    if sizes["finite_widths"]:
        finite = run_finite(sizes, context).rename(width="finite_width")
        ds["finite_log_loss"] = finite.reindex(log2_eta=axis)
    ds.attrs = {key: sizes[key] for key in POINT_KEYS}
    for opt, window in windows.items():
        ds.attrs[f"log2_etas_{opt}"] = window
    return ds


def _param_table(
    mup: xr.DataArray, windows: dict[str, list[float]], depths: list[int], n_seeds: int
) -> tuple[list[float], NDArray[np.float64]]:
    """Every parametrization's LogLoss on the union of their log2 η grids (NaN outside a
    curve's window), read off Depth-µP's by the identity ``shift`` (module docstring).

    Returns the union grid, shape (E,), and the table, shape (optimizer, param, depth, E, seed).
    """
    axis = sorted(
        {
            round(v + shift(p, L), 6)
            for w in windows.values()
            for v in w
            for p in PARAMS
            for L in depths
        }
    )
    table = np.full((len(windows), len(PARAMS), len(depths), len(axis), n_seeds), np.nan)
    for i, (opt, window) in enumerate(windows.items()):
        for j, param in enumerate(PARAMS):
            for k, L in enumerate(depths):
                values = mup.sel(optimizer=opt, depth=L, log2_eta=window)
                at = [axis.index(round(v + shift(param, L), 6)) for v in window]
                table[i, j, k, at] = values.transpose("log2_eta", "seed").values
    return axis, table


def plot(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """LogLoss vs log2 η per depth for each (optimizer, parametrization), and argmin vs L."""
    optimizers = [str(o) for o in ds.optimizer.values]
    depths = [int(L) for L in ds.depth.values]
    colors = depth_colors(depths)
    seeds = ds.sizes["seed"]
    y = make_task(ds.attrs).Y[0, :, 0]
    fig, axes = new_figure(len(PARAMS) + 1, len(optimizers), width=3.2, height=2.7)
    for row, opt in enumerate(optimizers):
        for col, param in enumerate(PARAMS):
            ax = axes[row, col]
            best = trend(ds, opt, param).per_depth()
            for L, optimum in zip(depths, best, strict=True):
                window = [float(v) for v in ds.attrs[f"log2_etas_{opt}"]]
                f = ds.f_depth_mup.sel(optimizer=opt, depth=L, log2_eta=window)
                mean, se = seed_mean_log(f.transpose("log2_eta", "seed", ...).values, y)
                x = np.array(window) + shift(param, L)
                ax.plot(x, mean, "o-", ms=2.5, color=colors[L], label=f"L = {L}")
                ax.fill_between(x, mean - se, mean + se, color=colors[L], alpha=0.25)
                ax.axvline(optimum.value, color=colors[L], lw=0.6, ls=":")
            ax.set_title(f"{PARAM_LABELS[param]}, {opt}, n = ∞", fontsize=9)
            ax.set_xlabel("log2 η")
            ax.set_ylabel("log mean training loss")
        ax = axes[row, -1]
        widths = [int(n) for n in ds.finite_width.values] if "finite_width" in ds.dims else []
        for k, param in enumerate(PARAMS):
            errorbar_estimates(
                ax,
                np.log2(depths),
                trend(ds, opt, param).per_depth(),
                marker="o",
                color=f"C{k}",
                label=f"{PARAM_LABELS[param]}, n = ∞",
            )
            for j, width in enumerate(widths):  # finite widths, lighter and offset to the left
                errorbar_estimates(
                    ax,
                    np.log2(depths) - 0.08 * (len(widths) - j),
                    trend(ds, opt, param, width).per_depth(),
                    marker="o",
                    mfc="none",
                    ms=3,
                    lw=0.8,
                    alpha=0.35 + 0.5 * (j + 1) / len(widths),
                    color=f"C{k}",
                    label=f"{PARAM_LABELS[param]}, n = {width}",
                )
        ax.set_title(f"optimal log2 η vs depth ({opt})", fontsize=9)
        ax.set_xlabel("log2 L")
        ax.set_ylabel("per-seed argmin log2 η, 95% CI")
        ax.legend(fontsize=6)
    figure_legend(fig, axes[0, 0])
    fig.suptitle(
        f"n = ∞ (particles, {ds.attrs['n_particles']} per seed), φ = {ds.attrs['phi']}, "
        f"{ds.attrs['n_points']}-point full-batch regression, {ds.attrs['steps']} steps\n"
        f"bands: ±1 SE over {seeds} seeds; dotted: mean per-seed optimum"
        + ("\nhollow: finite-width networks (float32), offset to the left" if widths else "")
    )
    return save_figure(fig, out_dir, NAME)
