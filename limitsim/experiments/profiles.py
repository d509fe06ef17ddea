"""Sizes of every experiment per profile: ``tiny`` (tests), ``quick`` (2 cores), ``paper``."""

from __future__ import annotations

from typing import Any

__all__ = ["PROFILES", "sizes_for"]

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "phase_diagram": {"per_quarter": 2},
        "init_kernels": {"phis": ("relu", "abs"), "depths": (4, 8, 16), "rho0": 0.5},
    },
    "quick": {
        "phase_diagram": {"per_quarter": 40},
        "init_kernels": {
            "phis": ("relu", "abs", "tanh", "gelu", "linear"),
            "depths": (4, 8, 16, 32, 64, 128, 256),
            "rho0": 0.5,
        },
    },
    "paper": {
        "phase_diagram": {"per_quarter": 80},
        "init_kernels": {
            "phis": ("relu", "abs", "leaky_relu:0.2", "tanh", "erf", "gelu", "silu", "linear"),
            "depths": (4, 8, 16, 32, 64, 128, 256, 512, 1024),
            "rho0": 0.5,
        },
    },
}


def sizes_for(profile: str, experiment: str) -> dict[str, Any]:
    """The sizes of ``experiment`` in ``profile`` (ValueError naming the valid profiles)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {sorted(PROFILES)}")
    try:
        return PROFILES[profile][experiment]
    except KeyError:
        raise ValueError(f"profile {profile!r} has no sizes for {experiment!r}") from None
