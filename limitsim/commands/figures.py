"""``limitsim figures --profile quick --out DIR``: the paper's figures and a claims report."""

from __future__ import annotations

import argparse

from limitsim.experiments import EXPERIMENTS
from limitsim.experiments.profiles import PROFILES


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``figures`` subcommand."""
    parser = subparsers.add_parser(
        "figures",
        help="run the experiments, write figures and report.md",
        description="Run the paper's experiments (resumable) and write PNG/PDF figures, "
        "netCDF datasets and DIR/report.md.",
    )
    parser.add_argument("--profile", default="quick", choices=PROFILES)
    parser.add_argument("--out", default="figures", help="output directory (default figures)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=EXPERIMENTS,
        metavar="NAME",
        help=f"experiments to run (default all: {', '.join(EXPERIMENTS)})",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="dask.distributed scheduler (tcp://HOST:PORT) for the sweeps",
    )
    parser.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="base seed of every experiment (default 0); different seeds give disjoint, "
        "independent seed sets",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Make the figures."""
    from limitsim.figures import make_figures

    make_figures(
        args.profile,
        args.out,
        only=args.only,
        scheduler=args.scheduler,
        workers=args.workers,
        progress=not args.no_progress,
        seed=args.seed,
    )
    return 0
