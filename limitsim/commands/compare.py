"""``limitsim compare``: finite networks of growing width against the infinite-width limit.

::

    limitsim compare --task few_point --steps 5 --phi relu --depth 8
                     --widths 128 256 512 1024 --seeds 8 [--n-particles 16384]
                     [--plot convergence.png] [--json]

Trains the limit by particles (route R3, or the exact linear limit R2 with ``--phi linear``)
and finite networks (R4) of each width on the same task, and reports, per width, the RMS
over seeds, steps and examples of ``f_finite − f_limit``, with the fitted log–log slope
(theory: −1/2).  ``--plot`` draws that convergence and the loss curves.  Network, task and
parametrization options are those of ``limitsim train`` (defaults: ``limitsim simulate``'s).
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

import numpy as np
from scipy import stats

from limitsim.commands._output import output_file, print_json
from limitsim.commands.simulate import SMALL_TASK
from limitsim.commands.train import (
    add_network_arguments,
    make_param,
    make_task,
    network_options,
)

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``compare`` subcommand."""
    parser = subparsers.add_parser(
        "compare",
        help="finite widths vs the infinite-width limit on one task",
        description=__doc__.split("::")[0].strip(),
    )
    add_network_arguments(parser)
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 256, 512, 1024])
    parser.add_argument("--seeds", type=int, default=8, help="finite networks per width")
    parser.add_argument("--n-particles", type=int, default=16384, help="simulator particles")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed")
    parser.add_argument("--plot", default=None, help="write a convergence figure here")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run, **SMALL_TASK)


def run(args: argparse.Namespace) -> int:
    """Run the limit and the finite networks; print the error per width and its slope."""
    from limitsim.finite.train import check_memory, train_finite_batch
    from limitsim.linear.limit import linear_limit
    from limitsim.particles.simulate import simulate_limit

    if args.plot:
        output_file(args.plot, "--plot", plot=True)
    task = make_task(args, args.seed)
    param = make_param(args)
    network = network_options(args)
    finite: dict[str, Any] = dict(
        depth=args.depth, seeds=list(range(args.seeds)), dtype=args.dtype, **network
    )
    check_memory(task, param, width=max(args.widths), **finite)
    if (
        args.phi == "linear"
        and param.optimizer == "sgd"
        and args.block_depth == 1
        and (args.block == "post" and not args.pre_ln)
    ):
        limit = linear_limit(task, param, depth=args.depth)
    else:
        limit = simulate_limit(
            task,
            param,
            depth=args.depth,
            n_particles=args.n_particles,
            seed=args.seed,
            progress=False,
            **network,
        )
    widths = sorted(set(args.widths))
    rms, losses = [], []
    for width in widths:
        runs = train_finite_batch(task, param, width=width, **finite)
        f = np.array([r.f for r in runs])
        with warnings.catch_warnings():  # NaN (null in --json) where every run diverged
            warnings.simplefilter("ignore", RuntimeWarning)
            rms.append(float(np.sqrt(np.nanmean((f - limit.f) ** 2))))
            losses.append(np.nanmean([r.loss for r in runs], axis=0))
    slope = stats.linregress(np.log(widths), np.log(rms)).slope if len(widths) > 1 else None
    summary = {
        "route": limit.route,
        "widths": widths,
        "rms_error": rms,
        "slope": slope,
        "limit_loss": limit.loss.tolist(),
    }
    if args.plot:
        _plot(args.plot, widths, rms, slope, limit, losses)
    if args.json:
        print_json(summary)
        return 0
    print(f"limit ({limit.route}) vs finite width, {task.name}, phi={args.phi}, L={args.depth}")
    for width, err in zip(widths, rms, strict=True):
        print(f"width {width:6d}  rms(f_n - f_limit) {err:.4g}")
    if slope is not None:
        print(f"fitted slope {slope:.3f} (theory -0.5)")
    return 0


def _plot(
    path: str,
    widths: list[int],
    rms: list[float],
    slope: float | None,
    limit: Any,
    losses: list[Any],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.loglog(widths, rms, "o-", label="finite − limit")
    guide = rms[0] * (np.asarray(widths) / widths[0]) ** -0.5
    ax1.loglog(widths, guide, "k--", label="n^-1/2")
    ax1.set_xlabel("width n")
    ax1.set_ylabel("RMS error of f")
    ax1.set_title("" if slope is None else f"slope {slope:.2f}")
    ax1.legend()
    steps = np.arange(limit.loss.shape[0])
    for width, loss in zip(widths, losses, strict=True):
        ax2.plot(steps, loss, label=f"n = {width}")
    ax2.plot(steps, limit.loss, "k", lw=2, label="n = ∞")
    if limit.loss_se is not None:
        ax2.fill_between(
            steps,
            limit.loss - 2 * limit.loss_se,
            limit.loss + 2 * limit.loss_se,
            color="k",
            alpha=0.2,
        )
    ax2.set_xlabel("step")
    ax2.set_ylabel("loss")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
