"""Nonlinearities φ: the registry, the expression grammar and the admissibility checks."""

from __future__ import annotations

from limitsim.nonlinearities.registry import BUILTINS, Nonlinearity, nonlinearities, nonlinearity

__all__ = ["BUILTINS", "Nonlinearity", "nonlinearities", "nonlinearity"]
