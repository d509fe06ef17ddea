"""``limitsim simulate``: train the infinite-width limit by Tensor-Program Monte Carlo (R3).

::

    limitsim simulate --task few_point --steps 10 --batch-size 4 --phi relu --depth 16
                      [--param depth_mup --alpha A --gamma G --a 1 --eta 0.1 --optimizer sgd]
                      [--block post --block-depth 1 --pre-ln]
                      [--n-particles 4096 --n-replicas 8 --n-partners M --seed 0]
                      [--record 0 10] [--depth-limit 4 8 16 32] [--out run.nc] [--json]

The options mirror ``limitsim train`` (same network, parametrization and task options; no
``--width``: the width is infinite; defaults are a small few-point task, since every
training vector adds a hat per matrix).  Prints the loss with Monte Carlo standard errors per
step, or ``--json`` the summary of ``limitsim train`` plus ``loss``/``loss_se``; ``--out``
saves the Run as netCDF; ``--depth-limit`` runs the depth ladder and reports the L → ∞
extrapolation instead.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from limitsim.commands._output import output_file, print_json
from limitsim.commands.train import (
    add_network_arguments,
    make_param,
    make_task,
    network_options,
    summary,
)

__all__ = ["register", "run"]

#: Defaults that differ from ``limitsim train`` (the particle cost grows like (T·B)²).
SMALL_TASK = {"task": "few_point", "steps": 10, "batch_size": 4, "eta": 1.0}


def register(subparsers: Any) -> None:
    """Add the ``simulate`` subcommand."""
    parser = subparsers.add_parser(
        "simulate",
        help="train the infinite-width limit by particles (route R3)",
        description=__doc__.split("::")[0].strip(),
    )
    add_network_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulator and batches")
    parser.add_argument("--record", type=int, nargs="*", metavar="STEP", help="probe steps")
    parser.add_argument("--n-particles", type=int, default=4096, help="total particles N")
    parser.add_argument("--n-replicas", type=int, default=8, help="independent replicas")
    parser.add_argument("--n-partners", type=int, default=None, help="Adam partners (M)")
    parser.add_argument(
        "--depth-limit",
        type=int,
        nargs="+",
        default=None,
        metavar="L",
        help="depth ladder (>= 3 depths): extrapolate L -> inf",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--out", help="save the run as netCDF (e.g. run.nc)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run, **SMALL_TASK)


def run(args: argparse.Namespace) -> int:
    """Simulate and print the loss curve with its standard errors."""
    from limitsim.particles.depth import depth_limit
    from limitsim.particles.simulate import simulate_limit
    from limitsim.run import Record

    if args.out:
        output_file(args.out, "--out")
    task = make_task(args, args.seed)
    param = make_param(args)
    options: dict[str, Any] = dict(
        n_particles=args.n_particles,
        seed=args.seed,
        n_replicas=args.n_replicas,
        n_partners=args.n_partners,
        progress=not args.quiet,
        **network_options(args),
    )
    start = time.perf_counter()
    if args.depth_limit is not None:
        result = depth_limit(task, param, depths=tuple(args.depth_limit), **options)
    else:
        record = None if not args.record else Record(steps=tuple(args.record))
        result = simulate_limit(task, param, depth=args.depth, record=record, **options)
    seconds = time.perf_counter() - start
    if args.out:
        result.save(args.out)
    info = summary(result, seconds)
    info.update(
        route=result.route,
        task=task.name,
        loss=result.loss.tolist(),
        loss_se=np.asarray(result.loss_se).tolist(),
    )
    if args.json:
        print_json(info)
        return 0
    print(f"{result.route}: {task.name}, {param.name}, phi={args.phi}")
    for t, (value, se) in enumerate(zip(result.loss, np.asarray(result.loss_se), strict=True)):
        print(f"step {t:5d}  loss {value:.6g} ± {se:.2g}")
    if result.diverged:
        print(f"diverged at step {result.diverged_step}")
    return 0
