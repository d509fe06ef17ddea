"""Route R4: batched training of finite-width resnets under every parametrization."""

from __future__ import annotations

from limitsim.finite.train import BLOCKS, DTYPES, check_memory, train_finite, train_finite_batch

__all__ = ["BLOCKS", "DTYPES", "check_memory", "train_finite", "train_finite_batch"]
