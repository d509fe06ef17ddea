"""The fused SGD update of a hidden weight matrix, ``W ← W − c · zᵀ q``, as one BLAS call.

numpy has no GEMM that accumulates into its output, so the plain way costs a gradient buffer
(zeroed by BLAS, written, then read by the update) and a second pass over the weights.  Here
the update is one ``?gemm`` with ``β = 1`` (``C ← α A B + C``) straight into the weights,
called with :mod:`ctypes`, which releases the GIL during the call (so
``train_finite_batch(threads=...)`` still runs its groups concurrently).  The BLAS is numpy's
own where numpy bundles OpenBLAS (its wheels do), else scipy's through its Cython API
(:mod:`scipy.linalg.cython_blas`); ``train_finite_batch(blas_threads=...)`` limits both.

Numbers: entry ``(i, j)`` becomes ``w_ij + (−c) · Σ_b z_bi q_bj`` as BLAS computes it (a
length-B sum per entry, in the order of BLAS's kernel, which does not depend on its thread
count: ``tests/test_finite.py``); it can differ from "gradient, then ``w −= c · g``" by the
roundings of the update term (the kernel's final multiply-add), within the bound tested.
"""

from __future__ import annotations

import ctypes
import importlib
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

__all__ = ["gemm_update"]

_PTR = ctypes.c_void_p
_PROTOTYPE = ctypes.CFUNCTYPE(None, *([_PTR] * 13))  # Fortran ?gemm: every argument by address


def _numpy_gemm() -> dict[np.dtype[Any], Any] | None:
    """``?gemm`` of the OpenBLAS numpy's own products use, when numpy bundles one, else None.

    numpy's wheels link ``scipy-openblas64`` (64-bit integers, symbols ``scipy_?gemm_64_``);
    looking them up through numpy's extension module finds that very library.  Sharing it
    keeps one BLAS thread pool: the threads of a second library would spin between calls,
    competing with the first for the cores.
    """
    try:
        extension = importlib.import_module("numpy._core._multiarray_umath")
        library = ctypes.CDLL(extension.__file__)
        found = {kind: getattr(library, f"scipy_{kind}gemm_64_") for kind in "sd"}
    except (ImportError, OSError, AttributeError):
        return None
    return {
        np.dtype(np.float32): _PROTOTYPE(cast(int, ctypes.cast(found["s"], _PTR).value)),
        np.dtype(np.float64): _PROTOTYPE(cast(int, ctypes.cast(found["d"], _PTR).value)),
    }


def _scipy_gemm(name: str) -> Any:
    """``?gemm`` of scipy's BLAS through its Cython API capsule (32-bit integers)."""
    from scipy.linalg import cython_blas  # only when numpy's BLAS is not found: 0.1 s import

    capsule = cython_blas.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return _PROTOTYPE(get_pointer(capsule, get_name(capsule)))


_FOUND = _numpy_gemm()
_GEMM: dict[np.dtype[Any], Any] = _FOUND or {
    np.dtype(np.float32): _scipy_gemm("sgemm"),
    np.dtype(np.float64): _scipy_gemm("dgemm"),
}
_INT: type[ctypes.c_int64] | type[ctypes.c_int] = ctypes.c_int64 if _FOUND else ctypes.c_int
_SCALAR = {np.dtype(np.float32): ctypes.c_float, np.dtype(np.float64): ctypes.c_double}
_ONE = {dtype: ctypes.byref(scalar(1.0)) for dtype, scalar in _SCALAR.items()}
_NO, _YES = ctypes.byref(ctypes.c_char(b"N")), ctypes.byref(ctypes.c_char(b"T"))
_DIMS: dict[tuple[int, int, int], tuple[Any, Any, Any]] = {}


def _dims(b: int, a: int, rows: int) -> tuple[Any, Any, Any]:
    """``byref`` of the three GEMM sizes (cached: a call costs microseconds at small widths)."""
    key = (b, a, rows)
    if key not in _DIMS:
        _DIMS[key] = tuple(ctypes.byref(_INT(value)) for value in key)  # type: ignore[assignment]
    return _DIMS[key]


def gemm_update(
    w: NDArray[Any], z: NDArray[Any], q: NDArray[Any], rate: NDArray[np.float64]
) -> None:
    """``w[k] ← w[k] − rate[k] · z[k]ᵀ q[k]`` for every configuration k, in place.

    Parameters
    ----------
    w : ndarray, shape (K, a, b)
        Weights, C-contiguous, float32 or float64 (in/out).
    z : ndarray, shape (K, R, a)
        Layer inputs (rows are examples), C-contiguous, same dtype.
    q : ndarray, shape (K, R, b)
        Backpropagated signals, C-contiguous, same dtype.
    rate : ndarray, shape (K,)
        Step sizes (the batch-mean factor included), rounded to ``w.dtype``.
    """
    K, a, b = w.shape
    rows = z.shape[1]
    if z.shape != (K, rows, a) or q.shape != (K, rows, b):
        raise ValueError(
            f"shapes must be (K, a, b), (K, R, a), (K, R, b), got {w.shape}, {z.shape}, {q.shape}"
        )
    dtype = w.dtype
    if dtype not in _GEMM or z.dtype != dtype or q.dtype != dtype:
        raise ValueError("w, z and q must be float32 or float64 arrays of one dtype")
    if not (w.flags.c_contiguous and z.flags.c_contiguous and q.flags.c_contiguous):
        raise ValueError("w, z and q must be C-contiguous")
    gemm, scalar, one = _GEMM[dtype], _SCALAR[dtype], _ONE[dtype]
    # Column-major view of the C-ordered arrays: wᵀ (b × a, leading dimension b) ← α qᵀ z + wᵀ.
    ld_b, ld_a, depth = _dims(b, a, rows)
    w_at, z_at, q_at, item = w.ctypes.data, z.ctypes.data, q.ctypes.data, dtype.itemsize
    for k in range(K):
        alpha = ctypes.byref(scalar(-rate[k]))
        gemm(
            _NO,
            _YES,
            ld_b,
            ld_a,
            depth,
            alpha,
            q_at + k * rows * b * item,
            ld_b,
            z_at + k * rows * a * item,
            ld_a,
            one,
            w_at + k * a * b * item,
            ld_b,
        )
