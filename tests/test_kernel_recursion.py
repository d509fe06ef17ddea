"""Route R1 in one compiled call: the same kernels as the layer-by-layer recursion.

The reference is the recursion of :mod:`limitsim.kernels.recursion` written layer by layer in Python
over :func:`limitsim.kernels.recursion.block_increment` (the path ``init_kernels`` took before the
compiled recursion, and still takes where quadrature is needed).  Both perform the same
floating-point operations in the same order and call the same moment kernels, so they agree
to rounding: we allow 1e-13 of each array's largest entry, 450 ulps, which covers a
different rounding of each operation (e.g. a fused multiply-add) accumulated over 64 layers
with O(1) growth per layer.  Independent references for the kernels themselves (closed forms,
the depth ODE, finite-width networks) are in ``tests/test_kernels.py``.
"""

import numpy as np
import pytest

from limitsim import Parametrization, init_kernels, nonlinearity
from limitsim._numba import get_num_threads, set_num_threads
from limitsim.kernels._compiled import run_recursion
from limitsim.kernels.recursion import block_increment

MUP = Parametrization.depth_mup(a=0.9)
RTOL = 1e-13
VARIANTS = {
    "post": dict(block="post", block_depth=1, pre_ln=False),
    "pre": dict(block="pre", block_depth=1, pre_ln=False),
    "depth2": dict(block="post", block_depth=2, pre_ln=False),
    "post_ln": dict(block="post", block_depth=1, pre_ln=True),
    "pre_ln": dict(block="pre", block_depth=1, pre_ln=True),
    "depth2_ln": dict(block="post", block_depth=2, pre_ln=True),
}
# closed forms (homogeneous family, erf) and the Hermite expansion (tanh, gelu, an expression)
PHIS = ["relu", "abs", "linear", "erf", "tanh", "gelu", "x*erf(x)"]


@pytest.fixture(scope="module")
def inputs():
    """Five inputs of squared norms 0.3..0.7 (in the Hermite range of every φ above at every
    depth of the tests), with a repeated and a zero input."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((5, 3))
    X *= np.sqrt(np.linspace(0.3, 0.7, 5) / (X * X).sum(axis=1))[:, None]
    X[3] = X[0]
    X[4] = 0.0
    return X


def layer_by_layer(X, phi, depth, param, *, block, block_depth, pre_ln):
    """K, G of ``init_kernels`` by the Python loop over :func:`block_increment`."""
    phi = nonlinearity(phi)
    c = param.branch_multiplier(depth) ** 2
    K = np.empty((depth + 1, len(X), len(X)))
    K[0] = X @ X.T
    factors = np.empty((depth, len(X), len(X)))
    G = np.empty_like(K)
    G[depth] = 1.0
    with np.errstate(over="ignore", invalid="ignore"):  # as in init_kernels
        for layer in range(1, depth + 1):
            forward, backward = block_increment(
                phi, K[layer - 1], block=block, block_depth=block_depth, pre_ln=pre_ln
            )
            K[layer] = K[layer - 1] + c * forward
            factors[layer - 1] = 1.0 + c * backward
        for layer in range(depth, 0, -1):
            G[layer - 1] = G[layer] * factors[layer - 1]
    return K, G


def assert_close(actual, expected):
    scale = np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale)


def compiled(X, phi, depth, param, **variant):
    """K, G filled by :func:`run_recursion` alone, the layer it returned and its finiteness
    flag."""
    P = len(X)
    K = np.empty((depth + 1, P, P))
    K[0] = X @ X.T
    factors = np.empty((depth, P, P))
    G = np.empty_like(K)
    G[depth] = 1.0
    c = param.branch_multiplier(depth) ** 2
    done, finite = run_recursion(nonlinearity(phi), K, factors, G, c, **variant)
    return K, G, done, finite


@pytest.mark.parametrize("variant", VARIANTS, ids=list(VARIANTS))
@pytest.mark.parametrize("phi", PHIS)
@pytest.mark.parametrize("depth", [1, 5, 64])
def test_compiled_recursion_matches_the_layer_by_layer_recursion(inputs, phi, variant, depth):
    K, G, done, finite = compiled(inputs, phi, depth, MUP, **VARIANTS[variant])
    assert done == depth + 1  # everything in compiled code: no quadrature at these variances
    assert finite
    K_ref, G_ref = layer_by_layer(inputs, phi, depth, MUP, **VARIANTS[variant])
    assert_close(K, K_ref)
    assert_close(G, G_ref)
    result = init_kernels(inputs, phi, depth=depth, param=MUP, **VARIANTS[variant])
    assert_close(result.K, K_ref)
    assert_close(result.G, G_ref)


@pytest.mark.parametrize("variant", ["post", "depth2"])
def test_layers_needing_quadrature_are_finished_layer_by_layer(variant):
    """tanh's Hermite expansion (128 terms) is resolved up to a variance of about 1.7: from
    unit variance, a² = 4 makes the variance cross it within the recursion, so the compiled
    call stops there and init_kernels finishes in Python (quadrature) with the same result.
    """
    X = np.array([[1.0, 0.0], [0.6, 0.8]])
    param = Parametrization.depth_mup(a=2.0)
    depth = 8
    K, _, done, _ = compiled(X, "tanh", depth, param, **VARIANTS[variant])
    assert 1 < done <= depth
    K_ref, G_ref = layer_by_layer(X, "tanh", depth, param, **VARIANTS[variant])
    assert_close(K[:done], K_ref[:done])
    assert K_ref[done - 1].diagonal().max() > 1.5  # where the expansion is not resolved
    result = init_kernels(X, "tanh", depth=depth, param=param, **VARIANTS[variant])
    assert_close(result.K, K_ref)
    assert_close(result.G, G_ref)


def test_results_do_not_depend_on_the_thread_count(inputs):
    threads = get_num_threads()
    try:
        set_num_threads(1)
        one = init_kernels(inputs, "relu", depth=32, param=MUP, block="post", pre_ln=True)
        set_num_threads(threads)
        many = init_kernels(inputs, "relu", depth=32, param=MUP, block="post", pre_ln=True)
    finally:
        set_num_threads(threads)
    np.testing.assert_array_equal(one.K, many.K)
    np.testing.assert_array_equal(one.G, many.G)


def test_overflow_gives_the_same_non_finite_entries():
    """φ = linear, α = 0: K^l = 2^l K^0 first overflows at l = 1024, and the backward
    pass through those layers is NaN for l < L; inf and NaN sit where the layer-by-layer
    recursion puts them."""
    param = Parametrization(alpha=0.0, gamma=0.0)
    variant = VARIANTS["post"]
    K, G, done, finite = compiled(np.eye(2), "linear", 1100, param, **variant)
    K_ref, G_ref = layer_by_layer(np.eye(2), "linear", 1100, param, **variant)
    assert done == 1101 and not finite
    assert not np.isfinite(K_ref[1024]).all() and np.isfinite(K_ref[1023]).all()
    assert np.isnan(G_ref[:1100]).all() and np.isfinite(G_ref[1100]).all()
    np.testing.assert_array_equal(K, K_ref)
    np.testing.assert_array_equal(G, G_ref)


def test_kernels_beyond_1e154_keep_growing_exactly():
    """φ = linear, α = 0, post block: K^l = 2^l K^0 and G^l = 2^(L − l) exactly, also where
    K_ii K_jj overflows (K beyond 2^512, once a silent plateau at 2^512)."""
    L = 1000
    X = np.array([[1.0, 0.0], [0.6, 0.8]])
    K, G = init_kernels(X, "linear", depth=L, param=Parametrization(alpha=0.0, gamma=0.0))
    growth = 2.0 ** np.arange(L + 1)
    np.testing.assert_allclose(K, growth[:, None, None] * (X @ X.T), rtol=1e-13)
    np.testing.assert_allclose(G, growth[::-1, None, None] * np.ones((2, 2)), rtol=1e-13)


def test_three_pass_homogeneous_moments_equal_the_closed_form_kernel(rng):
    """Bit for bit, at random kernels with a zero input, a repeated input (ρ = 1), an
    opposite input (ρ = −1) and a correlation within 1e-15 of 1 (snapped to 1)."""
    from limitsim.gaussian._moments import gauss_moments_homogeneous
    from limitsim.kernels._compiled import _homogeneous_moments

    X = rng.standard_normal((9, 4))
    X[1] = 0.0
    X[2] = 2.0 * X[0]
    X[3] = -X[0]
    X[4] = X[0] * (1 + 1e-16)
    K = np.ascontiguousarray(X @ X.T)
    for c_plus, c_minus in [(1.0, 0.0), (1.0, -1.0), (1.0, 1.0), (0.7, 0.2)]:
        expected = [np.empty(9), np.empty((9, 9)), np.empty((9, 9))]
        gauss_moments_homogeneous(c_plus, c_minus, K, *expected)
        # stage 1 of the staged layout: input S[1], outputs mean[1], S[2], vprime[1]
        S, mean, vprime = np.full((3, 9, 9), np.nan), np.empty((2, 9)), np.empty((2, 9, 9))
        S[1] = K
        _homogeneous_moments(c_plus, c_minus, S, 1, mean, vprime, np.empty(9), np.empty((5, 45)))
        for a, e in zip((mean[1], S[2], vprime[1]), expected, strict=True):
            np.testing.assert_array_equal(a, e)
        np.testing.assert_array_equal(S[1], K)  # the input is not overwritten


def test_non_finite_kernels_are_reported_by_init_kernels():
    """The compiled call's finiteness flag routes a non-finite result to init_kernels' check:
    K^l = 2^l (previous test) first overflows at l = 1024."""
    with pytest.raises(ValueError, match=r"K\^1024 is not finite \(phi='linear'\)"):
        init_kernels(np.eye(2), "linear", depth=1100, param=Parametrization(alpha=0.0, gamma=0.0))
