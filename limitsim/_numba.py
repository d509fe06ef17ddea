"""The single numba policy point: every jitted function in limitsim goes through :func:`jit`.

Policy (``shared/style.md`` §4): ``cache=True`` (compiled code is reused across processes),
``error_model="numpy"`` (division by zero gives inf/NaN like numpy, no exception), and no
``fastmath`` (NaN/inf semantics and bit-reproducibility over a few percent of speed).
``parallel=True`` is for top-level kernels whose ``prange`` loop runs over independent
items; their results must not depend on the thread count (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba as nb

__all__ = ["jit", "prange", "set_num_threads", "get_num_threads"]

F = TypeVar("F", bound=Callable[..., Any])

prange = nb.prange
set_num_threads = nb.set_num_threads
get_num_threads = nb.get_num_threads


def jit(fn: F | None = None, *, parallel: bool = False, inline: str = "never") -> Any:
    """``numba.njit`` with the project policy: cache, numpy error model, no fastmath.

    Use as ``@jit`` or ``@jit(parallel=True)``.
    """
    deco = nb.njit(cache=True, error_model="numpy", parallel=parallel, inline=inline)
    return deco if fn is None else deco(fn)
