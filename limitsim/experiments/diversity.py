"""Feature diversity d(ε) of Depth-µP vs the ODE scaling (1, 0) (the paper's Figs. 17, 18).

Feature diversity (Def. 7.6) is ``d_t(λ, ε) = ‖x_t^{⌊(λ+ε)L⌋} − x_t^{⌊λL⌋}‖/√n`` of a probe
input; d² is averaged over λ ∈ {1/4, 1/2, 3/4} (the paper does not state its λ).  Its exponent
κ̂ = 1 − slope of log d against log ε over ε = k/L ∈ [1/256, 1/16]
(:func:`limitsim.measures.diversity_exponent`): κ = 1/2 for Depth-µP (Brownian increments,
Claim 7.5) and κ = 0 for α ∈ (1/2, 1] (redundant features, Claim 7.4).  Two routes:

1. **the exact n = ∞ limit of a linear resnet** (:func:`limitsim.linear_limit`), cheap enough
   for depths up to 512: full-batch regression of ``n_points`` random unit-norm inputs (d_in)
   onto targets ±``target_scale`` (random signs), so that fitting them moves the features by
   Θ(1) against their init randomness; SGD at fixed η for ``limit_steps`` steps.  The
   multiplier is a = 8^{-1/2}, i.e. a² L0 = 1: with base depth 8 and φ = id the init
   features grow like e^{a² L0} in the depth limit, e^8 for a = 1.  The probe is the first
   training input.  κ̂'s uncertainty is the least-squares one (the computation is exact).
   Cost: memory ≈ 2 L² T² floats and time ∝ L² T³ (L = 512, T = 10: 0.4 GB, ~10 s; the
   paper profile's L = 1024, T = 20: 6.7 GB).
2. **finite relu resnets** trained on digits (:mod:`limitsim.experiments._digits`, a = 1,
   one η for both parametrizations; they coincide at L = 8), probe the first held-out digit;
   κ̂ per seed, uncertainty the standard error over seeds.

Both parametrizations use base depth 8 and SGD.  Curves are recorded at three times (Fig. 18:
t = 100, 500, 1000 of 1000).  Claims: κ̂ near 1/2 (±0.1) for Depth-µP and near 0 (±0.1) for
(1, 0) at the largest depth of each route; κ̂ of (1, 0) decreases with L (the curves move from
ε^{1/2} toward ε); κ̂ of Depth-µP is depth-independent (|dκ̂/d log2 L| ≤ 0.05).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from limitsim.experiments._common import Context, preset, sweep
from limitsim.experiments._digits import (
    BASE_DEPTH,
    DIVERSITY_LAMBDAS,
    check_failures,
    tidy,
    train_points,
)
from limitsim.report import Claim

NAME = "diversity"
TITLE = "Feature diversity d(ε), Depth-µP vs ODE (1, 0), limit and finite (Figs. 17, 18)"

#: Sizes per profile: tiny (tests), quick (2 cores, minutes), paper (a cluster).
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "params": ("depth_mup", "ode"),
        "limit_depths": (32, 48),
        "limit_steps": 3,
        "limit_eta": 0.15,
        "n_points": 4,
        "d_in": 8,
        "target_scale": 3.0,
        "depths": (16, 48),
        "seeds": 2,
        "width": 16,
        "phi": "relu",
        "steps": 6,
        "batch": 8,
        "task": "digits",
        "window": 2,
        "log2_eta": -1.0,
        "log2_a": 0.0,
        "base_eta": 0.25,
    },
    "quick": {
        "params": ("depth_mup", "ode"),
        "limit_depths": (64, 128, 256, 512),
        "limit_steps": 10,
        "limit_eta": 0.15,
        "n_points": 4,
        "d_in": 8,
        "target_scale": 3.0,
        "depths": (64, 128, 256),
        "seeds": 4,
        "width": 128,
        "phi": "relu",
        "steps": 300,
        "batch": 32,
        "task": "digits",
        "window": 50,
        "log2_eta": -1.0,
        "log2_a": 0.0,
        "base_eta": 0.25,
    },
    "paper": {
        "params": ("depth_mup", "ode"),
        "limit_depths": (128, 256, 512, 1024),
        "limit_steps": 20,
        "limit_eta": 0.15,
        "n_points": 4,
        "d_in": 8,
        "target_scale": 3.0,
        "depths": (256, 512, 1024, 2048, 4096, 8192),
        "seeds": 5,
        "width": 256,
        "phi": "relu",
        "steps": 1000,
        "batch": 64,
        "task": "digits",
        "window": 100,
        "log2_eta": -1.0,
        "log2_a": 0.0,
        "base_eta": 0.25,
    },
}
LIMIT_FIXED = ("limit_steps", "limit_eta", "n_points", "d_in", "target_scale")
FIXED = ("width", "phi", "steps", "batch", "task", "window", "log2_eta", "log2_a", "base_eta")
LIMIT_A = 8**-0.5
PARAM_LABELS = {"depth_mup": "Depth-µP (1/2, 1/2)", "ode": "ODE (1, 0)"}
PARAM_STYLES = {"depth_mup": "-", "ode": "--"}
#: Accepted ranges: κ̂ within ±0.1 of the paper's value; |dκ̂/d log2 L| ≤ 0.05 for Depth-µP.
KAPPA_TOLERANCE = 0.1
FLAT_SLOPE = 0.05


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


def run(sizes: dict[str, Any], context: Context | None = None) -> xr.Dataset:
    """Both routes; the limit's variables are prefixed ``limit_`` (dims limit_depth, …)."""
    from limitsim.grid import Grid

    params = list(sizes["params"])
    limit_grid = Grid(
        axes={"parametrization": params, "depth": list(sizes["limit_depths"])},
        fixed={key: sizes[key] for key in LIMIT_FIXED},
    )
    limit = sweep(context, f"{NAME}_limit", limit_point, limit_grid)
    steps = record_steps(int(sizes["steps"]))
    grid = Grid(
        axes={
            "parametrization": params,
            "depth": list(sizes["depths"]),
            "seed": list(range(int(sizes["seeds"]))),
        },
        fixed={key: sizes[key] for key in FIXED}
        | {"record_steps": steps, "record_backward": False},
    )
    finite = sweep(
        context,
        NAME,
        train_points,
        grid,
        batch_axes=("parametrization", "seed"),
        batch_size=int(sizes.get("batch_size", 4)),
    )
    ds = xr.merge(
        [
            tidy(finite, steps).drop_vars("lag1", errors="ignore"),
            _tidy_limit(limit, record_steps(sizes["limit_steps"])),
        ],
        join="outer",
    )
    ds.attrs = {key: sizes[key] for key in (*FIXED, *LIMIT_FIXED)} | {"limit_a": LIMIT_A}
    return ds


def _tidy_limit(ds: xr.Dataset, steps: tuple[int, ...]) -> xr.Dataset:
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


# ---------------------------------------------------------------------- plots
def plot(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """Rows: limit, finite; columns: c·d(ε) (Fig. 17), d/(cε^1/2) (Fig. 18), κ̂ vs L."""
    from limitsim.experiments._diversity_plot import plot_routes

    return plot_routes(ds, out_dir, NAME, labels=PARAM_LABELS, styles=PARAM_STYLES)


# --------------------------------------------------------------------- claims
def kappa_at(ds: xr.Dataset, route: str, param: str, depth: int) -> tuple[float, float]:
    """κ̂ at the final recorded step and its uncertainty for one route, parametrization, L."""
    if route == "limit":
        sel = {"parametrization": param, "limit_depth": depth}
        return (
            float(ds.limit_kappa.sel(sel).isel(limit_step=-1)),
            float(ds.limit_kappa_se.sel(sel).isel(limit_step=-1)),
        )
    values = ds.kappa.sel(parametrization=param, depth=depth).isel(step=-1).values
    values = values[np.isfinite(values)]
    if values.size < 2:
        return (float(values.mean()) if values.size else math.nan), math.nan
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


def kappa_slope(ds: xr.Dataset, route: str, param: str) -> tuple[float, float]:
    """dκ̂/d log2 L at the final step (least squares over depths, and seeds) and its SE."""
    if route == "limit":
        values = ds.limit_kappa.sel(parametrization=param).isel(limit_step=-1)
        x, y = np.log2(values.limit_depth.values.astype(float)), values.values
    else:
        values = ds.kappa.sel(parametrization=param).isel(step=-1).transpose("depth", "seed")
        x = np.repeat(np.log2(values.depth.values.astype(float)), values.sizes["seed"])
        y = values.values.ravel()
    keep = np.isfinite(y)
    if np.unique(x[keep]).size < 3:
        return math.nan, math.nan
    x, y = x[keep], y[keep]
    slope, intercept = np.polyfit(x, y, 1)
    # least-squares standard error of the slope (scipy's linregress gives NaN for constant y)
    residual = y - (slope * x + intercept)
    se = math.sqrt(residual @ residual / (x.size - 2) / np.sum((x - x.mean()) ** 2))
    return float(slope), float(se)


def claims(ds: xr.Dataset) -> list[Claim]:
    """κ̂ near 1/2 (Depth-µP) and 0 (ODE) at the largest depth, and its trend with L."""
    out = []
    for route, depth_dim, where in (
        ("limit", "limit_depth", "n = ∞ linear limit"),
        ("finite", "depth", "finite relu nets"),
    ):
        top = int(ds[depth_dim].values[-1])
        for param, target, paper in (
            ("depth_mup", 0.5, "κ = 1/2 (Claim 7.5, Figs. 17-18)"),
            ("ode", 0.0, "κ = 0, redundant (Claim 7.4, Fig. 17)"),
        ):
            if param not in ds.parametrization.values:
                continue
            value, err = kappa_at(ds, route, param, top)
            out.append(
                Claim(
                    NAME,
                    f"{PARAM_LABELS[param]}: κ̂ ≈ {target:g} ({where})",
                    f"κ̂ after training, L = {top}",
                    value,
                    err,
                    paper,
                    target - KAPPA_TOLERANCE,
                    target + KAPPA_TOLERANCE,
                )
            )
        if "ode" in ds.parametrization.values:
            slope, err = kappa_slope(ds, route, "ode")
            out.append(
                Claim(
                    NAME,
                    f"ODE (1, 0): curves move from ε^1/2 toward ε as L grows ({where})",
                    "dκ̂/d log2 L",
                    slope,
                    err,
                    "ODE slopes grow with L (Figs. 17-18)",
                    -math.inf,
                    0.0,
                )
            )
        if "depth_mup" in ds.parametrization.values:
            slope, err = kappa_slope(ds, route, "depth_mup")
            out.append(
                Claim(
                    NAME,
                    f"Depth-µP: κ̂ independent of L ({where})",
                    "dκ̂/d log2 L",
                    slope,
                    err,
                    "µP follows ε^1/2 for every L (Fig. 17)",
                    -FLAT_SLOPE,
                    FLAT_SLOPE,
                )
            )
    return out
