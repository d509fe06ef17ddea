"""Layerwise linearization (Claim 7.6, Def. 7.7) and Def. E.1 against the simulated depth limit.

**Claim 7.6.**  A stable, nontrivial parametrization (α + γ = 1) linearizes every block,
``L^{-α} G(φ(W_t x) − φ(W_0 x) − φ′(W_0 x) ⊙ ((W_t − W_0) x)) = o(L^{-1})`` with
``x = x_t^{l-1}`` (Def. 7.7), iff α ∈ [1/2, 1).  Finite resnets (``phi``, default tanh: a smooth
φ, for which the remainder is second order in ``(W_t − W_0) x = Θ(L^{-γ})``) train on the
regression task of :func:`limitsim.experiments._diversity_limit.regression_task` with SGD for
``steps`` steps (early training, where the L-asymptotics already hold at these depths); the
remainder is recorded per block by ``Record(remainder=True)`` for the first training input.
The measured quantity is ``L · mean_l RMS(remainder_l)`` at t = ``steps`` (the remainder
relative to ``L^{-1}``), and its log–log slope in L per seed (t interval over seeds).  For a
smooth φ, ``L · remainder ∝ L · L^{-α} L^{-2γ} = L^{α−1}``: → 0 for α < 1 (slope < 0,
linearization), Θ(1) at α = 1 (slope 0 ± 0.15, no linearization).  In the exact linear limit
(φ = id) the remainder vanishes identically, and the particle simulator does not expose
``W_0 x`` and ``ΔW x`` separately, so this claim has no n = ∞ row.

**Def. E.1** (App. E, Claim E.1: the recursion gives the L → ∞ limit of SGD training for
smooth φ).  :func:`limitsim.particles.depth.def_e1` (printed and corrected, ``tp6-notes.md`` §3.4)
on a depth grid ``e1_grid``, extrapolated by
:func:`limitsim.particles.depth.extrapolate_first_order`, against
:func:`limitsim.particles.depth.depth_limit` (particle simulator on the ladder ``e1_depths``, with
``PARTICLE_REPLICAS`` replicas).  The quantity is the relative distance ``D = sqrt(mean_{t,b}((f_E1
− f_sim)² − se²)) / RMS_{t,b}(f_E1(t) − f_E1(0))``: the RMS difference of the output trajectories,
its square corrected for the simulator's Monte Carlo and extrapolation variance ``se²`` (and E.1's
extrapolation error), in units of what training moved the outputs.  Its interval propagates the
variance of that estimate (``Σ (4Δ²σ² + 2σ⁴)``, as in :mod:`limitsim.experiments.convergence`) with
t over the replicas. Claim E.1 predicts D = 0; the accepted range [0, 0.1] allows a tenth of the
training signal for the extrapolations' remaining O(L^-2) error.
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
from limitsim.experiments._plots import log_depth_axes, plot_depth_points
from limitsim.experiments._synthetic import TINY_PROJECTION, AlphaGammaGrid, ProjectionTask
from limitsim.plotting import new_figure, save_figure
from limitsim.report import Claim
from limitsim.stats import Estimate, from_standard_error, missing, t_interval

NAME = "linearization"
TITLE = "Layerwise linearization (Claim 7.6) and Def. E.1 vs the simulated depth limit"
#: Independent replicas of the particle simulations (their Monte Carlo error bars).
PARTICLE_REPLICAS = 8
#: Accepted distance of Def. E.1 from the simulator, in units of the training movement.
E1_TOLERANCE = 0.1
#: Accepted |slope| for "Θ(1)" (prediction ± 0.15, as for the other fitted exponents).
EXPONENT_TOLERANCE = 0.15


@dataclass(frozen=True, kw_only=True)
class Sizes(AlphaGammaGrid, ProjectionTask):
    """Sizes of the linearization experiment; the fields are read by :func:`run`."""

    phi: str
    e1_phi: str
    e1_eta: float
    e1_steps: int
    e1_depths: tuple[int, ...]
    e1_grid: tuple[int, ...]
    n_particles: int


#: tiny (tests), quick (2 cores, about 30 s), standard and paper, each derived from the last.
TINY = Sizes(
    **TINY_PROJECTION,
    alpha_gammas=("0.5,0.5", "1,0"),
    depths=(4, 8, 16),
    seeds=2,
    width=32,
    phi="tanh",
    eta=0.5,
    e1_phi="relu",
    e1_eta=0.5,
    e1_steps=3,
    e1_depths=(2, 4, 8),
    e1_grid=(4, 8, 16),
    n_particles=1024,
)
QUICK = replace(
    TINY,
    alpha_gammas=("0.5,0.5", "0.75,0.25", "1,0"),
    depths=(8, 16, 32, 64, 128),
    seeds=8,
    width=64,
    e1_steps=4,
    e1_depths=(4, 8, 16),
    e1_grid=(16, 32, 64),
    n_particles=16384,
)
STANDARD = replace(QUICK, depths=(8, 16, 32, 64, 128, 256), width=128, seeds=16)
PAPER = replace(
    STANDARD,
    depths=(8, 16, 32, 64, 128, 256, 512, 1024),
    width=512,
    e1_phi="tanh",
    e1_depths=(4, 8, 16, 32, 64),
    e1_grid=(32, 64, 128),
    n_particles=65536,
)
SIZES = {"tiny": TINY, "quick": QUICK, "standard": STANDARD, "paper": PAPER}
FIXED = ("width", "phi", "eta", "steps", "n_points", "d_in", "target_scale")
E1_FIXED = ("e1_phi", "e1_eta", "e1_steps", "n_points", "d_in", "target_scale", "n_particles")


def _alpha_gamma(label: str) -> tuple[float, float]:
    alpha, gamma = (float(v) for v in label.split(","))
    return alpha, gamma


def _task(point: Mapping[str, Any], steps: int) -> Any:
    from limitsim.experiments._diversity_limit import regression_task

    return regression_task(
        steps=steps,
        n_points=int(point["n_points"]),
        d_in=int(point["d_in"]),
        target_scale=float(point["target_scale"]),
    )


def remainder_points(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finite nets of one depth, batched over (α, γ) and seed (sweep function).

    Returns ``scaled_remainder``: L · mean over blocks of Def. 7.7's remainder RMS at the
    last step.
    """
    from limitsim.finite.train import train_finite_batch
    from limitsim.parametrization import Parametrization
    from limitsim.run import Record

    first = points[0]
    T, L = int(first["steps"]), int(first["depth"])
    params = [
        Parametrization(alpha=a, gamma=g, eta=float(first["eta"]))
        for a, g in (_alpha_gamma(str(p["alpha_gamma"])) for p in points)
    ]
    runs = train_finite_batch(
        _task(first, T),
        params,
        depth=L,
        width=int(first["width"]),
        phi=str(first["phi"]),
        seeds=[int(p["seed"]) for p in points],
        eval_every=0,
        record=Record(steps=(T,), backward=False, remainder=True),
    )
    out = []
    for run in runs:
        if run.diverged or run.recorded is None or run.recorded.remainder is None:
            out.append({"scaled_remainder": math.nan, "diverged": True})
            continue
        out.append({"scaled_remainder": L * float(np.mean(run.recorded.remainder[-1]))})
    return out


def e1_point(point: dict[str, Any]) -> dict[str, Any]:
    """Def. E.1 (both variants, extrapolated) and the simulated depth limit (sweep function)."""
    from limitsim.parametrization import Parametrization
    from limitsim.particles._def_e1 import VARIANTS
    from limitsim.particles.depth import def_e1, depth_limit, extrapolate_first_order
    from limitsim.sweeps.grid import point_seed

    task = _task(point, int(point["e1_steps"]))
    param = Parametrization.depth_mup(eta=float(point["e1_eta"]))
    phi, grid = str(point["e1_phi"]), tuple(int(L) for L in point["e1_grid"])
    sim = depth_limit(
        task,
        param,
        phi=phi,
        depths=tuple(int(L) for L in point["e1_depths"]),
        n_particles=int(point["n_particles"]),
        n_replicas=PARTICLE_REPLICAS,
        seed=point_seed(point),
        progress=False,
    )
    out: dict[str, Any] = {"f_sim": sim.f[..., 0], "f_sim_se": np.asarray(sim.f_se)[..., 0]}
    for variant in VARIANTS:
        ladder = np.stack([def_e1(task, param, phi=phi, depth=L, variant=variant).f for L in grid])
        f, _, err = extrapolate_first_order(ladder, None, grid)
        out[f"f_{variant}"], out[f"f_{variant}_err"] = f[..., 0], err[..., 0]
    return out


def run(sizes: Mapping[str, Any], context: Context | None = None) -> xr.Dataset:
    """The remainder grid (alpha_gamma, depth, seed) and the E.1 comparison (step, example)."""
    from limitsim.sweeps.grid import Grid

    grid = Grid(
        axes={
            "alpha_gamma": list(sizes["alpha_gammas"]),
            "depth": list(sizes["depths"]),
            "seed": seed_axis(context, int(sizes["seeds"])),
        },
        fixed={key: sizes[key] for key in FIXED},
    )
    finite = sweep(
        context, NAME, remainder_points, grid, batch_axes=("alpha_gamma", "seed"), batch_size=32
    )
    e1 = sweep(
        context,
        f"{NAME}_e1",
        e1_point,
        Grid(
            axes={"e1_phi": [str(sizes["e1_phi"])]},
            fixed={
                **{k: sizes[k] for k in E1_FIXED if k != "e1_phi"},
                "e1_depths": list(sizes["e1_depths"]),
                "e1_grid": list(sizes["e1_grid"]),
                "base_seed": seed_axis(context, 1)[0],
            },
        ),
    ).isel(e1_phi=0)
    e1_vars = {}
    for var in e1.data_vars:
        if str(var).startswith("f_"):
            da = e1[var]
            e1_vars[str(var)] = (("step", "example"), da.values)
    ds = xr.Dataset({"scaled_remainder": finite.scaled_remainder, **e1_vars})
    ds.attrs = {key: sizes[key] for key in (*FIXED, *E1_FIXED)} | {
        "e1_depths": list(sizes["e1_depths"]),
        "e1_grid": list(sizes["e1_grid"]),
    }
    return ds


# --------------------------------------------------------------------- measures
def remainder_slopes(ds: xr.Dataset, label: str) -> np.ndarray:
    """Per seed, slope of log(L · remainder) against log L; NaN for a seed with a lost depth."""
    table = ds.scaled_remainder.sel(alpha_gamma=label).transpose("seed", "depth").values
    x = np.log(ds.depth.values.astype(float))
    return np.array(
        [
            np.polyfit(x, np.log(row), 1)[0] if np.all(np.isfinite(row) & (row > 0)) else np.nan
            for row in table
        ]
    )


def e1_distance(ds: xr.Dataset, variant: str) -> Estimate:
    """Relative RMS distance of Def. E.1 ``variant`` from the simulator (module docstring)."""
    f_e1, f_sim = ds[f"f_{variant}"].values, ds.f_sim.values
    s2 = ds.f_sim_se.values**2 + ds[f"f_{variant}_err"].values ** 2
    moved = float(np.sqrt(np.mean((ds.f_corrected.values - ds.f_corrected.values[:1]) ** 2)))
    if not (np.all(np.isfinite(f_sim)) and moved > 0):
        return missing(PARTICLE_REPLICAS)
    d2 = (f_e1 - f_sim) ** 2
    m = d2.size
    D2 = float(np.mean(d2 - s2))
    var = float(np.sum(4 * np.maximum(d2 - s2, 0.0) * s2 + 2 * s2**2)) / m**2
    D = math.sqrt(max(D2, 0.0))
    # interval on D² (t over the replicas), mapped to D through the square root
    est = from_standard_error(
        D2, math.sqrt(var), dof=PARTICLE_REPLICAS - 1, seeds=PARTICLE_REPLICAS
    )
    low = math.sqrt(max(est.low, 0.0)) if math.isfinite(est.low) else math.nan
    high = math.sqrt(max(est.high, 0.0)) if math.isfinite(est.high) else math.nan
    return Estimate(value=D / moved, low=low / moved, high=high / moved, seeds=PARTICLE_REPLICAS)


# ------------------------------------------------------------------------ plots
def plot(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """Left: L · remainder vs L per (α, γ) with L^(α−1) guides; right: E.1 vs the simulator."""
    fig, axes = new_figure(2, 1, width=3.8, height=3.0)
    ax = axes[0, 0]
    depths = ds.depth.values.astype(float)
    for k, label in enumerate(ds.alpha_gamma.values):
        values = ds.scaled_remainder.sel(alpha_gamma=label)
        slope = t_interval(remainder_slopes(ds, str(label))).value
        mean = plot_depth_points(ax, depths, values, color=f"C{k}", label=label, slope=slope)
        alpha, _ = _alpha_gamma(str(label))
        ax.plot(depths, mean[0] * (depths / depths[0]) ** (alpha - 1), "--", color=f"C{k}", lw=0.8)
    log_depth_axes(ax, "L · RMS(Def. 7.7 remainder)")
    ax.set_title(
        f"Claim 7.6, φ = {ds.attrs.get('phi')}, t = {ds.attrs.get('steps')}; dashed: L^(α−1)",
        fontsize=8,
    )
    ax.legend(fontsize=6)
    _plot_e1(axes[0, 1], ds)
    return save_figure(fig, out_dir, NAME)


def _plot_e1(ax: Any, ds: xr.Dataset) -> None:
    """Def. E.1's outputs (corrected and printed) against the simulated depth limit (95% bars)."""
    steps = np.arange(ds.sizes["step"])
    for b in range(ds.sizes["example"]):
        color = f"C{b}"
        ax.errorbar(
            steps,
            ds.f_sim.values[:, b],
            yerr=1.96 * ds.f_sim_se.values[:, b],
            fmt="o",
            ms=3,
            capsize=2,
            color=color,
            label="simulator L → ∞" if b == 0 else None,
        )
        for variant, style in (("corrected", "-"), ("printed", ":")):
            label = f"Def. E.1 {variant}" if b == 0 else None
            ax.plot(steps, ds[f"f_{variant}"].values[:, b], style, color=color, lw=1, label=label)
    ax.set_xlabel("step t")
    ax.set_ylabel("output f_t (one line per example)")
    ax.set_title(f"Def. E.1 vs simulated depth limit, φ = {ds.attrs.get('e1_phi')}", fontsize=8)
    ax.legend(fontsize=6)


# ----------------------------------------------------------------------- claims
def claims(ds: xr.Dataset) -> list[Claim]:
    """Claim 7.6 per (α, γ) on finite nets; Def. E.1 (both variants) vs the depth limit."""
    out = []
    depths = [int(L) for L in ds.depth.values]
    where = (
        f"finite {ds.attrs.get('phi')} nets, width {ds.attrs.get('width')}, SGD, "
        f"t = {ds.attrs.get('steps')}, L = {depths[0]}..{depths[-1]}"
    )
    for label in (str(v) for v in ds.alpha_gamma.values):
        alpha, _ = _alpha_gamma(label)
        estimate = t_interval(remainder_slopes(ds, label))
        linearizes = 0.5 <= alpha < 1
        out.append(
            Claim(
                experiment=NAME,
                claim=f"(α, γ) = ({label}): "
                + ("layerwise linearization" if linearizes else "no layerwise linearization"),
                source="paper: Claim 7.6 (Def. 7.7): layerwise linearization ⇔ α ∈ [1/2, 1)",
                quantity=f"slope of log(L · RMS remainder) vs log L, mean over blocks, {where}",
                estimate=estimate,
                paper=(
                    f"remainder = o(L^-1) (smooth φ: L · remainder ∝ L^{alpha - 1:g})"
                    if linearizes
                    else "remainder = Θ(L^-1)"
                ),
                low=-math.inf if linearizes else -EXPONENT_TOLERANCE,
                high=0.0 if linearizes else EXPONENT_TOLERANCE,
                range_reason=(
                    "sign only: → 0" if linearizes else "0 ± 0.15 for finite-L corrections"
                ),
            )
        )
    # as lists: a dataset read back from netCDF holds its list attributes as arrays
    grid = [int(L) for L in np.atleast_1d(ds.attrs.get("e1_grid", []))]
    depths = [int(L) for L in np.atleast_1d(ds.attrs.get("e1_depths", []))]
    for variant in ("corrected", "printed"):
        out.append(
            Claim(
                experiment=NAME,
                claim=f"Def. E.1 ({variant}) gives the L → ∞ limit of SGD training",
                source="paper: App. E, Claim E.1 (Def. E.1 is the depth limit for smooth φ)",
                quantity=f"RMS_(t,b)(f_E1 − f_sim) / RMS(f_E1(t) − f_E1(0)), MC-corrected; "
                f"E.1 on L = {grid} and simulator on L = {depths}, both "
                f"Richardson-extrapolated; φ = {ds.attrs.get('e1_phi')}, Depth-µP SGD, "
                f"{ds.attrs.get('n_particles')} particles in {PARTICLE_REPLICAS} replicas",
                estimate=e1_distance(ds, variant),
                paper="0 (E.1 exact as L → ∞)",
                low=0.0,
                high=E1_TOLERANCE,
                range_reason="a tenth of the training movement for the extrapolations' "
                "O(L^-2) remainder",
            )
        )
    return out
