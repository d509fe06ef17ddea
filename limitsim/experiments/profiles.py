"""Profiles: ``tiny`` (tests), ``quick`` (two CPU cores, minutes) and ``paper`` (a cluster).

Each experiment module owns its sizes in a ``SIZES`` mapping (profile → sizes), next to the
code that uses them; this module only looks them up.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["PROFILES", "sizes_for"]

PROFILES = ("tiny", "quick", "paper")


def sizes_for(profile: str, experiment: str) -> dict[str, Any]:
    """The sizes of ``experiment`` in ``profile`` (ValueError naming the valid values)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {list(PROFILES)}")
    from limitsim.experiments import EXPERIMENTS

    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; valid names: {list(EXPERIMENTS)}")
    module = importlib.import_module(f"limitsim.experiments.{experiment}")
    sizes: dict[str, Any] = module.SIZES[profile]
    return sizes
