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
``seeds − 1`` degrees of freedom: of the seed-mean outputs f_t (t ≥ 1), of the log of the
seed-mean loss (:func:`~limitsim.experiments.limit_transfer.seed_mean_log`) per log2 η and
depth, and of the rows' slope of the per-seed optimal log2 η against log2 L
(:func:`~limitsim.experiments._common.optimum_trend`) against the slope of the exact curves'
optima.  Within 10% of 1 is calibrated (``tests/test_particle_calibration.py`` checks three of
these points over 200 repetitions).
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from limitsim import Parametrization, linear_limit
from limitsim.experiments import limit_transfer as lt
from limitsim.experiments._common import optimum_trend

SIZES = lt.QUICK
WINDOW = [-1.0 + 0.5 * i for i in range(7)]


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
    exact_slope = optimum_trend(WINDOW, exact_ll[:, :, None], depths).slopes[0]
    print(f"{full.shape[0]} repetitions of {units} seeds; exact optimum slope {exact_slope:.4f}")
    for name, f in (("N", full), ("N/2", half), ("2 f_N - f_N/2", 2 * full - half)):
        mean = f[..., 1:, :].mean(axis=3)
        se = f[..., 1:, :].std(axis=3, ddof=1) / math.sqrt(units)
        z_f = (mean - exact_f[None, :, :, 1:]) / se
        log_loss = lt.log_losses(f, y)
        loss = np.exp(log_loss)
        m = np.nanmean(loss, axis=-1)
        se_log = np.nanstd(loss, axis=-1, ddof=1) / np.sqrt(np.isfinite(loss).sum(-1)) / m
        z_l = (np.log(m) - exact_ll) / se_log
        slopes = []
        for rep in range(f.shape[0]):
            s = optimum_trend(WINDOW, log_loss[rep], depths).slopes
            s = s[np.isfinite(s)]
            slopes.append((s.mean() - exact_slope) / (s.std(ddof=1) / math.sqrt(s.size)))
        print(f"== {name}")
        print(f"  f:        all {_rms(z_f) / t_sd:.3f}")
        for label, z in (("f", z_f), ("log loss", z_l)):
            by_eta = [f"{_rms(z[:, :, e]) / t_sd:.2f}" for e in range(len(WINDOW))]
            by_depth = [f"{_rms(z[:, i]) / t_sd:.2f}" for i in range(len(depths))]
            print(f"  {label:9s} by log2 η {WINDOW}: {by_eta}")
            print(f"  {label:9s} by depth {depths}: {by_depth}")
        z_s = np.array(slopes)
        print(f"  slope of the optimum: RMS {_rms(z_s) / t_sd:.2f}, mean z {np.mean(z_s):+.2f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:
        run(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1:2] == ["report"]:
        report(sys.argv[2:])
    else:
        raise SystemExit(__doc__)
