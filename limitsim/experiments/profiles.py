"""Sizes of every experiment per profile: ``tiny`` (tests), ``quick`` (2 cores), ``paper``."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["PROFILES", "sizes_for"]

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "phase_diagram": {"per_quarter": 2},
        "init_kernels": {"phis": ("relu", "abs"), "depths": (4, 8, 16), "rho0": 0.5},
        "transfer": {
            "optimizers": ("sgd",),
            "params": ("depth_mup", "standard"),
            "depths": (8, 16),
            "log2_etas": (-1.0, 0.0, 1.0),
            "seeds": 2,
            "width": 16,
            "phi": "relu",
            "steps": 4,
            "batch": 8,
            "task": "digits",
            "window": 2,
            "a": 1.0,
            "base_eta_sgd": 0.25,
            "base_eta_adam": 0.01,
        },
    },
    "quick": {
        "phase_diagram": {"per_quarter": 40},
        "init_kernels": {
            "phis": ("relu", "abs", "tanh", "gelu", "linear"),
            "depths": (4, 8, 16, 32, 64, 128, 256),
            "rho0": 0.5,
        },
        "transfer": {
            "optimizers": ("sgd",),
            "params": ("depth_mup", "block_only", "standard"),
            "depths": (8, 16, 32, 64, 128),
            "log2_etas": tuple(np.arange(-3.0, 1.01, 0.5)),
            "seeds": 2,
            "width": 64,
            "phi": "relu",
            "steps": 200,
            "batch": 32,
            "task": "digits",
            "window": 20,
            "a": 1.0,
            "base_eta_sgd": 0.25,
            "base_eta_adam": 0.01,
        },
    },
    "paper": {
        "phase_diagram": {"per_quarter": 80},
        "init_kernels": {
            "phis": ("relu", "abs", "leaky_relu:0.2", "tanh", "erf", "gelu", "silu", "linear"),
            "depths": (4, 8, 16, 32, 64, 128, 256, 512, 1024),
            "rho0": 0.5,
        },
        "transfer": {
            "optimizers": ("sgd", "adam"),
            "params": ("depth_mup", "block_only", "ode", "standard"),
            "depths": (8, 16, 32, 64, 128, 256, 512, 1024),
            "log2_etas": tuple(np.arange(-6.0, 4.01, 0.5)),
            "seeds": 5,
            "width": 256,
            "phi": "relu",
            "steps": 3000,
            "batch": 64,
            "task": "digits",
            "window": 200,
            "a": 1.0,
            "base_eta_sgd": 0.25,
            "base_eta_adam": 0.01,
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
