"""This machine's bounds, measured in the benchmark's own process: GEMM rate, memory bandwidth.

Each benchmark divides the bound of its work (flops at :func:`gemm_rate`, or bytes at
:func:`bandwidth`, whichever takes longer) by its measured time to give the fraction of
the machine it reaches (issue 14, item 3).  Both are measured once per process and
thread count, hot, best of 5.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

_MEASURED: dict[tuple[str, int], float] = {}


def best(fn: Callable[[], Any], rounds: int = 3) -> float:
    """Fastest of ``rounds`` calls of ``fn``, in seconds."""
    fastest = np.inf
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        fastest = min(fastest, time.perf_counter() - start)
    return float(fastest)


def gemm_rate(threads: int) -> float:
    """Float32 GEMM rate (flop/s) on ``threads`` BLAS threads: square 1024 products."""
    if ("gemm", threads) not in _MEASURED:
        a = np.random.default_rng(2).standard_normal((1024, 1024)).astype(np.float32)
        out = np.empty_like(a)
        with threadpool_limits(threads, user_api="blas"):
            np.matmul(a, a, out=out)
            seconds = best(lambda: [np.matmul(a, a, out=out) for _ in range(4)], rounds=5)
        _MEASURED["gemm", threads] = 4 * 2.0 * 1024**3 / seconds
    return _MEASURED["gemm", threads]


def bandwidth(threads: int) -> float:
    """Memory bandwidth (bytes read + written per second): copies of 256 MB on ``threads``."""
    if ("memory", threads) not in _MEASURED:
        src = np.ones(2**26, np.float32)
        dst = np.zeros_like(src)
        parts = np.array_split(np.arange(src.size), threads)
        spans = [(int(p[0]), int(p[-1]) + 1) for p in parts]
        with ThreadPoolExecutor(threads) as pool:

            def copy() -> None:
                list(pool.map(lambda ab: np.copyto(dst[ab[0] : ab[1]], src[ab[0] : ab[1]]), spans))

            copy()
            seconds = best(copy, rounds=5)
        _MEASURED["memory", threads] = 2.0 * src.nbytes / seconds
    return _MEASURED["memory", threads]
