"""Benchmarks are run with ``python -m pytest benchmarks --benchmark-only``."""
