"""Route R3: the Tensor-Program Monte Carlo simulator of the n = ∞ limit, and its L → ∞ limit."""

from __future__ import annotations

from limitsim.particles.depth import (
    E1Comparison,
    compare_def_e1,
    def_e1,
    depth_limit,
    extrapolate_first_order,
)
from limitsim.particles.simulate import MIN_PARTICLES_PER_HAT, memory_bytes, simulate_limit

__all__ = [
    "MIN_PARTICLES_PER_HAT",
    "E1Comparison",
    "compare_def_e1",
    "def_e1",
    "depth_limit",
    "extrapolate_first_order",
    "memory_bytes",
    "simulate_limit",
]
