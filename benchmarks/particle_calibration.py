"""Calibration of the n = ∞ transfer rows' Monte Carlo intervals over their whole grid.

Usage::

    python benchmarks/particle_calibration.py run START STOP OUT.npz   # repetitions START..STOP-1
    python benchmarks/particle_calibration.py report OUT1.npz [OUT2.npz ...]

``run`` forms, on the exact linear limit (φ = identity, SGD, :func:`limitsim.linear_limit`),
what :mod:`limitsim.experiments.limit_transfer` forms at its quick sizes, at every depth and at
every log2 η of ``WINDOW`` (around the linear limit's optimum, −0.2 to 0.35, and past it):
per repetition, ``seeds`` independent seeds, each simulated at ``N = n_particles`` and at
``N/2`` (the two simulations of :func:`~limitsim.experiments.limit_transfer.limit_point`).  It
saves both raw outputs after every repetition (several processes may run disjoint ranges).

``report`` prints, for one simulation at N, one at N/2 and the extrapolation ``2 f_N − f_{N/2}``
(what the rows use), the RMS of the z-scores against the exact limit over Student's t s.d. with
``seeds − 1`` degrees of freedom: of the seed-mean outputs f_t (t ≥ 1); of the log of the
limit's loss estimated from the seeds
(:func:`~limitsim.experiments.limit_transfer.seed_mean_log`) per log2 η and depth, with the
median |z| against t's and the ratio of the estimate's s.d. over repetitions to the RMS of its
standard error (the scale of the plotted ±1 SE bands); and of the rows' slope of the per-seed
optimal log2 η against log2 L and shift of the optimum over the last doubling
(:func:`~limitsim.experiments._common.optimum_trend`, with :func:`~limitsim.stats.argmin_fit`
and with :func:`~limitsim.stats.spline_argmin`, which the rows use) against the same
statistics of the exact curves.  Within 10% of 1 is calibrated
(``tests/test_particle_calibration.py`` checks three of these points over 200 repetitions).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from limitsim import Parametrization, linear_limit
from limitsim.experiments import limit_transfer as lt
from limitsim.experiments._common import optimum_trend
from limitsim.stats import spline_argmin

SIZES = lt.QUICK
WINDOW = [-1.0 + 0.5 * i for i in range(7)]
#: Median of |t| with seeds − 1 = 7 degrees of freedom.
T_MEDIAN_ABS = float(stats.t.ppf(0.75, SIZES.seeds - 1))


def _point() -> dict[str, object]:
    point = {key: SIZES[key] for key in lt.POINT_KEYS}
    point.update(phi="linear", optimizer="sgd")
    return point


def run(start: int, stop: int, out: str) -> None:
    """Raw outputs (reps, depth, η, seed, T, B) at N and N/2, saved after each repetition."""
    point = _point()
    units = SIZES.seeds
    full, half = [], []
    begin = time.perf_counter()
    for rep in range(start, stop):
        outputs = [
            [
                [
                    lt.limit_point({**point, "depth": L, "log2_eta": e, "seed": rep * units + u})
                    for u in range(units)
                ]
                for e in WINDOW
            ]
            for L in SIZES.depths
        ]
        for name, store in (("f_full", full), ("f_half", half)):
            store.append([[[seed[name] for seed in row] for row in depth] for depth in outputs])
        np.savez(out, f_full=np.array(full), f_half=np.array(half))
        print(f"repetition {rep}: {time.perf_counter() - begin:.0f} s", flush=True)


def _exact() -> tuple[np.ndarray, np.ndarray]:
    """Exact outputs (depth, η, T, B) and log losses (depth, η) of the linear limit."""
    task = lt.make_task(_point())
    f = np.array(
        [
            [
                linear_limit(task, Parametrization.depth_mup(eta=2.0**e), depth=L).f[..., 0]
                for e in WINDOW
            ]
            for L in SIZES.depths
        ]
    )
    y = task.Y[0, :, 0]
    return f, np.log(0.5 * ((f - y) ** 2).mean(-1)[..., 1:].mean(-1))


def _rms(z: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean(np.square(z))))


def report(paths: list[str]) -> None:
    """Print the z-score RMS over t's s.d. for N, N/2 and the extrapolation."""
    parts = [np.load(p) for p in paths]
    full = np.concatenate([p["f_full"][: len(p["f_half"])] for p in parts])
    half = np.concatenate([p["f_half"] for p in parts])
    exact_f, exact_ll = _exact()
    y = lt.make_task(_point()).Y[0, :, 0]
    units = full.shape[3]
    t_sd = math.sqrt((units - 1) / (units - 3))
    depths = list(SIZES.depths)
    print(f"{full.shape[0]} repetitions of {units} seeds")
    for name, f in (("N", full), ("N/2", half), ("2 f_N - f_N/2", 2 * full - half)):
        mean = f[..., 1:, :].mean(axis=3)
        se = f[..., 1:, :].std(axis=3, ddof=1) / math.sqrt(units)
        z_f = (mean - exact_f[None, :, :, 1:]) / se
        log_loss = lt.log_losses(f, y)
        mean_log, se_log = lt.seed_mean_log(f, y)  # (reps, depth, η)
        z_l = (mean_log - exact_ll) / se_log
        print(f"== {name}")
        print(f"  f:        all {_rms(z_f) / t_sd:.3f}")
        for label, z in (("f", z_f), ("log loss", z_l)):
            by_eta = [f"{_rms(z[:, :, e]) / t_sd:.2f}" for e in range(len(WINDOW))]
            by_depth = [f"{_rms(z[:, i]) / t_sd:.2f}" for i in range(len(depths))]
            print(f"  {label:9s} by log2 η {WINDOW}: {by_eta}")
            print(f"  {label:9s} by depth {depths}: {by_depth}")
        with np.errstate(invalid="ignore"):
            tables = {
                "z RMS / t's s.d.": np.sqrt(np.nanmean(z_l**2, axis=0)) / t_sd,
                "median |z| / t's": np.nanmedian(np.abs(z_l), axis=0) / T_MEDIAN_ABS,
                "s.d. of log loss / RMS of its SE": np.nanstd(mean_log, axis=0)
                / np.sqrt(np.nanmean(se_log**2, axis=0)),
            }
        for title, table in tables.items():
            print(f"  log loss, {title} (rows: depth {depths}; columns: log2 η {WINDOW})")
            for L, row in zip(depths, table, strict=True):
                print(f"    {L:4d} " + " ".join(f"{v:5.2f}" for v in row))
        for locator, locate in (("argmin_fit", None), ("spline_argmin", spline_argmin)):
            z_slope, z_shift = _rows(log_loss, exact_ll, locate)
            print(
                f"  {locator}: slope of the optimum RMS {_rms(z_slope) / t_sd:.2f} "
                f"(mean z {np.mean(z_slope):+.2f}), last-doubling shift RMS "
                f"{_rms(z_shift) / t_sd:.2f} (mean z {np.mean(z_shift):+.2f})"
            )


def _rows(
    log_loss: np.ndarray, exact_ll: np.ndarray, locate: Callable[..., Any] | None
) -> tuple[np.ndarray, np.ndarray]:
    """z of the rows' slope and last-doubling shift per repetition (t over seeds)."""
    depths = list(SIZES.depths)
    exact = optimum_trend(WINDOW, exact_ll[:, :, None], depths, locate=locate)
    z_slope, z_shift = [], []
    for rep in range(log_loss.shape[0]):
        trend = optimum_trend(WINDOW, log_loss[rep], depths, locate=locate)
        slopes = trend.slopes[np.isfinite(trend.slopes)]
        z_slope.append(
            (slopes.mean() - exact.slopes[0]) / (slopes.std(ddof=1) / math.sqrt(slopes.size))
        )
        shift = trend.optima[-1] - trend.optima[-2]
        exact_shift = exact.optima[-1, 0] - exact.optima[-2, 0]
        z_shift.append(
            (np.mean(shift) - exact_shift) / (np.std(shift, ddof=1) / math.sqrt(shift.size))
        )
    return np.array(z_slope), np.array(z_shift)


if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:
        run(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1:2] == ["report"]:
        report(sys.argv[2:])
    else:
        raise SystemExit(__doc__)
