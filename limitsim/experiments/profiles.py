"""Profiles ``tiny`` (tests), ``quick`` (two CPU cores, minutes), ``standard`` (a workstation,
under an hour on two cores) and ``paper`` (a cluster).

Each experiment module owns its sizes next to the code that uses them: a frozen ``Sizes``
dataclass (a subclass of :class:`ExperimentSizes`) and four instances derived from one
another, ``QUICK = replace(TINY, ...)``, ``STANDARD = replace(QUICK, ...)`` and
``PAPER = replace(QUICK, ...)``, collected in the
module's ``SIZES`` mapping.  This module only defines the base class and looks them up.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

__all__ = ["PROFILES", "ExperimentSizes", "log2_grid", "sizes_for"]

PROFILES = ("tiny", "quick", "standard", "paper")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExperimentSizes(Mapping[str, Any]):
    """Base of every experiment's sizes: frozen fields, read like a mapping.

    ``sizes["depths"]`` and ``sizes.depths`` are the same value; reading by key lets a grid
    take its fixed parameters from the sizes (``{k: sizes[k] for k in FIXED}``), and
    ``{**sizes, "seeds": 1}`` gives a plain dict with one size changed.
    """

    def __post_init__(self) -> None:
        seeds = getattr(self, "seeds", None)
        if seeds is not None and (not isinstance(seeds, int) or seeds < 1):
            raise ValueError(f"seeds must be a positive integer, got {seeds!r}")

    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def _names(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self))


def log2_grid(low: float, high: float, step: float = 0.5) -> tuple[float, ...]:
    """The grid low, low + step, …, high (inclusive), rounded to 6 decimals."""
    count = round((high - low) / step) + 1
    return tuple(float(v) for v in np.round(low + step * np.arange(count), 6))


def sizes_for(profile: str, experiment: str) -> ExperimentSizes:
    """The sizes of ``experiment`` in ``profile`` (ValueError naming the valid values)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {list(PROFILES)}")
    from limitsim.experiments import EXPERIMENTS

    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; valid names: {list(EXPERIMENTS)}")
    module = importlib.import_module(f"limitsim.experiments.{experiment}")
    sizes: ExperimentSizes = module.SIZES[profile]
    return sizes
