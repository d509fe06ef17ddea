"""The fused SGD update of a hidden weight matrix, ``W ← W − c · zᵀ q``, as one BLAS call.

numpy has no GEMM that accumulates into its output, so the plain way costs a gradient buffer
(zeroed by BLAS, written, then read by the update) and a second pass over the weights.  Here
the update is one ``?gemm`` with ``β = 1`` (``C ← α A B + C``) straight into the weights, from
scipy's BLAS through its Cython API (:mod:`scipy.linalg.cython_blas`: a documented, stable
entry point) called with :mod:`ctypes`, which releases the GIL during the call (so
``train_finite_batch(threads=...)`` still runs its groups concurrently).  BLAS's threads are
those of scipy's library, limited with numpy's by ``train_finite_batch(blas_threads=...)``.

Numbers: entry ``(i, j)`` becomes ``w_ij + (−c) · Σ_b z_bi q_bj`` as BLAS computes it (a
length-B sum per entry, in the order of BLAS's kernel, which does not depend on its thread
count: ``tests/test_finite.py``); it differs from "gradient, then ``w −= c · g``" only by the
rounding of that last multiply-add.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import cython_blas

__all__ = ["gemm_update"]

_INT = ctypes.c_int
_PTR = ctypes.c_void_p


def _blas_function(name: str) -> Any:
    """The Fortran ``?gemm`` of scipy's BLAS as a ctypes function (GIL released during calls)."""
    capsule = cython_blas.__pyx_capi__[name]  # type: ignore[attr-defined]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    address = get_pointer(capsule, get_name(capsule))
    prototype = ctypes.CFUNCTYPE(None, *([_PTR] * 13))
    return prototype(address)


_GEMM = {
    np.dtype(np.float32): _blas_function("sgemm"),
    np.dtype(np.float64): _blas_function("dgemm"),
}
_SCALAR = {np.dtype(np.float32): ctypes.c_float, np.dtype(np.float64): ctypes.c_double}
_NO, _YES = ctypes.c_char(b"N"), ctypes.c_char(b"T")


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
    if z.shape[::2] != (K, a) or q.shape[::2] != (K, b) or z.shape[1] != q.shape[1]:
        raise ValueError(
            f"shapes must be (K, a, b), (K, R, a), (K, R, b), got {w.shape}, {z.shape}, {q.shape}"
        )
    for array in (w, z, q):
        if not array.flags.c_contiguous or array.dtype != w.dtype or w.dtype not in _GEMM:
            raise ValueError(
                "w, z and q must be C-contiguous float32 or float64 arrays of one dtype"
            )
    gemm, scalar = _GEMM[w.dtype], _SCALAR[w.dtype]
    one = scalar(1.0)
    dims = (_INT(b), _INT(a), _INT(z.shape[1]))  # column-major: wᵀ (b × a) ← α qᵀ z + wᵀ
    for k in range(K):
        alpha = scalar(-float(rate[k]))
        gemm(
            ctypes.byref(_NO),
            ctypes.byref(_YES),
            *(ctypes.byref(d) for d in dims),
            ctypes.byref(alpha),
            _PTR(q[k].ctypes.data),
            ctypes.byref(dims[0]),
            _PTR(z[k].ctypes.data),
            ctypes.byref(dims[1]),
            ctypes.byref(one),
            _PTR(w[k].ctypes.data),
            ctypes.byref(dims[0]),
        )
