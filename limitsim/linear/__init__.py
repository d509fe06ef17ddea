"""Route R2: the exact n = ∞ training dynamics of linear resnets, and its L → ∞ limit."""

from __future__ import annotations

from limitsim.linear.depth import extrapolate_polynomial, linear_depth_limit
from limitsim.linear.limit import linear_limit

__all__ = ["extrapolate_polynomial", "linear_depth_limit", "linear_limit"]
