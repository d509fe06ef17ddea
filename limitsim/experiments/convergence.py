"""Convergence of finite width to the infinite-width limit, and of finite depth to L → ∞.

Task: a few-step full-batch regression (:func:`limitsim.data.few_point`: ``n_points`` unit-norm
inputs, N(0, 1) targets, squared loss), SGD under Depth-µP (a = 1, η = ``eta``).  The compared
quantity is the output trajectory ``f_t`` (t = 0..T−1, every example).

**Width** (validation ladder step 3 and 4 of ``theory/algorithms.md`` §4; Fig. 8).  Finite
nets (:func:`limitsim.train_finite_batch`, float32) at depth ``width_depth`` and widths
``widths``, ``seeds`` initialisations each, against the n = ∞ limit at the same depth: exact
(:func:`limitsim.linear_limit`) for φ = linear, the particle simulator
(:func:`limitsim.simulate_limit`) for the nonlinear ``phi``.  Per seed,
``e² = mean_{t,b}(f_t^n − f_t^∞)²``; the error is ``err(n) = sqrt(mean_seeds e² − mean se²)``,
the subtracted term being the limit's own Monte Carlo variance (``Run.f_se²``, 0 when exact),
so that the estimate of err² is unbiased.  The fluctuations of a width-n net around its limit
are O(n^{-1/2}) (Tensor Programs; their mean, O(1/n), is smaller), so the predicted slope of
log2 err against log2 n is −1/2.

**Depth** (step 2 and 6; Figs. 9, Thm. C.3).  The exact linear limit at ``linear_depths`` against
its L → ∞ limit, the Richardson extrapolation through the ``reference_depths`` (the computation of
:func:`limitsim.linear_depth_limit` with ``grid=reference_depths``, tested equal in
``tests/test_experiment_convergence.py``): ``err(L) = RMS_{t,b}(f_t^L − f_t^∞)``, predicted slope
−1.  For the nonlinear φ, the particle simulator at ``particle_depths`` (a ladder of independent
simulations): successive differences ``D(L) = RMS_{t,b}(f^{2L} − f^L)`` (no extrapolated
reference needed; ``D(L) ≈ c/(2L)`` when ``f^L − f^∞ ≈ c/L``), with the Monte Carlo variance
``se_L² + se_{2L}²`` subtracted from each squared difference; predicted slope −1.

**Fits** (:func:`weighted_slope`): weighted least squares of log2 err on log2 n (or L) with
weights from the standard errors of log2 err (delta method; for ``e²`` the standard error over
seeds, for ``D²`` ``sqrt(Σ 4Δ²σ² + 2σ⁴)`` over its entries); the slope's standard error is the
formal one inflated by ``sqrt(χ²/dof)`` when that exceeds 1.  The exact linear depth ladder has
no noise: its slope's error is the least-squares one from the residuals (the misfit of a pure
power law).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from scipy import stats

from limitsim.experiments._common import Context, seed_axis, sweep
from limitsim.experiments._synthetic import FewPointTask, few_point_task
from limitsim.plotting import depth_colors, new_figure, save_figure
from limitsim.report import Claim
from limitsim.stats import from_standard_error

NAME = "convergence"
TITLE = "Convergence: finite width → n = ∞ limit, finite depth → L → ∞ (Figs. 8, 9)"
#: Independent replicas of each particle simulation (its Monte Carlo error bars).
PARTICLE_REPLICAS = 8


@dataclass(frozen=True, kw_only=True)
class Sizes(FewPointTask):
    """Sizes of the convergence experiment; the fields are read by :func:`run`."""

    eta: float
    a: float
    phi: str
    widths: tuple[int, ...]
    seeds: int
    width_depth: int
    linear_depths: tuple[int, ...]
    reference_depths: tuple[int, ...]
    particle_depths: tuple[int, ...]
    n_particles: int
    batch_size: int


#: tiny (tests), quick (2 cores, minutes) and paper (a cluster), each derived from the last.
TINY = Sizes(
    steps=3,
    n_points=4,
    d_in=8,
    task_seed=0,
    eta=0.5,
    a=1.0,
    phi="relu",
    widths=(16, 32, 64),
    seeds=3,
    width_depth=4,
    linear_depths=(4, 8, 16, 32),
    reference_depths=(8, 16, 32),
    particle_depths=(2, 4, 8),
    n_particles=1024,
    batch_size=8,
)
QUICK = replace(
    TINY,
    steps=10,
    widths=(64, 128, 256, 512, 1024),
    seeds=32,
    linear_depths=(8, 16, 32, 64, 128, 256, 512),
    reference_depths=(64, 128, 256, 512),
    particle_depths=(2, 4, 8, 16),
    n_particles=16384,
)
PAPER = replace(
    QUICK,
    widths=(64, 128, 256, 512, 1024, 2048, 4096),
    width_depth=16,
    linear_depths=(8, 16, 32, 64, 128, 256, 512, 1024),
    reference_depths=(128, 256, 512, 1024),
    particle_depths=(2, 4, 8, 16, 32, 64, 128),
    n_particles=131072,
    batch_size=2,
)
STANDARD = replace(QUICK, particle_depths=(2, 4, 8, 16, 32), n_particles=65536)
SIZES = {"tiny": TINY, "quick": QUICK, "standard": STANDARD, "paper": PAPER}


def _param(point: dict[str, Any]) -> Any:
    from limitsim.parametrization import Parametrization

    return Parametrization.depth_mup(eta=float(point["eta"]), a=float(point["a"]))


def finite_points(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finite nets of one (φ, width), batched over seeds (sweep function): ``f`` (T, B, e)."""
    from limitsim.finite.train import train_finite_batch

    first = points[0]
    runs = train_finite_batch(
        few_point_task(first), _param(first), depth=int(first["width_depth"]),
        width=int(first["width"]), phi=str(first["phi"]), seeds=[int(p["seed"]) for p in points],
        dtype="float32", eval_every=0, blas_threads=1,
    )  # fmt: skip
    return [{"f": r.f, "diverged": r.diverged} for r in runs]


def limit_point(point: dict[str, Any]) -> dict[str, Any]:
    """The n = ∞ limit at one depth (sweep function): ``f``, ``f_se`` (T, B, e).

    ``route="linear_limit"``: exact, φ = linear; ``route="particles"``: the particle simulator
    with φ = ``phi`` and a seed derived from the point.
    """
    from limitsim.linear.limit import linear_limit
    from limitsim.particles.simulate import simulate_limit
    from limitsim.sweeps.grid import point_seed

    task, param, depth = few_point_task(point), _param(point), int(point["depth"])
    if point["route"] == "linear_limit":
        run = linear_limit(task, param, depth=depth)
        return {"f": run.f, "f_se": np.zeros_like(run.f), "diverged": run.diverged}
    run = simulate_limit(task, param, depth=depth, phi=str(point["phi"]),
                         n_particles=int(point["n_particles"]), seed=point_seed(point),
                         n_replicas=PARTICLE_REPLICAS, progress=False)  # fmt: skip
    return {"f": run.f, "f_se": run.f_se, "diverged": run.diverged}


def run(sizes: Mapping[str, Any], context: Context | None = None) -> xr.Dataset:
    """Finite nets over (φ, width, seed) and limits over (route, depth), in one Dataset.

    Variables: ``f_finite`` (phi, width, seed, step, example), ``f_limit``/``f_limit_se``
    (phi, step, example: the limit at ``width_depth``), ``f_linear`` (depth, step, example:
    the linear ladder), ``f_particles``/``f_particles_se`` (particle_depth, step, example).
    """
    from limitsim.sweeps.grid import Grid

    task_keys = ("steps", "n_points", "d_in", "task_seed", "eta", "a")
    if int(sizes["seeds"]) < 2:
        raise ValueError(f"seeds must be >= 2 (standard errors over seeds), got {sizes['seeds']}")
    lin, par = list(sizes["linear_depths"]), list(sizes["particle_depths"])
    L0 = int(sizes["width_depth"])
    if not set(sizes["reference_depths"]) <= set(lin) or len(sizes["reference_depths"]) < 2:
        raise ValueError("reference_depths must be at least two of the linear_depths")
    fixed = {k: sizes[k] for k in task_keys}
    phis = ["linear", str(sizes["phi"])]
    seeds = seed_axis(context, int(sizes["seeds"]))
    finite = sweep(context, f"{NAME}_finite", finite_points, Grid(
        axes={"phi": phis, "width": list(sizes["widths"]), "seed": seeds},
        fixed={**fixed, "width_depth": L0},
    ), batch_axes=("seed",), batch_size=int(sizes["batch_size"]))  # fmt: skip
    limits = sweep(context, f"{NAME}_limits", limit_point, Grid(
        axes={"route": ["linear_limit", "particles"], "depth": sorted({*lin, *par, L0})},
        filters=["depth == width_depth or (route == 'linear_limit' and depth in linear_depths) "
                 "or (route == 'particles' and depth in particle_depths)"],
        fixed={**fixed, "phi": phis[1], "n_particles": int(sizes["n_particles"]),
               "linear_depths": lin, "particle_depths": par, "width_depth": L0,
               "base_seed": seeds[0]},  # the particles' seeds derive from every key
    ))  # fmt: skip
    dims = ("step", "example")
    f_fin = finite.f.isel(f_dim2=0).rename(f_dim0="step", f_dim1="example")
    lim, lim_se = limits.f.isel(f_dim2=0), limits.f_se.isel(f_se_dim2=0)
    lim_se = lim_se.rename(f_se_dim0="f_dim0", f_se_dim1="f_dim1")
    at = {"linear": ("linear_limit", L0), phis[1]: ("particles", L0)}
    ds = xr.Dataset(
        {
            "f_finite": f_fin,
            "f_limit": (("phi", *dims), np.stack([lim.sel(route=r, depth=d).values
                                                  for r, d in at.values()])),
            "f_limit_se": (("phi", *dims), np.stack([lim_se.sel(route=r, depth=d).values
                                                     for r, d in at.values()])),
            "f_linear": (("depth", *dims), lim.sel(route="linear_limit", depth=lin).values),
            "f_particles": (("particle_depth", *dims),
                            lim.sel(route="particles", depth=par).values),
            "f_particles_se": (("particle_depth", *dims),
                               lim_se.sel(route="particles", depth=par).values),
        },
        coords={"phi": phis, "depth": lin, "particle_depth": par,
                "step": np.arange(f_fin.sizes["step"]),
                "example": np.arange(f_fin.sizes["example"])},
    )  # fmt: skip
    ds.attrs = {
        **fixed,
        "phi_nonlinear": phis[1],
        "width_depth": L0,
        "n_particles": int(sizes["n_particles"]),
        "reference_depths": list(sizes["reference_depths"]),
    }
    return ds


def weighted_slope(x: np.ndarray, y: np.ndarray, sy: np.ndarray) -> tuple[float, float]:
    """Weighted least-squares slope of ``y`` on ``x`` and its SE (module docstring, Fits)."""
    x, y, sy = (np.asarray(v, dtype=np.float64) for v in (x, y, sy))
    ok = np.isfinite(y) & np.isfinite(sy) & (sy > 0)
    if ok.sum() < 3:
        return math.nan, math.nan
    x, y, w = x[ok], y[ok], 1.0 / sy[ok] ** 2
    xm, ym = (w @ x) / w.sum(), (w @ y) / w.sum()
    sxx = w @ (x - xm) ** 2
    slope = float(w @ ((x - xm) * (y - ym)) / sxx)
    chi2 = float(w @ (y - ym - slope * (x - xm)) ** 2) / (x.size - 2)
    return slope, math.sqrt(1.0 / sxx) * math.sqrt(max(1.0, chi2))


def width_errors(ds: xr.Dataset, phi: str) -> tuple[np.ndarray, np.ndarray]:
    """err(n) per width and the SE of log2 err(n) (module docstring, Width)."""
    diff = ds.f_finite.sel(phi=phi) - ds.f_limit.sel(phi=phi)
    e2 = (diff**2).mean(("step", "example")).transpose("width", "seed").values
    noise = float((ds.f_limit_se.sel(phi=phi) ** 2).mean())
    seeds = e2.shape[1]
    err2 = e2.mean(axis=1) - noise
    se2 = e2.std(axis=1, ddof=1) / math.sqrt(seeds)
    err = np.sqrt(np.where(err2 > 0, err2, np.nan))
    return err, se2 / (2 * err**2 * math.log(2))


def linear_reference(ds: xr.Dataset) -> np.ndarray:
    """f_t^∞ (step, example): Richardson through ``reference_depths`` of the linear ladder."""
    from limitsim.linear.depth import extrapolate_polynomial

    ref = [int(L) for L in ds.attrs["reference_depths"]]
    values = ds.f_linear.sel(depth=ref).values
    h = 1.0 / np.asarray(ref, dtype=np.float64)
    return extrapolate_polynomial(h, values, error=False)[0]


def linear_depth_errors(ds: xr.Dataset) -> np.ndarray:
    """RMS_{t,b}(f_t^L − f_t^∞) for each depth of the linear ladder."""
    diff = ds.f_linear.values - linear_reference(ds)[None]
    rms: np.ndarray = np.sqrt(np.mean(diff**2, axis=(1, 2)))
    return rms


def particle_differences(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(L, D(L), SE of log2 D(L)) for consecutive ladder depths (module docstring, Depth)."""
    f, se = ds.f_particles.values, ds.f_particles_se.values
    depths = ds.particle_depth.values
    d2 = (f[1:] - f[:-1]) ** 2
    s2 = se[1:] ** 2 + se[:-1] ** 2
    m = d2[0].size
    D2 = (d2 - s2).reshape(len(depths) - 1, -1).mean(axis=1)
    delta2 = np.maximum(d2 - s2, 0.0)
    var = (4 * delta2 * s2 + 2 * s2**2).reshape(len(depths) - 1, -1).sum(axis=1) / m**2
    D = np.sqrt(np.where(D2 > 0, D2, np.nan))
    return depths[:-1], D, np.sqrt(var) / (2 * D**2 * math.log(2))


def fits(ds: xr.Dataset) -> dict[str, tuple[float, float]]:
    """Fitted slopes and SEs: ``width:<φ>``, ``depth:linear``, ``depth:particles``."""
    out = {}
    widths = np.log2(ds.width.values.astype(float))
    for phi in ds.phi.values:
        err, sl = width_errors(ds, str(phi))
        out[f"width:{phi}"] = weighted_slope(widths, np.log2(err), sl)
    err = linear_depth_errors(ds)
    fit = stats.linregress(np.log2(ds.depth.values.astype(float)), np.log2(err))
    out["depth:linear"] = (float(fit.slope), float(fit.stderr))
    L, D, sl = particle_differences(ds)
    out["depth:particles"] = weighted_slope(np.log2(L.astype(float)), np.log2(D), sl)
    return out


def plot(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    """Error vs width, error vs depth (log–log, with n^-1/2 and L^-1 guides), f_t by width."""
    slopes = fits(ds)
    fig, axes = new_figure(3, 1, width=3.5, height=3.0)
    ax = axes[0, 0]
    n = ds.width.values.astype(float)
    for k, phi in enumerate(str(p) for p in ds.phi.values):
        err, sl = width_errors(ds, phi)
        ax.errorbar(n, err, yerr=err * sl * math.log(2), marker="o", capsize=2, color=f"C{k}",
                    label=f"{phi}: slope {slopes['width:' + phi][0]:.2f}")  # fmt: skip
        ax.plot(n, err[0] * (n / n[0]) ** -0.5, ":", color=f"C{k}", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="width n (log2 scale)",
           ylabel="RMS over t, b, seeds of f_t^n − f_t^∞",
           title=f"width → ∞ at L = {ds.attrs['width_depth']} (dotted: n^-1/2)")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    L = ds.depth.values.astype(float)
    ax.plot(
        L,
        linear_depth_errors(ds),
        "o-",
        color="C0",
        label=f"linear, exact: |f^L − f^∞|, slope {slopes['depth:linear'][0]:.2f}",
    )
    Lp, D, sl = particle_differences(ds)
    ax.errorbar(Lp, D, yerr=D * sl * math.log(2), marker="s", capsize=2, color="C1",
                label=f"{ds.attrs['phi_nonlinear']}, particles: |f^2L − f^L|, "
                f"slope {slopes['depth:particles'][0]:.2f}")  # fmt: skip
    for x, y, c in ((L, linear_depth_errors(ds), "C0"), (Lp.astype(float), D, "C1")):
        ax.plot(x, y[0] * (x / x[0]) ** -1.0, ":", color=c, lw=0.8)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="depth L (log2 scale)",
        ylabel="RMS over t, b of the difference",
        title="depth → ∞ (dotted: L^-1)",
    )
    ax.set_xscale("log", base=2)
    ax.legend(fontsize=6)
    ax = axes[0, 2]
    phi = str(ds.attrs["phi_nonlinear"])
    steps = np.arange(ds.sizes["step"])
    colors = depth_colors([int(w) for w in ds.width.values])
    for w in ds.width.values:
        f = ds.f_finite.sel(phi=phi, width=w, example=0)
        mean, se = f.mean("seed"), f.std("seed", ddof=1) / math.sqrt(ds.sizes["seed"])
        ax.plot(steps, mean, color=colors[int(w)], label=f"n = {int(w)}")
        ax.fill_between(steps, mean - se, mean + se, color=colors[int(w)], alpha=0.2)
    lim, lse = ds.f_limit.sel(phi=phi, example=0), ds.f_limit_se.sel(phi=phi, example=0)
    ax.errorbar(steps, lim, yerr=lse, fmt="k--", capsize=2, label="n = ∞ (particles)")
    ax.set(
        xlabel="SGD step t",
        ylabel="f_t (first example)",
        title=f"{phi}, L = {ds.attrs['width_depth']}: seed mean ± SE",
    )
    ax.legend(fontsize=6)
    fig.suptitle(f"few-point regression, Depth-µP SGD, η = {ds.attrs['eta']}; bars: ±1 SE")
    return save_figure(fig, out_dir, NAME)


def claims(ds: xr.Dataset) -> list[Claim]:
    """Fitted convergence exponents: −1/2 in width (check), −1 in depth (Thm. C.3, linear),
    at least the L^-1/2 of Def. E.1's heuristic for the particle depth ladder."""
    out = []
    n_widths = ds.sizes["width"]
    for key, (slope, se) in fits(ds).items():
        kind, what = key.split(":")
        if kind == "width":
            route = "exact linear limit" if what == "linear" else "particle limit"
            out.append(
                Claim(
                    experiment=NAME,
                    claim=f"finite width → n = ∞ limit at rate n^-1/2 ({what})",
                    source=f"check: finite nets against the {route} (Tensor Programs' "
                    "n^-1/2 fluctuations)",
                    quantity=f"fitted exponent of RMS(f^n − f^∞) vs n, L = "
                    f"{ds.attrs['width_depth']}, n = {int(ds.width[0])}..{int(ds.width[-1])}",
                    estimate=from_standard_error(
                        slope, se, dof=n_widths - 2, seeds=ds.sizes["seed"]
                    ),
                    paper="—",
                    low=-0.65,
                    high=-0.35,
                    range_reason="−1/2 ± 0.15",
                )
            )
        elif what == "linear":
            out.append(
                Claim(
                    experiment=NAME,
                    claim="finite depth → L → ∞ at rate 1/L (linear)",
                    source="paper: Thm. C.3: |Γ^(L/2) − Γ^L| ≤ c/L for linear resnets",
                    quantity="fitted exponent of RMS(f^L − f^∞) vs L, exact linear limit, "
                    f"L = {int(ds.depth[0])}..{int(ds.depth[-1])}",
                    estimate=from_standard_error(slope, se, dof=ds.sizes["depth"] - 2, seeds=None),
                    paper="O(1/L)",
                    low=-1.15,
                    high=-0.85,
                    range_reason="−1 ± 0.15",
                )
            )
        else:
            depths = ds.particle_depth.values
            out.append(
                Claim(
                    experiment=NAME,
                    claim=f"finite depth → L → ∞ ({ds.attrs['phi_nonlinear']}, n = ∞)",
                    source="extension: Def. E.1's heuristic bounds the depth error by "
                    "O(L^-1/2); the paper states no rate for nonlinear φ",
                    quantity=f"fitted exponent of RMS(f^2L − f^L) vs L, particles, "
                    f"L = {int(depths[0])}..{int(depths[-1])}",
                    estimate=from_standard_error(
                        slope, se, dof=len(depths) - 3, seeds=PARTICLE_REPLICAS
                    ),
                    paper="—",
                    low=-math.inf,
                    high=-0.35,
                    range_reason="at least L^-1/2 (−0.5 + 0.15)",
                )
            )
    return out
