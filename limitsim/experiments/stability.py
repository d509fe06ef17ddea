"""Faithfulness during training (Claim 7.3) and redundancy for α ∈ (1/2, 1) (Claim 7.4).

On the stable, nontrivial line α + γ = 1 (Claim 7.2), Claim 7.3 says the parametrization is
faithful during training (``h_t^l = Θ(1)``) iff α ≤ 1: for α > 1, γ = 1 − α < 0 and the
pre-activations explode, ``|h_1^l⟩ = Θ(1 + L^{-γ})`` (App. D.2).  Claim 7.4 says every
α ∈ (1/2, 1] is redundant (κ = 0); the paper shows it only at (1, 0) (Figs. 17, 18).

Task: full-batch regression of :func:`limitsim.experiments._diversity_limit.regression_task`
(``n_points`` random unit-norm inputs onto ±``target_scale``), SGD for ``steps`` steps, a
= 8^{-1/2} and base depth 8 as in :mod:`limitsim.experiments.diversity` (all (α, γ)
coincide at L = 8), probe = the first training input.  Two routes:

1. **the exact n = ∞ limit of a linear resnet** (:func:`limitsim.linear_limit`, the setting
   of App. D.2) at ``limit_depths`` (and, for (3/4, 1/4) only, the deeper
   ``redundancy_depths``), η = ``limit_eta``; deterministic, so its slopes carry the
   least-squares interval of :func:`limitsim.stats.fit_slope`;
2. **finite relu resnets** (width ``width``, η = ``eta``) at ``depths``, ``seeds`` seeds: one
   log–log fit per seed, Student-t interval over seeds (paired where two (α, γ) share a seed).

Measures (probe, at t = ``steps``, mean over the depth fractions 1/4, 1/2, 3/4, 1):
``RMS(h_T)`` (:func:`limitsim.measures.faithfulness`) and ``RMS(h_T − h_0)``
(:func:`limitsim.measures.feature_learning`).  Claims:

- Claim 7.3, α ≤ 1 (Depth-µP, (3/4, 1/4), ODE): the slope of log RMS(h_T) against log L is
  0 ± 0.15 (faithful);
- Claim 7.3, α > 1 (``(1.5, −0.5)``): RMS(h_T) grows with L (slope > 0, "explodes"), and its
  training part RMS(h_T − h_0) grows as L^{α−1} (exponent ± 0.15, App. D.2);
- Claim 7.4 at (3/4, 1/4): in the limit, the Brownian noise amplitude N of
  d(ε)² = Nε + Dε² (:func:`limitsim.measures.noise_drift_fit`) scales as L^{1−2α} = L^{-1/2}
  (App. D.2; exponent ± 0.15), and the slope 1/2 − κ̂ of Fig. 18's normalised curve grows
  with L (κ̂ → 0); on finite nets, that growth exceeds Depth-µP's (paired over seeds).  The
  diversity helpers are those of :mod:`limitsim.experiments._diversity_fit` (fixed ε window from
  1/L of the smallest depth used, up to 1/16).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from limitsim.experiments._common import Context, seed_axis, sweep
from limitsim.experiments._digits import BASE_DEPTH, DIVERSITY_LAMBDAS
from limitsim.experiments._diversity_fit import slope_table
from limitsim.experiments._diversity_limit import LIMIT_A, regression_task
from limitsim.experiments._plots import log_depth_axes, plot_depth_points
from limitsim.experiments._stability_claims import MUP, NAME, REDUNDANT, diversity_view, slope
from limitsim.experiments._stability_claims import claims as claims  # the claims of run's data
from limitsim.experiments._synthetic import TINY_PROJECTION, AlphaGammaGrid, ProjectionTask
from limitsim.plotting import new_figure, save_figure

TITLE = "Faithfulness during training (Claim 7.3) and redundancy for α ∈ (1/2, 1) (Claim 7.4)"
#: Depth fractions λ at which h is measured (blocks ⌈λL⌉).
FRACTIONS = (0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True, kw_only=True)
class Sizes(AlphaGammaGrid, ProjectionTask):
    """Sizes of the stability experiment; the fields are read by :func:`run`."""

    limit_depths: tuple[int, ...]
    redundancy_depths: tuple[int, ...]
    limit_eta: float


#: tiny (tests), quick (2 cores, about 30 s), standard and paper, each derived from the last.
TINY = Sizes(
    **TINY_PROJECTION,
    alpha_gammas=("0.5,0.5", "0.75,0.25", "1.5,-0.5"),
    limit_depths=(32, 64, 128),
    redundancy_depths=(),
    limit_eta=0.15,
    depths=(16, 64, 128),
    seeds=2,
    width=32,
    eta=1.0,
)
QUICK = replace(
    TINY,
    alpha_gammas=("0.5,0.5", "0.75,0.25", "1,0", "1.5,-0.5"),
    limit_depths=(32, 64, 128, 256),
    redundancy_depths=(512,),
    depths=(16, 32, 64, 128, 256),
    seeds=8,
    width=64,
    steps=10,
)
STANDARD = replace(
    QUICK, limit_depths=(32, 64, 128, 256, 512), redundancy_depths=(1024,), width=128, seeds=16
)
PAPER = replace(
    STANDARD,
    limit_depths=(32, 64, 128, 256, 512, 1024),
    redundancy_depths=(2048,),
    depths=(16, 32, 64, 128, 256, 512, 1024),
    width=512,
)
SIZES = {"tiny": TINY, "quick": QUICK, "standard": STANDARD, "paper": PAPER}
TASK_KEYS = ("steps", "n_points", "d_in", "target_scale")


def _param(label: str, eta: float) -> Any:
    from limitsim.parametrization import Parametrization

    alpha, gamma = (float(v) for v in label.split(","))
    return Parametrization(alpha=alpha, gamma=gamma, a=LIMIT_A, eta=eta, base_depth=BASE_DEPTH)


def _task(point: Mapping[str, Any]) -> Any:
    return regression_task(
        steps=int(point["steps"]),
        n_points=int(point["n_points"]),
        d_in=int(point["d_in"]),
        target_scale=float(point["target_scale"]),
    )


def _measures(run: Any, depth: int, steps: int) -> dict[str, Any]:
    """h_T, h_T − h_0 (mean over FRACTIONS) and d(ε = k/L), k = 1..L/16, of one run."""
    from limitsim.measures import faithfulness, feature_diversity, feature_learning

    if run.diverged:
        return {"h": math.nan, "dh": math.nan, "diverged": True}
    ks = np.arange(1, depth // 16 + 1)
    d = feature_diversity(run, ks / depth, lam=DIVERSITY_LAMBDAS, step=steps)
    return {
        "h": float(np.mean(faithfulness(run, step=steps, fractions=FRACTIONS))),
        "dh": float(np.mean(feature_learning(run, step=steps, fractions=FRACTIONS))),
        "d": d,
    }


def limit_point(point: dict[str, Any]) -> dict[str, Any]:
    """The exact linear limit of one ((α, γ), depth) (sweep function)."""
    from limitsim.linear.limit import linear_limit
    from limitsim.run import Record

    T, L = int(point["steps"]), int(point["depth"])
    param = _param(str(point["alpha_gamma"]), float(point["limit_eta"]))
    run = linear_limit(_task(point), param, depth=L, record=Record(steps=(0, T), backward=False))
    return _measures(run, L, T)


def finite_points(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finite relu nets of one depth, batched over (α, γ) and seed (sweep function)."""
    from limitsim.finite.train import train_finite_batch
    from limitsim.run import Record

    first = points[0]
    T, L = int(first["steps"]), int(first["depth"])
    runs = train_finite_batch(
        _task(first),
        [_param(str(p["alpha_gamma"]), float(first["eta"])) for p in points],
        depth=L,
        width=int(first["width"]),
        phi="relu",
        seeds=[int(p["seed"]) for p in points],
        eval_every=0,
        record=Record(steps=(0, T), backward=False),
    )
    return [_measures(run, L, T) for run in runs]


def run(sizes: Mapping[str, Any], context: Context | None = None) -> xr.Dataset:
    """Both routes: ``limit_h``/``limit_dh``/``limit_d`` and ``h``/``dh``/``d``.

    Dimensions: ``parametrization`` (the "α,γ" labels), ``limit_depth`` and ``limit_k`` for
    the limit; ``depth``, ``seed`` and ``k`` for the finite nets; ``d`` has one step
    (t = ``steps``), in the layout of :mod:`limitsim.experiments.diversity`.
    """
    from limitsim.sweeps.grid import Grid

    labels = list(sizes["alpha_gammas"])
    task = {key: sizes[key] for key in TASK_KEYS}
    limit = sweep(
        context,
        f"{NAME}_limit",
        limit_point,
        Grid(
            axes={
                "alpha_gamma": labels,
                "depth": sorted({*sizes["limit_depths"], *sizes["redundancy_depths"]}),
            },
            filters=[f"depth in limit_depths or alpha_gamma == '{REDUNDANT}'"],
            fixed={
                **task,
                "limit_eta": sizes["limit_eta"],
                "limit_depths": list(sizes["limit_depths"]),
            },
        ),
    )
    finite = sweep(
        context,
        NAME,
        finite_points,
        Grid(
            axes={
                "alpha_gamma": labels,
                "depth": list(sizes["depths"]),
                "seed": seed_axis(context, int(sizes["seeds"])),
            },
            fixed={**task, "width": sizes["width"], "eta": sizes["eta"]},
        ),
        batch_axes=("alpha_gamma", "seed"),
        batch_size=32,
    )
    return _dataset(limit, finite, sizes)


def _dataset(limit: xr.Dataset, finite: xr.Dataset, sizes: Mapping[str, Any]) -> xr.Dataset:
    """The two sweeps' results in :func:`run`'s layout, with the sizes used as attributes."""
    step = int(sizes["steps"])
    lim_d = limit.d.rename(alpha_gamma="parametrization", depth="limit_depth", d_dim0="limit_k")
    fin_d = finite.d.rename(alpha_gamma="parametrization", d_dim0="k")
    ds = xr.Dataset(
        {
            "limit_h": limit.h.rename(alpha_gamma="parametrization", depth="limit_depth"),
            "limit_dh": limit.dh.rename(alpha_gamma="parametrization", depth="limit_depth"),
            "limit_d": lim_d.expand_dims(limit_step=[step], axis=2),
            "h": finite.h.rename(alpha_gamma="parametrization"),
            "dh": finite.dh.rename(alpha_gamma="parametrization"),
            "d": fin_d.expand_dims(step=[step], axis=3),
        }
    )
    ds = ds.assign_coords(
        limit_k=np.arange(1, ds.sizes["limit_k"] + 1), k=np.arange(1, ds.sizes["k"] + 1)
    )
    ds.attrs = {
        **{key: sizes[key] for key in TASK_KEYS},
        "limit_eta": sizes["limit_eta"],
        "width": sizes["width"],
        "eta": sizes["eta"],
        "a": LIMIT_A,
        "base_depth": BASE_DEPTH,
    }
    return ds


# ------------------------------------------------------------------------ plots
def plot(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """RMS(h_T) vs L for both routes (Claim 7.3); 1/2 − κ̂ vs L at (3/4, 1/4) and µP (7.4)."""
    fig, axes = new_figure(3, 1, width=3.5, height=3.0)
    for col, route in enumerate(("limit", "finite")):
        ax = axes[0, col]
        for k, label in enumerate(str(v) for v in ds.parametrization.values):
            values = (ds.limit_h if route == "limit" else ds.h).sel(parametrization=label)
            depths = values["limit_depth" if route == "limit" else "depth"].values
            est = slope(ds, route, "h", label)
            plot_depth_points(ax, depths, values, color=f"C{k}", label=label, slope=est.value)
        log_depth_axes(ax, "RMS(h_T), mean over λ")
        where = "n = ∞ linear (exact)" if route == "limit" else f"relu, width {ds.attrs['width']}"
        ax.set_title(f"Claim 7.3: h after {ds.attrs['steps']} SGD steps, {where}", fontsize=8)
        ax.legend(fontsize=6)
    ax = axes[0, 2]
    for route, style in (("limit", "-"), ("finite", "--")):
        view = diversity_view(ds, route)
        dim = "limit_depth" if route == "limit" else "depth"
        for k, label in enumerate((MUP, REDUNDANT)):
            if label not in ds.parametrization.values or view.sizes[dim] == 0:
                continue
            table = slope_table(view, route, label)
            keep = np.isfinite(table).any(axis=1)
            ax.plot(
                view[dim].values[keep],
                np.nanmean(table[keep], axis=1),
                style,
                marker="o",
                ms=3,
                color=f"C{k}",
                label=f"({label}), {route}",
            )
    log_depth_axes(ax, "1/2 − κ̂ (slope of d/(c ε^1/2))", log_y=False)
    ax.set_title("Claim 7.4: κ̂ → 0 for α = 3/4 (Fig. 18's slopes)", fontsize=8)
    ax.legend(fontsize=6)
    return save_figure(fig, out_dir, NAME)
