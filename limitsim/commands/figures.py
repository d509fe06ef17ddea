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
    parser.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    parser.add_argument("--out", default="figures", help="output directory (default figures)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=EXPERIMENTS,
        metavar="NAME",
        help=f"experiments to run (default all: {', '.join(EXPERIMENTS)})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Make the figures."""
    from limitsim.figures import make_figures

    make_figures(args.profile, args.out, only=args.only)
    return 0
