"""``limitsim train --depth 32 --width 256 --phi abs --param depth_mup --eta 0.1 --task digits``.

Trains one finite-width resnet (route R4) with a progress bar and prints a summary; ``--json``
prints the summary as JSON, ``--out run.nc`` saves the whole run (netCDF via xarray).
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np

from limitsim.commands._output import output_file, print_json
from limitsim.data import DATASETS
from limitsim.finite.train import BLOCKS, DTYPES, train_finite
from limitsim.parametrization import OPTIMIZERS, PRESETS, Parametrization
from limitsim.run import Record, Run
from limitsim.task import LOSSES, Task


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="train a finite-width resnet (route R4)",
        description="Train one width-n, depth-L resnet with SGD or Adam on a dataset.",
    )
    add_network_arguments(parser)
    parser.add_argument("--width", type=int, default=256, help="width n (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and batches")
    parser.add_argument(
        "--record",
        type=int,
        nargs="*",
        metavar="STEP",
        help="record probe kernels at these steps (saved with --out)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--out", help="save the run as netCDF (e.g. run.nc)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``train`` and ``coordcheck``: network, parametrization, task."""
    parser.add_argument("--depth", type=int, default=32, help="number of blocks L (default 32)")
    parser.add_argument("--phi", default="relu", help="nonlinearity spec (default relu)")
    parser.add_argument(
        "--param",
        default="depth_mup",
        choices=sorted(PRESETS),
        help="depthwise parametrization preset (default depth_mup)",
    )
    parser.add_argument("--alpha", type=float, help="override α of the preset")
    parser.add_argument("--gamma", type=float, help="override γ of the preset")
    parser.add_argument("--eta", type=float, default=0.1, help="learning rate η (default 0.1)")
    parser.add_argument("--a", type=float, default=1.0, help="branch multiplier a")
    parser.add_argument("--base-depth", type=float, default=1.0, help="base depth L0")
    parser.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS)
    parser.add_argument("--block", default="post", choices=BLOCKS)
    parser.add_argument("--block-depth", type=int, default=1, choices=(1, 2))
    parser.add_argument("--pre-ln", action="store_true", help="LayerNorm before each block")
    parser.add_argument("--dtype", default="float32", choices=tuple(DTYPES))
    parser.add_argument("--task", default="digits", choices=sorted(DATASETS))
    parser.add_argument("--data-path", help="directory of the CIFAR-10 pickles (--task cifar10)")
    parser.add_argument("--steps", type=int, default=500, help="training steps T")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size B")
    parser.add_argument("--loss", choices=LOSSES, help="loss (default: the dataset's)")


def network_options(args: argparse.Namespace) -> dict[str, Any]:
    """The network keywords of every route: ``phi``, ``block``, ``block_depth``, ``pre_ln``."""
    return dict(phi=args.phi, block=args.block, block_depth=args.block_depth, pre_ln=args.pre_ln)


def make_param(args: argparse.Namespace) -> Parametrization:
    """The Parametrization described by the command-line options."""
    alpha, gamma = PRESETS[args.param]
    return Parametrization(
        alpha=alpha if args.alpha is None else args.alpha,
        gamma=gamma if args.gamma is None else args.gamma,
        a=args.a,
        eta=args.eta,
        optimizer=args.optimizer,
        base_depth=args.base_depth,
    )


def make_task(args: argparse.Namespace, seed: int) -> Task:
    """The Task described by the command-line options."""
    if seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {seed}")
    options: dict[str, Any] = {"steps": args.steps, "seed": seed}
    if args.task == "few_point":
        if args.batch_size != 64:
            options["n_points"] = args.batch_size
    else:
        options["batch_size"] = args.batch_size
    if args.loss is not None:
        options["loss"] = args.loss
    if args.task == "cifar10":
        if args.data_path is None:
            raise ValueError("--task cifar10 needs --data-path DIR (python-pickle batches)")
        options["path"] = args.data_path
    return Task.from_dataset(args.task, **options)


def summary(run: Run, seconds: float) -> dict[str, Any]:
    """Final numbers of a run, JSON-serialisable."""
    window = max(1, min(50, run.steps // 10))
    final = run.final_loss(window)
    result: dict[str, Any] = {
        "config": dict(run.config),
        "steps": run.steps,
        "initial_loss": float(run.loss[0]),
        "final_loss": None if math.isinf(final) else final,
        "final_loss_window": window,
        "diverged": run.diverged,
        "diverged_step": run.diverged_step,
        "seconds": round(seconds, 3),
        "steps_per_second": round(run.steps / seconds, 2) if seconds > 0 else None,
    }
    if run.f_eval is not None:
        evaluated = np.flatnonzero(np.isfinite(run.f_eval).all(axis=(1, 2)))
        if evaluated.size:
            result["eval_step"] = int(evaluated[-1])
            result["eval_outputs_rms"] = float(np.sqrt(np.mean(run.f_eval[evaluated[-1]] ** 2)))
    return result


def run(args: argparse.Namespace) -> int:
    """Train, print the summary, optionally save the run."""
    if args.out:
        output_file(args.out, "--out")
    task = make_task(args, args.seed)
    record = None
    if args.record:
        record = Record(steps=tuple(args.record))
    start = time.perf_counter()
    result = train_finite(
        task,
        make_param(args),
        depth=args.depth,
        width=args.width,
        seed=args.seed,
        dtype=args.dtype,
        record=record,
        eval_every=max(1, args.steps // 20),
        progress=not (args.quiet or args.json),
        **network_options(args),
    )
    info = summary(result, time.perf_counter() - start)
    if args.out:
        result.save(args.out)
        info["out"] = args.out
    if args.json:
        print_json(info)
        return 0
    cfg = info["config"]
    print(
        f"{cfg['parametrization']} ({cfg['alpha']:g}, {cfg['gamma']:g}) {cfg['optimizer']} "
        f"eta={cfg['eta']:g} a={cfg['a']:g}  L={cfg['depth']} n={cfg['width']} "
        f"phi={cfg['phi']} {cfg['block']}-block x{cfg['block_depth']}"
        f"{' +LN' if cfg['pre_ln'] else ''}  task={cfg['task']} B={cfg['batch_size']}"
    )
    if info["diverged"]:
        print(f"DIVERGED at step {info['diverged_step']}")
    else:
        print(
            f"loss {info['initial_loss']:.4f} -> {info['final_loss']:.4f} "
            f"(mean of the last {info['final_loss_window']} steps)"
        )
    print(f"{info['steps']} steps in {info['seconds']:.2f} s ({info['steps_per_second']} steps/s)")
    if args.out:
        print(f"saved {args.out}")
    return 0
