"""``limitsim coordcheck --widths 64 128 256 --depths 8 32 128``: the coordinate check.

Trains finite resnets (route R4) for a few steps at every width × depth (seeds batched),
records the probe's features and plots how large x, h and f are, and how much they moved
since initialization, against the width (one line per depth) at the recorded steps (the
paper's Figs. 8–9).  A well-scaled parametrization gives flat lines in width and depth.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from limitsim.commands._output import output_file, print_json
from limitsim.commands.train import add_network_arguments, make_param, make_task
from limitsim.finite import check_memory, train_finite_batch
from limitsim.measures import COORDINATE_FRACTIONS, coordinate_check
from limitsim.run import Record

QUANTITIES = ("delta", "rms")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``coordcheck`` subcommand."""
    parser = subparsers.add_parser(
        "coordcheck",
        help="coordinate check of finite resnets across widths and depths",
        description="RMS of x, h, f (or of their change since init) vs width, per depth.",
    )
    add_network_arguments(parser)
    parser.set_defaults(steps=11, batch_size=16, depth=None)
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--depths", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument(
        "--record-steps",
        type=int,
        nargs="+",
        default=[1, 5, 10],
        help="steps shown (step 0 is always recorded)",
    )
    parser.add_argument("--seeds", type=int, default=2, help="seeds averaged per cell")
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
    parser.add_argument("--data", help="also save the table as netCDF")
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train every cell, build the table, plot it."""
    if args.depth is not None:
        raise ValueError("coordcheck takes --depths (several), not --depth")
    steps = sorted({0, *args.record_steps})
    if steps[-1] > args.steps:
        raise ValueError(f"--record-steps must be <= --steps ({args.steps}), got {steps}")
    figure = output_file(args.out, "--out", plot=True)
    if args.data:
        output_file(args.data, "--data")
    task = make_task(args, 0)
    param = make_param(args)
    options: dict[str, Any] = dict(
        seeds=list(range(args.seeds)),
        phi=args.phi,
        block_depth=args.block_depth,
        block=args.block,
        pre_ln=args.pre_ln,
        dtype=args.dtype,
        eval_every=1,
        record=Record(steps=tuple(steps), backward=False),
    )
    check_memory(task, param, depth=max(args.depths), width=max(args.widths), **options)
    runs = []
    for depth in args.depths:
        for width in args.widths:
            runs += train_finite_batch(task, param, depth=depth, width=width, **options)
    table = coordinate_check(runs)
    if args.data:
        table.to_netcdf(args.data)
    plot(
        table,
        figure,
        fraction=args.fraction,
        quantity=args.quantity,
        title=f"{param.name} eta={param.eta:g} phi={args.phi}",
    )
    if args.json:
        print_json(_as_json(table, args.fraction))
    else:
        print(f"coordinate check of {len(runs)} runs -> {args.out}")
    return 0


def plot(table: Any, path: Path, *, fraction: float, quantity: str, title: str) -> None:
    """Panels: rows x, h, f; columns the recorded steps after 0; lines per depth vs width."""
    from limitsim.plotting import depth_colors, new_figure

    shown = [int(s) for s in table.step.values if s > 0]
    fig, axes = new_figure(len(shown), 3, width=2.8, height=2.3)
    colors = depth_colors([int(d) for d in table.depth.values])
    suffix = "_delta" if quantity == "delta" else "_rms"
    for row, name in enumerate(("x", "h", "f")):
        data = table[f"{name}{suffix}"]
        if "fraction" in data.dims:
            data = data.sel(fraction=fraction)
        for col, step in enumerate(shown):
            ax = axes[row, col]
            for depth in table.depth.values:
                values = data.sel(step=step, depth=depth)
                ax.plot(
                    table.width,
                    values,
                    marker="o",
                    color=colors[int(depth)],
                    label=f"L={int(depth)}",
                )
            ax.set_xscale("log", base=2)
            panel = np.asarray(data.sel(step=step).values)
            if np.any(np.isfinite(panel) & (panel > 0)):
                ax.set_yscale("log")
            else:  # e.g. f after the last update: no output is computed there
                ax.text(0.5, 0.5, "not available", transform=ax.transAxes, ha="center")
            label = f"RMS {'Δ' if quantity == 'delta' else ''}{name}"
            where = "" if name == "f" else f" (λ={fraction:g})"
            ax.set_title(f"{label}{where}, step {step}")
            ax.set_xlabel("width n")
    axes[0, 0].legend()
    fig.suptitle(title)
    fig.savefig(path)
    import matplotlib.pyplot as plt

    plt.close(fig)


def _as_json(table: Any, fraction: float) -> dict[str, Any]:
    """Coordinates and the tables at ``fraction`` (arrays, for :func:`print_json`)."""
    out: dict[str, Any] = {k: table[k].values for k in ("width", "depth", "step")}
    for name in ("x_rms", "x_delta", "h_rms", "h_delta"):
        out[name] = table[name].sel(fraction=fraction).values
    for name in ("f_rms", "f_delta"):
        out[name] = table[name].values
    return out
