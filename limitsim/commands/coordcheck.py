"""``limitsim coordcheck --widths 32 64 128 256 --depths 4 8 16 32 64``: the coordinate check.

Trains finite resnets (route R4) for a few steps at every width × depth, for Depth-µP
(``--param``) and beside it a parametrization that fails (``--compare``, default block-only
(1/2, 0)), several seeds batched per cell; records the probe's features and measures how
much x, h and f moved since initialization.  The figure plots each quantity against the width
(at the largest depth) and against the depth (at the largest width), the mean over seeds with
its 95% t-interval, on log axes spanning at least three decades, and gives each curve's
fitted log-log slope next to the exponent the theory predicts (:func:`predicted_exponents`).
A well-scaled parametrization gives flat lines in width and depth; block-only grows like
L^{1/2}.

:func:`coordcheck` is the Python API; the command line is a thin wrapper around it and
:func:`limitsim.commands._coordcheck_plot.plot_coordcheck`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from limitsim._generated import exponents
from limitsim.classification import classify
from limitsim.commands._output import output_file, print_json
from limitsim.commands.train import add_network_arguments, make_param, make_task, network_options
from limitsim.finite.train import check_memory, train_finite_batch
from limitsim.measures import COORDINATE_FRACTIONS, coordinate_check
from limitsim.parametrization import PRESETS, Parametrization, check_depth
from limitsim.run import Record
from limitsim.stats import LEVEL, fit_slope
from limitsim.task import Task

__all__ = [
    "AXES",
    "QUANTITIES",
    "VARIABLES",
    "coordcheck",
    "predicted_exponents",
    "register",
    "run",
]

#: What ``--quantity`` plots: ``delta`` the RMS of the change since init, ``rms`` the RMS.
QUANTITIES = ("delta", "rms")
#: The tabled variables, in the order the figure draws them.
VARIABLES = ("x_delta", "h_delta", "f_delta", "x_rms", "h_rms", "f_rms")
#: The coordinates a slope is fitted against.
AXES = ("width", "depth")


def predicted_exponents(alpha: float, gamma: float) -> dict[str, tuple[float, float]]:
    """Exponents of the coordinate-check quantities in width n and depth L, for (α, γ).

    The sizes after a gradient step, in the limit n → ∞ then L → ∞, at block ``⌊λL⌋`` for a
    fixed depth fraction λ > 0, follow from the counting rules behind :func:`classify`
    (``derivations/exponents.py``: a block's branch carries L^-α; its init noise is
    independent across blocks, so λL of them add incoherently; its update moves W^l x by
    Θ(L^-γ), and λL such correlated updates add coherently):

    - Δx^{⌊λL⌋} and Δf: a coherent sum of λL terms a L^-α Θ(L^-γ), so L^{1-α-γ}
      (``drift_exponent``; App. D.2, f̊_1 = Θ(L^{1-α-γ}); Claim 7.2);
    - Δh^{⌊λL⌋} = W_0 Δx + ΔW x: L^{max(1-α-γ, -γ)} (``preactivation_update_exponent``);
    - x: x_0 = Θ(1) when α ≥ 1/2 (its init part x^L − x^0 is L^{1/2-α}, Claim 7.1), plus
      Δx, so L^{max(0, 1/2-α, 1-α-γ)};
    - h: L^{max(0, -γ, 1-α-γ)} (``preactivation_exponent``; Claim 7.3, faithfulness);
    - f: f_0 → 0 as n → ∞ (V has variance n^-2, Table 2), so f_t = Δf_t: L^{1-α-γ}.

    In width every quantity is Θ(1) (exponent 0): every route here is µP in width (Table 2).
    Depth-µP (1/2, 1/2) gives 0 throughout, block-only (1/2, 0) gives 1/2 for every Δ (unstable
    during training), ODE (1, 0) gives 0.  For α < 1/2 the network is unstable at
    initialization (Claim 7.1): x grows like exp(L^{1-2α}), not a power of L, and every depth
    exponent is NaN.  The exponents are those of the first step; for a stable nontrivial
    parametrization they hold at every fixed step (Def. 7.2), for an unstable one the growth
    can compound with the steps.  They are derived for the paper's post-nonlin blocks of
    depth 1 (Sec. 6.3).  The RMS exponents are asymptotic: at moderate sizes the Θ(1) init
    parts x_0, h_0 (and f_0 = Θ(n^-1/2)) hide a growing Δ, so the Δ quantities are the
    sharper check.

    Parameters
    ----------
    alpha, gamma : float
        The depthwise parametrization (Def. 6.2).

    Returns
    -------
    dict
        ``{name: (width exponent, depth exponent)}`` for the names of :data:`VARIABLES`.

    Examples
    --------
    >>> predicted_exponents(0.5, 0.0)["h_delta"]
    (0.0, 0.5)
    """
    kind = classify(alpha, gamma)
    if not kind.stable_init:
        return {name: (0.0, math.nan) for name in VARIABLES}
    drift = float(exponents.drift_exponent(alpha, gamma))
    x = max(0.0, float(exponents.init_exponent(alpha)), drift)
    depth = {
        "x_delta": drift,
        "h_delta": float(exponents.preactivation_update_exponent(alpha, gamma)),
        "f_delta": drift,
        "x_rms": x,
        "h_rms": float(exponents.preactivation_exponent(alpha, gamma)),
        "f_rms": drift,
    }
    return {name: (0.0, depth[name]) for name in VARIABLES}


def coordcheck(
    task: Task,
    params: Parametrization | Sequence[Parametrization],
    *,
    widths: Sequence[int],
    depths: Sequence[int],
    seeds: int = 4,
    record_steps: Sequence[int] = (1, 5, 10),
    fraction: float = 0.5,
    phi: str = "relu",
    block_depth: int = 1,
    block: Literal["post", "pre"] = "post",
    pre_ln: bool = False,
    dtype: str = "float32",
) -> Any:
    """Coordinate check of one or more parametrizations: tables and fitted exponents.

    Every parametrization is trained at every width × depth for ``max(record_steps)`` or
    more steps (the task's) with seeds ``0 .. seeds-1`` (all parametrizations and seeds of a
    cell in one :func:`limitsim.train_finite_batch`; a seed draws the same initial weights
    for every parametrization), and tabled by :func:`limitsim.measures.coordinate_check`.

    Parameters
    ----------
    task : Task
        Training batches; the probe is its first input.
    params : Parametrization or sequence of Parametrization
        Distinct names (:attr:`Parametrization.name`), a common optimizer.
    widths, depths : sequence of int
        Grid of widths n and depths L (≥ 1 each; sorted, duplicates dropped).
    seeds : int
        Seeds averaged per cell (≥ 1; the bands need ≥ 2).
    record_steps : sequence of int
        Steps t ≥ 1 tabled besides step 0, at most ``task.steps`` (f is NaN at
        ``task.steps``: no output is computed after the last update).
    fraction : float
        Depth fraction λ (one of :data:`limitsim.measures.COORDINATE_FRACTIONS`) of the
        layer whose x and h are fitted.
    phi, block_depth, block, pre_ln, dtype
        Architecture, as in :func:`limitsim.train_finite_batch`.

    Returns
    -------
    xarray.Dataset
        Coordinates ``parametrization`` (names), ``width``, ``depth``, ``step`` (0 and
        ``record_steps``), ``fraction``, ``quantity`` (:data:`VARIABLES`), ``axis``
        (:data:`AXES`).  Variables: the tables of :func:`~limitsim.measures.coordinate_check`
        with a leading ``parametrization`` dimension (means over seeds and ``*_se``);
        ``alpha``, ``gamma`` (parametrization); ``exponent``, ``exponent_low``,
        ``exponent_high`` (parametrization, quantity, axis, step): the least-squares slope of
        log(mean) against log n at the largest depth (axis ``width``) or against log L at the
        largest width (axis ``depth``), with its 95% interval
        (:func:`limitsim.stats.fit_slope`; NaN with fewer than three points); and
        ``predicted_exponent`` (parametrization, quantity, axis) from
        :func:`predicted_exponents`.  Attributes ``fraction``, ``seeds``, ``level``.

    Raises
    ------
    ValueError, TypeError
        Bad arguments (before any training), or a batch larger than this machine's memory.
    """
    import xarray as xr

    param_list = [params] if isinstance(params, Parametrization) else list(params)
    grid = _check_arguments(task, param_list, widths, depths, seeds, record_steps, fraction)
    width_list, depth_list, steps = grid
    configs = [p for p in param_list for _ in range(seeds)]
    seed_list = [s for _ in param_list for s in range(seeds)]
    options: dict[str, Any] = dict(
        seeds=seed_list,
        phi=phi,
        block_depth=block_depth,
        block=block,
        pre_ln=pre_ln,
        dtype=dtype,
        eval_every=1,
        record=Record(steps=steps, backward=False),
    )
    check_memory(task, configs, depth=depth_list[-1], width=width_list[-1], **options)
    runs: dict[str, list[Any]] = {p.name: [] for p in param_list}
    for depth in depth_list:
        for width in width_list:
            batch = train_finite_batch(task, configs, depth=depth, width=width, **options)
            for k, result in enumerate(batch):
                runs[configs[k].name].append(result)
    tables = xr.concat(
        [coordinate_check(runs[p.name]) for p in param_list],
        dim=xr.DataArray([p.name for p in param_list], dims="parametrization"),
    )
    tables["alpha"] = ("parametrization", [p.alpha for p in param_list])
    tables["gamma"] = ("parametrization", [p.gamma for p in param_list])
    tables = tables.assign_coords(quantity=list(VARIABLES), axis=list(AXES))
    _add_exponents(tables, param_list, fraction)
    tables.attrs.update(fraction=fraction, seeds=seeds, level=LEVEL)
    return tables


def _check_arguments(
    task: Task,
    params: list[Parametrization],
    widths: Sequence[int],
    depths: Sequence[int],
    seeds: int,
    record_steps: Sequence[int],
    fraction: float,
) -> tuple[list[int], list[int], tuple[int, ...]]:
    """Validated, sorted widths, depths and recorded steps (with 0); errors name the input."""
    if not isinstance(task, Task):
        raise TypeError(f"task must be a limitsim.Task, got {type(task).__name__}")
    if not params or not all(isinstance(p, Parametrization) for p in params):
        raise TypeError("params must be a Parametrization or a non-empty sequence of them")
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise ValueError(f"params must have distinct names (α, γ), got {names}")
    if len({p.optimizer for p in params}) != 1:
        raise ValueError("params must share one optimizer")
    grid = []
    for label, values in (("widths", widths), ("depths", depths)):
        if isinstance(values, str | bytes) or not len(values):
            raise ValueError(f"{label} must be a non-empty sequence of positive integers")
        grid.append(sorted({check_depth(v, label) for v in values}))
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    steps = sorted({0, *(check_depth(s, "record_steps") for s in record_steps)})
    if steps[-1] > task.steps:
        raise ValueError(
            f"record_steps must be <= the task's steps ({task.steps}), got {steps[1:]}"
        )
    if fraction not in COORDINATE_FRACTIONS:
        raise ValueError(f"fraction must be one of {COORDINATE_FRACTIONS}, got {fraction!r}")
    return grid[0], grid[1], tuple(steps)


def _add_exponents(tables: Any, params: list[Parametrization], fraction: float) -> None:
    """Add the fitted and predicted exponents (see :func:`coordcheck`) to ``tables``."""
    shape = (len(params), len(VARIABLES), len(AXES), tables.step.size)
    fits = {k: np.full(shape, np.nan) for k in ("exponent", "exponent_low", "exponent_high")}
    predicted = np.full(shape[:3], np.nan)
    for i, param in enumerate(params):
        theory = predicted_exponents(param.alpha, param.gamma)
        for j, name in enumerate(VARIABLES):
            data = tables[name].isel(parametrization=i)
            if "fraction" in data.dims:
                data = data.sel(fraction=fraction)
            for a, axis in enumerate(AXES):
                other = AXES[1 - a]
                curve = data.sel({other: tables[other].values[-1]})
                predicted[i, j, a] = theory[name][a]
                for s in range(tables.step.size):
                    values = np.asarray(curve.isel(step=s).transpose(axis).values, dtype=float)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        logs = np.log(values)
                    fit = fit_slope(np.log(tables[axis].values.astype(float)), logs)
                    fits["exponent"][i, j, a, s] = fit.value
                    fits["exponent_low"][i, j, a, s] = fit.low
                    fits["exponent_high"][i, j, a, s] = fit.high
    dims = ("parametrization", "quantity", "axis", "step")
    for key, value in fits.items():
        tables[key] = (dims, value)
    tables["predicted_exponent"] = (dims[:3], predicted)


# ----------------------------------------------------------------------------- command line
def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``coordcheck`` subcommand."""
    parser = subparsers.add_parser(
        "coordcheck",
        help="coordinate check of finite resnets across widths and depths",
        description=(
            "Change of x, h, f since init (or their RMS) vs width and vs depth, mean of "
            "several seeds with 95% t-intervals, for --param beside --compare, with fitted "
            "and predicted exponents."
        ),
    )
    add_network_arguments(parser)
    parser.set_defaults(steps=11, batch_size=16, depth=None)
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--depths", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    parser.add_argument(
        "--compare",
        nargs="*",
        default=["block_only"],
        choices=sorted(PRESETS),
        metavar="PRESET",
        help="presets drawn beside --param, with its η, a, optimizer and base depth "
        "(default block_only; give none to draw --param alone)",
    )
    parser.add_argument(
        "--record-steps",
        type=int,
        nargs="+",
        default=[1, 5, 10],
        help="steps tabled (step 0 is always recorded)",
    )
    parser.add_argument(
        "--show-step", type=int, help="step drawn (default the last of --record-steps)"
    )
    parser.add_argument("--seeds", type=int, default=4, help="seeds averaged per cell")
    parser.add_argument(
        "--fraction",
        type=float,
        default=0.5,
        choices=COORDINATE_FRACTIONS,
        help="depth fraction λ of the plotted layer (default 0.5)",
    )
    parser.add_argument(
        "--quantity",
        default="delta",
        choices=QUANTITIES,
        help="'delta': RMS of the change since init; 'rms': RMS itself",
    )
    parser.add_argument("--out", default="coordcheck.png", help="figure path (PNG or PDF)")
    parser.add_argument("--data", help="also save the tables as netCDF")
    parser.add_argument("--json", action="store_true", help="print the tables as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train every cell, build the tables, plot them."""
    from limitsim.commands._coordcheck_plot import plot_coordcheck

    if args.depth is not None:
        raise ValueError("coordcheck takes --depths (several), not --depth")
    if max(args.record_steps) > args.steps:
        raise ValueError(f"--record-steps must be <= --steps ({args.steps})")
    show = max(args.record_steps) if args.show_step is None else args.show_step
    if show not in args.record_steps:
        raise ValueError(f"--show-step must be one of --record-steps, got {show}")
    figure = output_file(args.out, "--out", plot=True)
    if args.data:
        output_file(args.data, "--data")
    main = make_param(args)
    params = [main]
    for name in args.compare:
        alpha, gamma = PRESETS[name]
        if (alpha, gamma) != (main.alpha, main.gamma):
            params.append(dataclasses.replace(main, alpha=alpha, gamma=gamma))
    data = coordcheck(
        make_task(args, 0),
        params,
        widths=args.widths,
        depths=args.depths,
        seeds=args.seeds,
        record_steps=args.record_steps,
        fraction=args.fraction,
        dtype=args.dtype,
        **network_options(args),
    )
    if args.data:
        data.to_netcdf(args.data)
    title = f"{args.optimizer} η={main.eta:g} a={main.a:g} φ={args.phi}, task {args.task}"
    plot_coordcheck(data, figure, quantity=args.quantity, step=show, title=title)
    if args.json:
        print_json(_as_json(data, args.fraction))
    else:
        cells = data.width.size * data.depth.size
        print(f"coordinate check of {cells * len(params) * args.seeds} runs -> {args.out}")
    return 0


def _as_json(data: Any, fraction: float) -> dict[str, Any]:
    """Tables at ``fraction`` (those of the first parametrization at the top level, the
    others under ``compare``) and the exponents, one row per curve and step."""

    def tables(i: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in VARIABLES:
            table = data[name].isel(parametrization=i)
            if "fraction" in table.dims:
                table = table.sel(fraction=fraction)
            out[name] = table.transpose("width", "depth", "step").values
        return out

    names = [str(p) for p in data.parametrization.values]
    out: dict[str, Any] = {k: data[k].values for k in ("width", "depth", "step")}
    out["parametrization"] = names[0]
    out.update(tables(0))
    out["compare"] = {name: tables(i) for i, name in enumerate(names) if i}
    rows = []
    for i, name in enumerate(names):
        for j, quantity in enumerate(VARIABLES):
            for a, axis in enumerate(AXES):
                for s, step in enumerate(data.step.values):
                    if step == 0:
                        continue
                    rows.append(
                        {
                            "parametrization": name,
                            "alpha": float(data.alpha.values[i]),
                            "gamma": float(data.gamma.values[i]),
                            "quantity": quantity,
                            "axis": axis,
                            "step": int(step),
                            "exponent": float(data.exponent.values[i, j, a, s]),
                            "low": float(data.exponent_low.values[i, j, a, s]),
                            "high": float(data.exponent_high.values[i, j, a, s]),
                            "predicted": float(data.predicted_exponent.values[i, j, a]),
                        }
                    )
    out["exponents"] = rows
    return out
