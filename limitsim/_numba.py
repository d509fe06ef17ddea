"""The single numba policy point: every jitted function in limitsim goes through :func:`jit`.

Policy (``shared/style.md`` §4): ``cache=True`` (compiled code is reused across processes),
``error_model="numpy"`` (division by zero gives inf/NaN like numpy, no exception), ``nogil``
(kernels run concurrently on Python threads, e.g. ``train_finite_batch(threads=...)``), and
no ``fastmath`` (NaN/inf semantics and bit-reproducibility over a few percent of speed).
``parallel=True`` is for top-level kernels whose ``prange`` loop runs over independent
items; their results must not depend on the thread count (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, overload

import numba as nb

__all__ = [
    "SCALAR_FUNCTION",
    "get_num_threads",
    "jit",
    "prange",
    "set_num_threads",
    "types",
]

prange = nb.prange
types = nb.types
set_num_threads = nb.set_num_threads
get_num_threads = nb.get_num_threads


@overload
def jit(
    fn: Callable[..., Any],
    *,
    parallel: bool = False,
    inline: Literal["never", "always"] = "never",
    signatures: list[Any] | None = None,
) -> Any: ...


@overload
def jit(
    fn: None = None,
    *,
    parallel: bool = False,
    inline: Literal["never", "always"] = "never",
    signatures: list[Any] | None = None,
) -> Callable[[Callable[..., Any]], Any]: ...


def jit(
    fn: Callable[..., Any] | None = None,
    *,
    parallel: bool = False,
    inline: Literal["never", "always"] = "never",
    signatures: list[Any] | None = None,
) -> Any:
    """``numba.njit`` with the project policy: cache, numpy error model, nogil, no fastmath.

    Use as ``@jit`` or ``@jit(parallel=True)``.  Kernels that take a nonlinearity as an
    argument are compiled eagerly for ``signatures`` built with :data:`SCALAR_FUNCTION`:
    a dispatcher passed lazily is typed by its identity, which differs between processes, so
    its compiled kernel would never be found in the cache again, and every process would
    recompile it (the cost: ``benchmarks/README.md``).
    """
    deco: Any = nb.njit(
        signatures,
        cache=True,
        error_model="numpy",
        nogil=True,
        parallel=parallel,
        inline=inline,
    )
    return deco if fn is None else deco(fn)


#: First-class type of a jitted scalar function float64 -> float64 (a nonlinearity φ, φ′).
SCALAR_FUNCTION = nb.types.FunctionType(nb.types.float64(nb.types.float64))
