"""``limitsim figures --profile quick --out DIR``: the paper's figures and a claims report."""

from __future__ import annotations

import argparse

from limitsim.commands._output import output_directory
from limitsim.experiments import EXPERIMENTS
from limitsim.experiments.profiles import PROFILES

#: Seconds to wait for ``--scheduler`` to answer before any experiment runs.
CONNECT_TIMEOUT = 5.0


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
        help="dask.distributed scheduler (tcp://HOST:PORT) for the sweeps; checked before "
        f"any experiment runs ({CONNECT_TIMEOUT:g} s to answer)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="local worker processes (default: all cores); with --estimate, the workers the "
        "wall time is predicted for",
    )
    parser.add_argument(
        "--estimate",
        action="store_true",
        help="print each experiment's predicted CPU core-hours and peak memory per worker, "
        "and the total, then exit without running anything",
    )
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
    """Make the figures (after checking ``--out`` and ``--scheduler``), or print the estimate."""
    from limitsim.figures import estimate, make_figures

    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be a positive integer, got {args.workers}")
    if args.estimate:
        print("\n".join(estimate(args.profile, only=args.only, workers=args.workers).lines()))
        return 0
    output_directory(args.out, "--out")
    if args.scheduler is not None:
        check_scheduler(args.scheduler, CONNECT_TIMEOUT)
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


def check_scheduler(address: str, timeout: float) -> None:
    """Connect to the dask scheduler at ``address`` once (handshake only), then disconnect.

    Raises
    ------
    ValueError
        ``address`` is not a scheduler address (``tcp://HOST:PORT``).
    ConnectionError
        No scheduler answered within ``timeout`` seconds.
    """
    import asyncio

    from limitsim.sweeps.sweep import _check_address

    address = _check_address(address)
    try:
        from distributed.comm import connect
    except ImportError:
        raise ValueError("--scheduler needs dask.distributed: pip install distributed") from None

    async def handshake() -> None:
        comm = await connect(address, timeout=timeout)
        await comm.close()

    try:
        asyncio.run(handshake())
    except ValueError as exc:  # distributed's address parser
        raise ValueError(f"--scheduler {address!r} is not a valid address: {exc}") from None
    except Exception as exc:  # any failure to connect: refused, timed out, not a scheduler
        raise ConnectionError(
            f"cannot connect to the dask scheduler at {address!r} within {timeout:g} s "
            f"({type(exc).__name__}: {exc}); is it running and reachable? Start one with "
            "`dask scheduler` and workers with `dask worker ADDRESS`"
        ) from None
