"""Route 1 of the diversity experiment: the exact n = ∞ limit of a linear resnet.

:func:`limit_point` is the sweep function of one (parametrization, depth) point (the setting is
described in :mod:`limitsim.experiments.diversity`'s docstring), :func:`tidy_limit` names the
dimensions of its results; :func:`record_steps` gives the recorded times of both routes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from limitsim.experiments._common import preset
from limitsim.experiments._digits import BASE_DEPTH, DIVERSITY_LAMBDAS, check_failures

__all__ = ["LIMIT_A", "limit_point", "record_steps", "regression_task", "tidy_limit"]

#: The multiplier a = 8^{-1/2} (a² L0 = 1, see the diversity docstring).
LIMIT_A = 8**-0.5


def record_steps(steps: int) -> tuple[int, ...]:
    """The recorded times: T/10, T/2 and T (the paper's t = 100, 500, 1000 of 1000)."""
    return tuple(sorted({max(1, steps // 10), max(1, steps // 2), steps}))


def regression_task(*, steps: int, n_points: int, d_in: int, target_scale: float) -> Any:
    """Full-batch regression of random unit-norm inputs onto ±``target_scale`` (seed 0)."""
    from limitsim.task import Task

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_points, d_in))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = target_scale * rng.choice([-1.0, 1.0], size=(n_points, 1))
    return Task.full_batch(X, Y, steps, loss="mse", name=f"regression({n_points}, ±{target_scale})")


def limit_point(point: dict[str, Any]) -> dict[str, Any]:
    """Train the exact linear limit of one (parametrization, depth) (sweep function)."""
    from limitsim.linear_limit import linear_limit
    from limitsim.measures import diversity_exponent, feature_diversity
    from limitsim.run import Record

    T = int(point["limit_steps"])
    task = regression_task(
        steps=T,
        n_points=int(point["n_points"]),
        d_in=int(point["d_in"]),
        target_scale=float(point["target_scale"]),
    )
    param = preset(
        str(point["parametrization"]),
        eta=float(point["limit_eta"]),
        a=LIMIT_A,
        base_depth=BASE_DEPTH,
    )
    L = int(point["depth"])
    steps = record_steps(T)
    run = linear_limit(task, param, depth=L, record=Record(steps=steps, backward=False))
    if run.diverged:
        return {"final_loss": math.nan, "diverged": True}
    ks = np.arange(1, L // 16 + 1)
    d = np.stack([feature_diversity(run, ks / L, lam=DIVERSITY_LAMBDAS, step=t) for t in steps])
    kappa = np.full((2, len(steps)), np.nan)
    if ks.size >= 3:
        for r, t in enumerate(steps):
            fit = diversity_exponent(run, lam=DIVERSITY_LAMBDAS, step=t)
            kappa[:, r] = fit.kappa, fit.kappa_se
    return {"final_loss": float(run.loss[-1]), "kappa": kappa[0], "kappa_se": kappa[1], "d": d}


def tidy_limit(ds: xr.Dataset, steps: tuple[int, ...]) -> xr.Dataset:
    """Limit results with dimensions ``limit_depth``, ``limit_step`` and ``limit_k``."""
    check_failures(ds)
    names = {
        "depth": "limit_depth",
        "kappa_dim0": "limit_step",
        "kappa_se_dim0": "limit_step",
        "d_dim0": "limit_step",
        "d_dim1": "limit_k",
    }
    out = {}
    for var in ("final_loss", "kappa", "kappa_se", "d", "status"):
        if var in ds:
            da = ds[var]
            out[f"limit_{var}"] = da.rename({k: v for k, v in names.items() if k in da.dims})
    tidied = xr.Dataset(out)
    if "limit_step" in tidied.dims:
        tidied = tidied.assign_coords(limit_step=list(steps))
    if "limit_k" in tidied.dims:
        tidied = tidied.assign_coords(limit_k=np.arange(1, tidied.sizes["limit_k"] + 1))
    return tidied
