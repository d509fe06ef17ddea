"""Route R1: kernels of the infinite-width network at initialization, finite L and L → ∞."""

from __future__ import annotations

from limitsim.kernels.limit import MAX_ODE_EVALUATIONS, DepthLimitKernels, depth_limit_kernels
from limitsim.kernels.recursion import BLOCKS, MAX_DEPTH, InitKernels, init_kernels, kernel_bytes

__all__ = [
    "BLOCKS",
    "MAX_DEPTH",
    "MAX_ODE_EVALUATIONS",
    "DepthLimitKernels",
    "InitKernels",
    "depth_limit_kernels",
    "init_kernels",
    "kernel_bytes",
]
