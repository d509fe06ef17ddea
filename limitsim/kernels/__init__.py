"""Route R1: kernels of the infinite-width network at initialization, finite L and L → ∞."""

from __future__ import annotations

from limitsim.kernels.recursion import *  # noqa: F403  (the names of recursion.__all__)
from limitsim.kernels.recursion import __all__ as __all__
