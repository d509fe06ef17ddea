"""The ``limitsim`` command: one subcommand per module of :mod:`limitsim.commands`.

Each module in ``COMMANDS`` exposes ``register(subparsers)``, which adds its subparser and
sets ``func`` (called with the parsed arguments; returns the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["COMMANDS", "main"]

#: Modules of ``limitsim.commands``, in the order ``limitsim --help`` lists them.
COMMANDS = (
    "classify",
    "kernels",
    "train",
    "coordcheck",
    "simulate",
    "compare",
    "sweep",
    "figures",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (all subcommands)."""
    parser = argparse.ArgumentParser(
        prog="limitsim",
        description="Infinite-width-then-depth limits of deep residual networks (TP6).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"limitsim.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``limitsim`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"limitsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
