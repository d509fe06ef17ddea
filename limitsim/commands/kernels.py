"""``limitsim kernels --phi relu --depth 64``: init kernels (route R1) of a few inputs."""

from __future__ import annotations

import argparse
import math

import numpy as np

from limitsim.commands._output import print_json
from limitsim.kernels.limit import depth_limit_kernels
from limitsim.kernels.recursion import init_kernels
from limitsim.parametrization import PRESETS, Parametrization


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``kernels`` subcommand."""
    parser = subparsers.add_parser(
        "kernels",
        help="kernels at initialization (finite depth and L -> inf)",
        description="Forward/backward kernels at init of two unit inputs with correlation rho0.",
    )
    parser.add_argument("--phi", default="relu", help="nonlinearity spec (default relu)")
    parser.add_argument("--depth", type=int, default=64, help="number of blocks L")
    parser.add_argument("--param", default="depth_mup", choices=sorted(PRESETS))
    parser.add_argument("--a", type=float, default=1.0, help="branch multiplier a")
    parser.add_argument("--rho0", type=float, default=0.5, help="input correlation")
    parser.add_argument("--block", default="post", choices=("post", "pre"))
    parser.add_argument("--block-depth", type=int, default=1, choices=(1, 2))
    parser.add_argument("--pre-ln", action="store_true", help="LayerNorm before each block")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print K^L, G^0 and, when α = 1/2, their depth limits."""
    if not -1.0 <= args.rho0 <= 1.0:
        raise ValueError(f"--rho0 must lie in [-1, 1], got {args.rho0}")
    X = np.array([[1.0, 0.0], [args.rho0, math.sqrt(1 - args.rho0**2)]])
    param = Parametrization.preset(args.param, a=args.a)
    variant = dict(block=args.block, block_depth=args.block_depth, pre_ln=args.pre_ln)
    K, G = init_kernels(X, args.phi, depth=args.depth, param=param, **variant)
    result = {
        "phi": args.phi,
        "depth": args.depth,
        "param": args.param,
        "K_L": K[-1].tolist(),
        "G_0": G[0].tolist(),
    }
    if param.alpha >= 0.5:
        limit = depth_limit_kernels(
            X, args.phi, a=args.a, lambdas=[0.0, 1.0], alpha=param.alpha, **variant
        )
        result |= {"K_limit": limit.K[1].tolist(), "G_limit": limit.G[0].tolist()}
    if args.json:
        print_json(result)
        return 0
    for key, value in result.items():
        print(f"{key:8s} {np.array2string(np.asarray(value), precision=6)}")
    return 0
