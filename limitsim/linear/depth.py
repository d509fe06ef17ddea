"""The depth limit L → ∞ of the exact linear limit (route R2) by Richardson extrapolation.

Prop. 4.4 / C.2 of Tensor Programs VI (``theory/tp6-notes.md`` §3.2) states the L → ∞ limit as
integral equations for Γ(p, q) and C(p) on [0, 1].  Discretised on the uniform grid p = l/N
with the left-endpoint rule, those equations *are* Lemma C.1 at depth N — the recursion that
:func:`limitsim.linear_limit` solves exactly — so solving Prop. C.2 on a grid of N points
carries the same O(1/N) discretisation error as a finite-depth network.  This module removes
it: it runs :func:`limitsim.linear_limit` at the depths of ``grid`` and extrapolates every
output to 1/L = 0 with Richardson's scheme (Neville's polynomial in h = 1/L through all grid
points).

Richardson assumes an expansion in integer powers of 1/L.  On the stable, nontrivial line
α + γ = 1 (Claim 7.2) this is what we observe at α = 1/2 (Depth-µP: the factors of the
recursion are powers of L^-1/2, and no half-integer power of 1/L shows up) and at α = 1 (ODE
scaling): ``tests/test_linear_limit.py`` checks that successive differences halve and, after
removing the 1/L term, quarter (not ×2^-3/2), and the O(1/L) convergence by fitted slopes.
For α ∈ (1/2, 1) the recursion contains L^(1−2α), a non-integer power (observed rates near
L^-1/2 at α = 3/4), and off the line the limit is trivial (α + γ > 1, f_t → f_0 = 0 like
L^(1−α−γ)) or does not exist (α + γ < 1): those raise ``ValueError``.

Error estimate: the difference between the extrapolation through all grid points and the one
through all but the coarsest (one order lower), reported as ``Run.f_se``/``loss_se`` and in
``Recorded.se`` — an extrapolation error, not a standard error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from limitsim.linear.limit import linear_limit
from limitsim.parametrization import Parametrization
from limitsim.run import Record, Recorded, Run
from limitsim.task import Task
from limitsim.validation import check_depth, check_type

__all__ = ["extrapolate_polynomial", "linear_depth_limit"]


def linear_depth_limit(
    task: Task,
    param: Parametrization,
    *,
    grid: Sequence[int] = (16, 32, 64, 128),
    record: Record | None = None,
    divergence_bound: float = 1e8,
) -> Run:
    """The L → ∞ limit of the n = ∞ linear resnet, extrapolated from the depths in ``grid``.

    Parameters
    ----------
    task : Task
        As for :func:`limitsim.linear_limit`.
    param : Parametrization
        SGD with α + γ = 1 and α ∈ {1/2, 1} (Depth-µP or ODE scaling); any a, η, base depth.
    grid : sequence of int
        At least two distinct depths; with ``record``, each a multiple of the smallest.
    record : Record, optional
        Probe kernels at depth fractions λ = k/L_min (k = 0..L_min, L_min = min(grid)):
        ``x_layers``/``x_steps`` at layers λL, ``h_steps``/``dh_layers`` at blocks λL (k ≥ 1),
        extrapolated like ``f``; their error estimates are in ``Recorded.se``.
    divergence_bound : float
        Passed to :func:`limitsim.linear_limit`.

    Returns
    -------
    Run
        ``route="depth_limit"``: ``f`` (T, B, e), ``loss`` (T,) = the task's loss of the
        extrapolated ``f``, ``f_se``/``loss_se`` the extrapolation error estimates,
        ``f_eval`` when the task has ``eval_X``, ``recorded`` when requested.  If the run at
        any grid depth diverges, the limit is reported as diverged from that step on.
    """
    depths = _check_grid(grid, param, record)
    runs = [
        linear_limit(task, param, depth=L, record=record, divergence_bound=divergence_bound)
        for L in depths
    ]
    h = 1.0 / np.asarray(depths, dtype=np.float64)
    f, f_err = extrapolate_polynomial(h, np.stack([run.f for run in runs]))
    loss = np.asarray(task.value(f, task.Y), dtype=np.float64)
    _, lower = extrapolate_polynomial(h[1:], np.stack([run.f for run in runs[1:]]), error=False)
    loss_se = np.abs(loss - np.asarray(task.value(lower, task.Y), dtype=np.float64))
    f_eval = None
    if task.eval_X is not None:
        f_eval, _ = extrapolate_polynomial(
            h, np.stack([cast(NDArray[np.float64], run.f_eval) for run in runs])
        )
    steps = [run.diverged_step for run in runs if run.diverged]
    diverged_step = min(cast(list[int], steps)) if steps else None
    options = {
        "grid": ",".join(str(L) for L in depths),
        "method": "richardson in 1/L",
        "divergence_bound": float(divergence_bound),
    }
    recorded = None if record is None else _extrapolate_recorded(h, depths, runs)
    return Run(
        f=f,
        loss=loss,
        route="depth_limit",
        param=param,
        arch=runs[-1].arch,
        options=options,
        diverged=diverged_step is not None,
        diverged_step=diverged_step,
        f_se=f_err,
        loss_se=loss_se,
        f_eval=f_eval,
        recorded=recorded,
    )


def extrapolate_polynomial(
    h: NDArray[np.float64], values: NDArray[np.float64], *, error: bool = True
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Extrapolate ``values[i] ≈ v(h[i])`` to h = 0 through every point (Neville's scheme).

    The value at h = 0 of the polynomial of degree K − 1 through all K points: Richardson
    extrapolation of every order at once, exact when ``v`` is a polynomial of degree < K in
    ``h``.  Used with ``h = 1/L`` for the deterministic linear limit, whose error expands in
    integer powers of 1/L on the line α + γ = 1 with α ∈ {1/2, 1} (module docstring;
    Tensor Programs VI, Prop. 4.4 / C.2).  Contrast
    :func:`limitsim.particles.depth.extrapolate_first_order`, first order only, for Monte Carlo
    ladders.

    Parameters
    ----------
    h : ndarray, shape (K,)
        Distinct step sizes (here 1/L).
    values : ndarray, shape (K, ...)
    error : bool
        Also return the error estimate ``|P_{0..K−1}(0) − P_{1..K−1}(0)|`` (K ≥ 2).

    Returns
    -------
    limit, error : ndarray, shape (...)
        The extrapolated value and the error estimate (zeros when ``error`` is False).
    """
    K = h.size
    table = [np.asarray(v, dtype=np.float64) for v in values]
    lower = table[-1]  # for K = 2 the lower-order estimate is the finest value itself
    for k in range(1, K):
        # after pass k, table[i] is the degree-k interpolant of points i-k..i at h = 0
        for i in range(K - 1, k - 1, -1):
            table[i] = (h[i] * table[i - 1] - h[i - k] * table[i]) / (h[i] - h[i - k])
        if k == K - 2:
            lower = table[K - 1]
    limit = table[K - 1]
    if not error:
        return limit, np.zeros_like(limit)
    return limit, np.abs(limit - lower)


def _check_grid(grid: Any, param: Any, record: Record | None) -> list[int]:
    check_type("param", param, Parametrization)
    if not math.isclose(param.alpha + param.gamma, 1.0, abs_tol=1e-12):
        kind = "trivial (f_t -> f_0 = 0)" if param.alpha + param.gamma > 1 else "unstable"
        raise ValueError(
            f"the depth limit needs alpha + gamma = 1 (Claim 7.2); got ({param.alpha}, "
            f"{param.gamma}), whose limit is {kind}: use linear_limit at growing depth"
        )
    if param.alpha not in (0.5, 1.0):
        raise ValueError(
            f"Richardson in 1/L needs alpha in {{1/2, 1}}, got {param.alpha}: for alpha in "
            "(1/2, 1) the error has the non-integer power L^(1-2 alpha)"
        )
    depths = sorted(check_depth(L, "grid entry") for L in grid)
    if len(depths) < 2 or len(set(depths)) != len(depths):
        raise ValueError(f"grid must hold at least two distinct depths, got {tuple(grid)}")
    if record is not None and any(L % depths[0] for L in depths):
        raise ValueError(f"with record, every grid depth must be a multiple of {depths[0]}")
    return depths


def _extrapolate_recorded(h: NDArray[np.float64], depths: list[int], runs: list[Run]) -> Recorded:
    """Recorded kernels at λ = k/L_min, extrapolated entry by entry."""
    L0 = depths[0]
    parts: dict[str, list[NDArray[np.float64]]] = {
        "x_layers": [],
        "x_steps": [],
        "h_steps": [],
        "dh_layers": [],
    }
    for L, run in zip(depths, runs, strict=True):
        rec = run.recorded
        assert rec is not None
        layers = np.arange(L0 + 1) * (L // L0)
        blocks = layers[1:] - 1
        parts["x_layers"].append(rec.x_layers[:, layers][:, :, layers])
        parts["x_steps"].append(rec.x_steps[:, :, layers])
        parts["h_steps"].append(rec.h_steps[:, :, blocks])
        if rec.dh_layers is not None:
            parts["dh_layers"].append(rec.dh_layers[:, blocks][:, :, blocks])
    out: dict[str, Any] = {}
    se: dict[str, NDArray[np.float64]] = {}
    for key, values in parts.items():
        if values:
            out[key], se[key] = extrapolate_polynomial(h, np.stack(values))
    first = runs[0].recorded
    assert first is not None
    return Recorded(
        steps=first.steps,
        dh_layers=out.get("dh_layers"),
        se=se,
        **{k: out[k] for k in ("x_layers", "x_steps", "h_steps")},
    )
