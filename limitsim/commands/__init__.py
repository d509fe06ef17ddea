"""Subcommands of the ``limitsim`` CLI (see :mod:`limitsim.cli`)."""
