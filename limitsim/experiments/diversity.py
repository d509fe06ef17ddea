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
   Adam as in the paper at one η for both parametrizations; they coincide at L = 8), probe
   the first held-out digit; one fit per seed, Student-t intervals over seeds (paired between
   the parametrizations, which share a seed's weights and batches).

Curves are recorded at three times (Fig. 18: t = 100, 500, 1000).  Measures and claims:

- **noise and drift** (:func:`limitsim.measures.noise_drift_fit`): d(ε)² = N ε^p + D ε².  In the
  linear limit the noise term has size ε^{1/2} L^{1/2−α} and the drift ε (App. D.2), so a single
  log–log slope over a finite ε window mixes the two and sits below κ = 1/2 even for Depth-µP.
  Claim 7.5: the noise exponent p of Depth-µP is 1 (κ = 1 − p/2 = 1/2; accepted p ∈ [0.8, 1.2],
  i.e. κ within ±0.1).  App. D.2 / Claim 7.4 (limit route): the noise amplitude N (p fixed at 1)
  scales as L^{1−2α}: flat for Depth-µP and L^{-1} for the ODE scaling (exponent ± 0.15);
- **Fig. 18 as the paper states it**: the slopes of the normalised curves d/(c ε^{1/2}), i.e.
  1/2 − κ̂ with κ̂ over a fixed set of ε (multiples of 1/L of the smallest depth, up to 1/16),
  grow with L for the ODE scaling (per-doubling growth > 0), and more slowly for Depth-µP
  (growth(ODE) − growth(µP) > 0); and they grow with training time t (Fig. 18 shows
  t = 100, 500, 1000): at the largest depth L, with ε over [1/L, 1/16], the slope at the last
  recorded step minus that at the first (T/10) is > 0 for the ODE scaling, and larger for the
  ODE scaling than for Depth-µP (paired over seeds for finite nets; for the limit the log–log
  fits' intervals added in quadrature).  Sign-only ranges: the paper gives no numbers.

Route 1's point function lives in :mod:`limitsim.experiments._diversity_limit`, the fits in
:mod:`limitsim.experiments._diversity_fit`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from limitsim.experiments._common import SIGN_ONLY, Context, preset, seed_axis, sweep
from limitsim.experiments._digits import (
    BASE_DEPTH,
    DIVERSITY_LAMBDAS,
    TRAINING,
    DepthGrid,
    tidy,
    train_points,
)
from limitsim.experiments._diversity_fit import (
    depths_of,
    deterministic,
    growth,
    noise_fits,
    slope_table,
    time_growth,
)
from limitsim.experiments._diversity_limit import LIMIT_A, record_steps, regression_task, tidy_limit
from limitsim.report import Claim
from limitsim.stats import fit_slope, from_standard_error, missing, paired_interval, t_interval

NAME = "diversity"
TITLE = "Feature diversity d(ε), Depth-µP vs ODE (1, 0), limit and finite (Figs. 17, 18)"


@dataclass(frozen=True, kw_only=True)
class Sizes(DepthGrid):
    """Sizes of the diversity experiment; the fields are read by :func:`run`."""

    params: tuple[str, ...]
    limit_depths: tuple[int, ...]
    limit_steps: int
    limit_eta: float
    n_points: int
    d_in: int
    target_scale: float
    phi: str
    log2_eta: float
    log2_a: float


#: tiny (tests), quick (2 cores, minutes) and paper (a cluster), each derived from the last.
TINY = Sizes(
    **TRAINING["tiny"],
    params=("depth_mup", "ode"),
    limit_depths=(32, 48),
    limit_steps=3,
    limit_eta=0.15,
    n_points=4,
    d_in=8,
    target_scale=3.0,
    depths=(16, 48),
    phi="relu",
    steps=6,
    log2_eta=0.0,
    log2_a=0.0,
    base_eta=0.1,
    optimizer="adam",
)
QUICK = replace(
    TINY,
    **(TRAINING["quick"] | {"width": 128}),
    limit_depths=(64, 128, 256, 512),
    limit_steps=10,
    depths=(64, 128, 256),
)
PAPER = replace(
    QUICK,
    **TRAINING["paper"],
    limit_depths=(128, 256, 512, 1024),
    limit_steps=20,
    depths=(256, 512, 1024, 2048, 4096, 8192),
    steps=1000,
    window=100,
)
STANDARD = replace(
    QUICK,
    **TRAINING["standard"],
    limit_depths=(64, 128, 256, 512, 1024),
    depths=(64, 128, 256, 512),
    seeds=16,
)
SIZES = {"tiny": TINY, "quick": QUICK, "standard": STANDARD, "paper": PAPER}
LIMIT_FIXED = ("limit_steps", "limit_eta", "n_points", "d_in", "target_scale")
FIXED = (
    "width",
    "phi",
    "steps",
    "batch",
    "task",
    "window",
    "log2_eta",
    "log2_a",
    "base_eta",
    "optimizer",
)
PARAM_LABELS = {"depth_mup": "Depth-µP (1/2, 1/2)", "ode": "ODE (1, 0)"}
PARAM_STYLES = {"depth_mup": "-", "ode": "--"}
#: Accepted ranges: κ̂ within ±0.1 of the paper's value; |dκ̂/d log2 L| ≤ 0.05 for Depth-µP.
KAPPA_TOLERANCE = 0.1
FLAT_SLOPE = 0.05


def limit_point(point: dict[str, Any]) -> dict[str, Any]:
    """Train the exact linear limit of one (parametrization, depth) (sweep function)."""
    from limitsim.linear.limit import linear_limit
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


def run(sizes: Mapping[str, Any], context: Context | None = None) -> xr.Dataset:
    """Both routes; the limit's variables are prefixed ``limit_`` (dims limit_depth, …)."""
    from limitsim.sweeps.grid import Grid

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
            "seed": seed_axis(context, int(sizes["seeds"])),
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
            tidy_limit(limit, record_steps(sizes["limit_steps"])),
        ],
        join="outer",
    )
    ds.attrs = {key: sizes[key] for key in (*FIXED, *LIMIT_FIXED)} | {"limit_a": LIMIT_A}
    return ds


# ---------------------------------------------------------------------- plots
def plot(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """Rows: limit, finite; columns: c·d(ε) (Fig. 17), d/(cε^1/2) (Fig. 18), κ̂ vs L."""
    from limitsim.experiments._diversity_plot import plot_routes

    return plot_routes(ds, out_dir, NAME, labels=PARAM_LABELS, styles=PARAM_STYLES)


# --------------------------------------------------------------------- claims
def claims(ds: xr.Dataset) -> list[Claim]:
    """Noise exponent (Claim 7.5), noise amplitude vs L (App. D.2), slope growth (Fig. 18)."""
    out = []
    for route in ("limit", "finite"):
        out += _route_claims(ds, route) + _time_claims(ds, route)
    return out


def _time_claims(ds: xr.Dataset, route: str) -> list[Claim]:
    """Fig. 18 over training: the slopes grow with t, more for ODE than for Depth-µP."""
    params = [str(p) for p in ds.parametrization.values]
    if not {"depth_mup", "ode"} <= set(params):
        return []
    top = depths_of(ds, route)[-1]
    steps = [int(t) for t in ds["limit_step" if route == "limit" else "step"].values]
    if route == "limit":
        where = "exact n = ∞ linear limit, SGD"
        kind = "paper"
    else:
        where = f"finite relu nets, width {ds.attrs.get('width')}, {ds.attrs.get('optimizer')}"
        kind = "paper" if ds.attrs.get("optimizer") == "adam" else "extension"
    note = "" if kind == "paper" or route == "limit" else " (the paper trains with Adam)"
    window = f"ε ∈ [1/{top}, 1/16], L = {top}, t = {steps[0]} → {steps[-1]}, {where}"
    (ode, ode_half), (mup, mup_half) = (time_growth(ds, route, p) for p in ("ode", "depth_mup"))
    if route == "limit":
        ode_estimate = deterministic(ode, ode_half)
        diff = deterministic(np.concatenate([ode, -mup]), np.concatenate([ode_half, mup_half]))
    else:
        ode_estimate, diff = t_interval(ode), paired_interval(ode, mup)
    rows = (
        ("ODE (1, 0): the normalised curves' slopes grow with training time",
         "Fig. 18: ODE slopes grow with t (t = 100, 500, 1000)",
         f"slope(t = {steps[-1]}) − slope(t = {steps[0]}) of d/(cε^1/2), {window}",
         ode_estimate, "grow"),
        ("Depth-µP's slopes grow more slowly with training time than the ODE scaling's",
         "Fig. 18: µP almost flat at every t, ODE slopes grow with t",
         f"growth over t (ODE) − (µP) of the slope of d/(cε^1/2), {window}"
         + (", paired over seeds" if route == "finite" else ""),
         diff, "µP slowly, ODE quickly"),
    )  # fmt: skip
    return [
        Claim(
            experiment=NAME,
            claim=claim,
            source=f"{kind}: {source}{note}",
            quantity=quantity,
            estimate=estimate,
            paper=paper,
            **SIGN_ONLY,
        )
        for claim, source, quantity, estimate, paper in rows
    ]


def _route_claims(ds: xr.Dataset, route: str) -> list[Claim]:
    depths = depths_of(ds, route)
    params = [str(p) for p in ds.parametrization.values]
    where, kind, adam_note = _route_where(ds, route)
    out = []
    if "depth_mup" in params:
        out.append(_kappa_claim(ds, route, depths[-1], where, kind, adam_note))
    if route == "limit":
        out += _noise_claims(ds, depths, params, where)
    if {"depth_mup", "ode"} <= set(params):
        out += _growth_claims(ds, route, depths, where, kind, adam_note)
    return out


def _route_where(ds: xr.Dataset, route: str) -> tuple[str, str, str]:
    """``(where, kind, adam_note)`` of ``route``'s claims: the setting, paper or extension,
    and the note added when a finite route is not trained with the paper's Adam."""
    if route == "limit":
        where = f"exact n = ∞ linear limit, SGD, t = {int(ds.limit_step.values[-1])}"
        kind = "paper"
    else:
        where = (
            f"finite relu nets, width {ds.attrs.get('width')}, "
            f"{ds.attrs.get('optimizer', 'sgd')}, t = {int(ds.step.values[-1])}"
        )
        kind = "paper" if ds.attrs.get("optimizer") == "adam" else "extension"
    adam_note = "" if kind == "paper" or route == "limit" else " (the paper trains with Adam)"
    return where, kind, adam_note


def _kappa_claim(
    ds: xr.Dataset, route: str, top: int, where: str, kind: str, adam_note: str
) -> Claim:
    """Depth-µP's noise exponent p at the deepest L: κ = 1 − p/2 = 1/2 (Claim 7.5)."""
    fits = noise_fits(ds, route, "depth_mup", top)
    if route == "limit":
        fit = fits[0]
        estimate = (
            from_standard_error(fit.exponent, fit.exponent_se, dof=fit.eps.size - 3, seeds=None)
            if fit
            else missing(None)
        )
    else:
        estimate = t_interval([f.exponent if f else np.nan for f in fits])
    return Claim(
        experiment=NAME,
        claim="Depth-µP: Brownian feature increments, κ = 1/2",
        source=f"{kind}: Claim 7.5 (κ = 1/2; Figs. 17-18){adam_note}",
        quantity=f"noise exponent p of d² = Nε^p + Dε², ε ∈ [1/{top}, 1/16], L = {top}, " + where,
        estimate=estimate,
        paper="p = 1 (κ = 1 − p/2 = 1/2)",
        low=1 - 2 * KAPPA_TOLERANCE,
        high=1 + 2 * KAPPA_TOLERANCE,
        range_reason="κ within ±0.1 of 1/2",
    )


def _noise_claims(ds: xr.Dataset, depths: list[int], params: list[str], where: str) -> list[Claim]:
    """The limit's Brownian noise term N against L: ∝ L^(1−2α) (App. D.2)."""
    out = []
    for param, pred in (("depth_mup", 0.0), ("ode", -1.0)):
        if param not in params:
            continue
        noise = [noise_fits(ds, "limit", param, L, exponent=1.0)[0] for L in depths]
        log_noise = [math.log(f.noise) if f and f.noise > 0 else math.nan for f in noise]
        out.append(
            Claim(
                experiment=NAME,
                claim=f"{PARAM_LABELS[param]}: Brownian noise term ∝ L^{pred:g}",
                source="paper: App. D.2: noise Θ(ε^1/2 L^(1/2−α)), drift Θ(ε)"
                + ("; Claim 7.4: redundant for α > 1/2" if param == "ode" else ""),
                quantity=f"exponent of N in L (d² = Nε + Dε², ε ∈ [1/L, 1/16]), "
                f"L = {depths[0]}..{depths[-1]}, {where}",
                estimate=fit_slope(np.log(depths), log_noise),
                paper=f"L^(1−2α) = L^{pred:g}",
                low=pred - 0.15,
                high=pred + 0.15,
                range_reason="prediction ± 0.15 for finite-L corrections",
            )
        )
    return out


def _growth_claims(
    ds: xr.Dataset, route: str, depths: list[int], where: str, kind: str, adam_note: str
) -> list[Claim]:
    """The ODE scaling's slopes grow with L, and faster than Depth-µP's (Fig. 18)."""
    window = f"ε ∈ [1/{depths[0]}, 1/16], L = {depths[0]}..{depths[-1]}, {where}"
    if route == "limit":
        slope_ode = fit_slope(np.log2(depths), slope_table(ds, route, "ode")[:, 0])
        slope_mup = fit_slope(np.log2(depths), slope_table(ds, route, "depth_mup")[:, 0])
        ode_estimate = slope_ode
        diff = deterministic(
            np.array([slope_ode.value, -slope_mup.value]),
            np.array([slope_ode.value - slope_ode.low, slope_mup.value - slope_mup.low]),
        )
    else:
        grow_ode, grow_mup = growth(ds, route, "ode"), growth(ds, route, "depth_mup")
        ode_estimate = t_interval(grow_ode)
        diff = paired_interval(grow_ode, grow_mup)
    return [
        Claim(
            experiment=NAME,
            claim="ODE (1, 0): the normalised curves' slopes grow with L",
            source=f"{kind}: Fig. 18: ODE slopes grow with L (κ → 0, Claim 7.4){adam_note}",
            quantity=f"d(1/2 − κ̂)/d log2 L, κ̂ over {window}",
            estimate=ode_estimate,
            paper="grow",
            **SIGN_ONLY,
        ),
        Claim(
            experiment=NAME,
            claim="Depth-µP's slopes grow more slowly with L than the ODE scaling's",
            source=f"{kind}: Fig. 18: µP almost flat, ODE slopes grow with L{adam_note}",
            quantity=f"growth(ODE) − growth(µP) of 1/2 − κ̂ per doubling, {window}"
            + (", paired over seeds" if route == "finite" else ""),
            estimate=diff,
            paper="µP slowly, ODE quickly",
            **SIGN_ONLY,
        ),
    ]
