"""Fused elementwise kernels of the batched finite-width resnet (route R4).

Every array is C-contiguous with a leading configuration axis ``K``; activations have shape
``(K, R, n)`` (``R`` rows = examples of a batch, ``n`` = width) and per-configuration scalars
have shape ``(K,)``.  Matrix products are *not* here: they go through BLAS (``np.matmul`` in
:mod:`limitsim.finite._net`, and the SGD update of a hidden matrix in
:mod:`limitsim.finite._blas`).  Each kernel fuses what numpy would do in several passes, in one
loop over the rows.  Row sums are accumulated in float64 with four interleaved partial sums
(a fixed order, so results are reproducible, yet four times faster than one serial sum
without ``fastmath``); per-configuration scalars are cast to the array dtype so float32
loops stay in float32 and vectorise.

Conventions (``shared/style.md`` §4): inputs are arrays and scalars (a built-in nonlinearity
arrives as an integer code, any other as jitted scalar functions ``phi``, ``dphi``), outputs
go into caller-allocated arrays, every kernel returns None.  The kernels are serial (no
``prange``): the rows are independent, results cannot depend on a thread count, and the BLAS
calls between them hold the cores.
"""

from __future__ import annotations

import math

from limitsim._generated import activations as act
from limitsim._numba import SCALAR_FUNCTION, jit, types
from limitsim.gaussian._moments import dot1

#: Codes of the built-in nonlinearities for :func:`activation_forward` (no per-call dispatch).
BUILTIN_CODES = {"linear": 0, "relu": 1, "abs": 2, "erf": 3, "tanh": 4, "gelu": 5, "silu": 6}


@jit(inline="always")
def _row_sum(v):  # type: ignore[no-untyped-def]
    """Sum of a 1-d array in float64, four partial sums in a fixed order."""
    n = v.size
    n4 = n - n % 4
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    for i in range(0, n4, 4):
        s0 += v[i]
        s1 += v[i + 1]
        s2 += v[i + 2]
        s3 += v[i + 3]
    for i in range(n4, n):
        s0 += v[i]
    return (s0 + s1) + (s2 + s3)


@jit(inline="always")
def _map_pair(phi, dphi, g, u_out, dphi_out):  # type: ignore[no-untyped-def]
    """``u_out = φ(g)``, ``dphi_out = φ′(g)`` elementwise (arrays of shape (K, R, n))."""
    K, R, n = g.shape
    for k in range(K):
        for r in range(R):
            gr = g[k, r]
            ur = u_out[k, r]
            dr = dphi_out[k, r]
            for i in range(n):
                x = gr[i]
                ur[i] = phi(x)
                dr[i] = dphi(x)


@jit
def activation_forward(code, g, u_out, dphi_out):  # type: ignore[no-untyped-def]
    """``u_out = φ(g)`` and ``dphi_out = φ′(g)`` for a built-in φ (shapes (K, R, n)).

    Parameters
    ----------
    code : int
        ``BUILTIN_CODES[name]``.
    g : ndarray, shape (K, R, n)
        Pre-activations.
    u_out, dphi_out : ndarray, shape (K, R, n)
        Out: φ(g) and φ′(g).

    Notes
    -----
    jit-compiled; writes into ``u_out`` and ``dphi_out``.  Built-ins are selected by an
    integer outside the loops, so that each loop vectorises and a call costs no dispatcher
    typing (passing jitted functions as arguments costs ≈10 µs per call).
    """
    if code == 1:
        _map_pair(act.phi_relu, act.dphi_relu, g, u_out, dphi_out)
    elif code == 2:
        _map_pair(act.phi_abs, act.dphi_abs, g, u_out, dphi_out)
    elif code == 3:
        _map_pair(act.phi_erf, act.dphi_erf, g, u_out, dphi_out)
    elif code == 4:
        _map_pair(act.phi_tanh, act.dphi_tanh, g, u_out, dphi_out)
    elif code == 5:
        _map_pair(act.phi_gelu, act.dphi_gelu, g, u_out, dphi_out)
    elif code == 6:
        _map_pair(act.phi_silu, act.dphi_silu, g, u_out, dphi_out)
    else:
        _map_pair(act.phi_linear, act.dphi_linear, g, u_out, dphi_out)


_A32 = types.float32[:, :, :]
_A64 = types.float64[:, :, :]


@jit(
    signatures=[
        types.void(SCALAR_FUNCTION, SCALAR_FUNCTION, _A32, _A32, _A32),
        types.void(SCALAR_FUNCTION, SCALAR_FUNCTION, _A64, _A64, _A64),
    ]
)
def activation_forward_user(phi, dphi, g, u_out, dphi_out):  # type: ignore[no-untyped-def]
    """As :func:`activation_forward` for any jitted scalar ``phi``, ``dphi`` (float64 → float64).

    Compiled eagerly with first-class function arguments (see :func:`limitsim._numba.jit`): a
    dispatcher passed lazily would be typed by its identity, so every process and every user
    nonlinearity would add a new, never reusable entry to the cache index (and a stale index
    whose weak references are gone made numba fail on save).  float32 arrays are evaluated in
    float64 and stored back in float32.

    Notes
    -----
    jit-compiled; writes into ``u_out`` and ``dphi_out``.
    """
    _map_pair(phi, dphi, g, u_out, dphi_out)


@jit
def ms_residual(u, x, m, x_out):  # type: ignore[no-untyped-def]
    """Residual update of a post-nonlin block, ``x_out = x + m_k MS(u)`` with ``u = φ(h)``.

    Parameters
    ----------
    u : ndarray, shape (K, R, n)
        ``φ(h^l)`` (a separate array from ``x_out``: aliasing is correct but slow).
    x : ndarray, shape (K, R, n)
        Residual stream ``x^{l-1}``.
    m : ndarray, shape (K,)
        Branch multipliers ``a (L/L0)^-α`` (Tensor Programs VI, Sec. 6.3).
    x_out : ndarray, shape (K, R, n)
        Out: ``x^l``.  ``MS(v) = v - mean(v)`` is the mean over the width.

    Notes
    -----
    jit-compiled; writes into ``x_out``.
    """
    K, R, n = u.shape
    cast = x_out.dtype.type
    for k in range(K):
        mk = cast(m[k])
        for r in range(R):
            ur = u[k, r]
            xr = x[k, r]
            out = x_out[k, r]
            mean = cast(_row_sum(ur) / n)
            for i in range(n):
                out[i] = xr[i] + mk * (ur[i] - mean)


@jit
def residual_add(x, h, m, x_out):  # type: ignore[no-untyped-def]
    """Residual update of a pre-nonlin block, ``x_out = x + m_k h`` (shapes (K, R, n)).

    Notes
    -----
    jit-compiled; writes into ``x_out``.
    """
    K, R, n = x.shape
    cast = x_out.dtype.type
    for k in range(K):
        mk = cast(m[k])
        for r in range(R):
            xr = x[k, r]
            hr = h[k, r]
            out = x_out[k, r]
            for i in range(n):
                out[i] = xr[i] + mk * hr[i]


@jit
def post_block_backward(dx, dphi, m, q_out):  # type: ignore[no-untyped-def]
    """Backward of a post-nonlin block: ``q = m_k φ′(h) ⊙ MS(δx̃^l)``.

    Parameters
    ----------
    dx : ndarray, shape (K, R, n)
        ``δx̃^l`` (the gradient at ``x^l`` times n).
    dphi : ndarray, shape (K, R, n)
        ``φ′(h^l)``.
    m : ndarray, shape (K,)
        Branch multipliers.
    q_out : ndarray, shape (K, R, n)
        Out: ``m_k δh̃^l`` with ``δh̃^l = φ′(h^l) ⊙ MS(δx̃^l)`` (``theory/algorithms.md`` §1).

    Notes
    -----
    jit-compiled; writes into ``q_out``.
    """
    K, R, n = dx.shape
    cast = q_out.dtype.type
    for k in range(K):
        mk = cast(m[k])
        for r in range(R):
            dr = dx[k, r]
            pr = dphi[k, r]
            out = q_out[k, r]
            mean = cast(_row_sum(dr) / n)
            for i in range(n):
                out[i] = mk * pr[i] * (dr[i] - mean)


@jit
def layer_norm_forward(x, z_out, rms_out):  # type: ignore[no-untyped-def]
    """LayerNorm without affine parameters: ``z = (x − mean x) / RMS(x − mean x)``.

    Parameters
    ----------
    x : ndarray, shape (K, R, n)
    z_out : ndarray, shape (K, R, n)
        Out: normalised rows (mean 0, mean square 1 over the width).
    rms_out : ndarray, shape (K, R)
        Out: ``RMS(x − mean x)`` of each row (no ε: a constant row gives inf/NaN, which the
        trainer reports as divergence).

    Notes
    -----
    jit-compiled; writes into ``z_out`` and ``rms_out``.  The variance is computed as
    ``mean(x²) − mean(x)²`` in float64.
    """
    K, R, n = x.shape
    cast = z_out.dtype.type
    for k in range(K):
        for r in range(R):
            xr = x[k, r]
            out = z_out[k, r]
            mean = _row_sum(xr) / n
            variance = max(dot1(xr, xr) / n - mean * mean, 0.0)
            rms = math.sqrt(variance)
            rms_out[k, r] = rms
            shift = cast(mean)
            inv = cast(1.0 / rms)
            for i in range(n):
                out[i] = (xr[i] - shift) * inv


@jit
def layer_norm_backward(dz, z, rms, dx):  # type: ignore[no-untyped-def]
    """Accumulate the LayerNorm backward pass: ``dx += (dz − mean dz − z mean(dz z)) / rms``.

    Parameters
    ----------
    dz : ndarray, shape (K, R, n)
        Gradient at the normalised rows ``z``.
    z : ndarray, shape (K, R, n)
        Normalised rows from :func:`layer_norm_forward`.
    rms : ndarray, shape (K, R)
        Their RMS before normalisation.
    dx : ndarray, shape (K, R, n)
        In/out: the gradient at the LayerNorm input, incremented in place.

    Notes
    -----
    jit-compiled; writes into ``dx``.
    """
    K, R, n = dz.shape
    cast = dx.dtype.type
    for k in range(K):
        for r in range(R):
            gr = dz[k, r]
            zr = z[k, r]
            out = dx[k, r]
            mean = cast(_row_sum(gr) / n)
            proj = cast(dot1(gr, zr) / n)
            inv = cast(1.0 / rms[k, r])
            for i in range(n):
                out[i] += (gr[i] - mean - zr[i] * proj) * inv


@jit
def sgd_step(w, grad, rate):  # type: ignore[no-untyped-def]
    """``w[k] -= rate[k] * grad[k]`` for stacks of matrices, shapes (K, a, b) and (K,).

    Notes
    -----
    jit-compiled; writes into ``w``.
    """
    cast = w.dtype.type
    for k in range(w.shape[0]):
        wk = w[k].reshape(-1)
        gk = grad[k].reshape(-1)
        c = cast(rate[k])
        for i in range(wk.size):
            wk[i] -= c * gk[i]


@jit
def adam_step(w, grad, m1, m2, scale, rate, beta1, beta2, eps, t):  # type: ignore[no-untyped-def]
    """One Adam step on stacks of matrices, ε inside the square root (Def. 6.1).

    With ``g = scale_k · grad`` (the rescaled, Θ(1) gradient): ``m1 ← β1 m1 + (1 − β1) g``,
    ``m2 ← β2 m2 + (1 − β2) g²``, and ``w ← w − rate_k · m̂ / sqrt(v̂ + ε)`` with the bias
    corrections ``m̂ = m1 / (1 − β1^(t+1))``, ``v̂ = m2 / (1 − β2^(t+1))``.

    Parameters
    ----------
    w, grad, m1, m2 : ndarray, shape (K, a, b)
        Weights (in/out), true gradients, first and second moments (in/out).
    scale, rate, beta1, beta2, eps : ndarray, shape (K,)
        Gradient scale ``n (L/L0)^α``, learning rate ``η n^-1 (L/L0)^-γ`` and Adam's constants.
    t : int
        Step index (0 for the first update).

    Notes
    -----
    jit-compiled; writes into ``w``, ``m1`` and ``m2``.  A zero denominator (ε = 0 and no
    gradient so far) gives no step.
    """
    cast = w.dtype.type
    zero = cast(0.0)
    for k in range(w.shape[0]):
        wk = w[k].reshape(-1)
        gk = grad[k].reshape(-1)
        ak = m1[k].reshape(-1)
        vk = m2[k].reshape(-1)
        b1 = cast(beta1[k])
        b2 = cast(beta2[k])
        s = cast(scale[k])
        c1 = cast(1.0 / (1.0 - beta1[k] ** (t + 1)))
        c2 = cast(1.0 / (1.0 - beta2[k] ** (t + 1)))
        lr = cast(rate[k])
        e = cast(eps[k])
        one = cast(1.0)
        for i in range(wk.size):
            g = s * gk[i]
            a = b1 * ak[i] + (one - b1) * g
            v = b2 * vk[i] + (one - b2) * g * g
            ak[i] = a
            vk[i] = v
            denominator = math.sqrt(v * c2 + e)
            if denominator > zero:
                wk[i] -= lr * (a * c1) / denominator
