"""``limitsim classify --alpha A --gamma G``: the phase-diagram region of (α, γ)."""

from __future__ import annotations

import argparse
import dataclasses

from limitsim.classification import classify
from limitsim.commands._output import print_json


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``classify`` subcommand."""
    parser = subparsers.add_parser(
        "classify",
        help="classify a depthwise parametrization (Claims 7.1-7.6)",
        description="Classify the depthwise parametrization (alpha, gamma).",
    )
    parser.add_argument("--alpha", type=float, required=True, help="branch exponent alpha")
    parser.add_argument("--gamma", type=float, required=True, help="update-size exponent gamma")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the classification."""
    result = classify(args.alpha, args.gamma)
    if args.json:
        print_json(dataclasses.asdict(result) | {"region": result.region})
        return 0
    print(result)
    for field in dataclasses.fields(result)[2:]:
        print(f"  {field.name:24s} {getattr(result, field.name)}")
    return 0
