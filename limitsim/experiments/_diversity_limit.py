"""Route 1 of the diversity experiment: the exact n = ∞ limit of a linear resnet.

:func:`regression_task` is its task (the setting is described in
:mod:`limitsim.experiments.diversity`'s docstring, whose ``limit_point`` is the sweep function,
named there in the sweep's list of built-in point functions), :func:`tidy_limit` names the
dimensions of its results; :func:`record_steps` gives the recorded times of both routes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from limitsim.experiments._digits import rename_results

__all__ = ["LIMIT_A", "record_steps", "regression_task", "tidy_limit"]

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


def tidy_limit(ds: xr.Dataset, steps: tuple[int, ...]) -> xr.Dataset:
    """Limit results with dimensions ``limit_depth``, ``limit_step`` and ``limit_k``."""
    names = {
        "depth": "limit_depth",
        "kappa_dim0": "limit_step",
        "kappa_se_dim0": "limit_step",
        "d_dim0": "limit_step",
        "d_dim1": "limit_k",
    }
    variables = ("final_loss", "kappa", "kappa_se", "d", "status")
    return rename_results(
        ds, names, variables, "limit_", steps, step_dim="limit_step", k_dim="limit_k"
    )
