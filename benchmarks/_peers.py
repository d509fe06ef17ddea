"""Peer libraries' versions of limitsim's workloads (optional: imported only where installed).

Importing this module imports neither limitsim nor a peer; each function imports its peer and
raises ImportError where it is not installed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np


def neural_tangents_kernel_fn(
    X: np.ndarray, depth: int, branch_multiplier: float, *, serial: bool = False
) -> Callable[[], Any]:
    """neural-tangents' jitted NNGP and NTK of the pre-block relu resnet, as a call.

    A readin ``Dense`` with ``W_std = √d`` (its kernel is X Xᵀ), then L blocks
    ``x + m W relu(x)`` with ``m = branch_multiplier``: ``stax.repeat(block, L)`` (a
    ``lax.scan``), or ``stax.serial`` of the L blocks with ``serial``.  The call returns
    ``kernel_fn(X, None, get=("nngp", "ntk"))`` (jax's default float32), blocking until ready.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import jax
        from neural_tangents import stax

        branch = stax.serial(stax.Relu(), stax.Dense(1, W_std=branch_multiplier, b_std=None))
        block = stax.serial(stax.FanOut(2), stax.parallel(stax.Identity(), branch), stax.FanInSum())
        readin = stax.Dense(1, W_std=math.sqrt(X.shape[1]), b_std=None)
        blocks = [block] * depth if serial else [stax.repeat(block, depth)]
        kernel_fn = jax.jit(stax.serial(readin, *blocks)[2], static_argnames="get")

    def run() -> Any:
        return jax.block_until_ready(kernel_fn(X, None, get=("nngp", "ntk")))

    return run
