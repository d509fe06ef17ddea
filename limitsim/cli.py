"""The ``limitsim`` command: one subcommand per module of :mod:`limitsim.commands`.

Each module in ``COMMANDS`` exposes ``register(subparsers)``, which adds its subparser and
sets ``func`` (called with the parsed arguments; returns the exit code).

Errors are one line on stderr, ``limitsim CMD: error: MESSAGE``, never a traceback: bad input
(ValueError, TypeError, a missing file), and what the environment refuses (any other
OSError, e.g. an unreachable scheduler or a full disk, and MemoryError) exit with code 2;
Experiments whose sweep points raised (``limitsim figures``, after writing the report of the
others) exit with code 1; Ctrl-C exits with 130.  Any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from limitsim.sweeps._errors import ExperimentsFailed

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
    except KeyboardInterrupt:
        print(f"limitsim {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed early (`limitsim ... | head`): nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except MemoryError as exc:
        print(f"limitsim {args.command}: error: out of memory ({exc})", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as exc:
        print(f"limitsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ExperimentsFailed as exc:
        print(f"limitsim {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
