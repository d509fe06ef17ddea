"""Nonlinearities: closed forms = Hermite expansion = Monte Carlo; derivatives; errors."""

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from limitsim import nonlinearities, nonlinearity
from limitsim.gaussian import _moments as _kernels
from tests.helpers import ALL_ACTIVATIONS, ALL_BUILTINS

K3 = np.array([[1.0, 0.6, -0.3], [0.6, 1.3, 0.2], [-0.3, 0.2, 0.7]])


def monte_carlo_moments(phi, K, rng, n=400_000):
    """Sample means and standard errors of Σ_φ and V_φ′ (n i.i.d. coordinates)."""
    z = rng.multivariate_normal(np.zeros(len(K)), K, size=n)
    f, d = phi(z), phi.derivative(z)
    fc = f - f.mean(axis=0)
    prod = fc[:, :, None] * fc[:, None, :]
    dprod = d[:, :, None] * d[:, None, :]
    se = lambda p: p.std(axis=0) / math.sqrt(n)  # noqa: E731
    return prod.mean(axis=0), se(prod), dprod.mean(axis=0), se(dprod)


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_expectations_match_monte_carlo(name, rng):
    phi = nonlinearity(name)
    sigma_mc, sigma_se, v_mc, v_se = monte_carlo_moments(phi, K3, rng)
    # the centring of Σ costs O(1/n) bias, far below the standard error at this n
    assert np.all(np.abs(phi.sigma(K3) - sigma_mc) <= 5 * sigma_se + 1e-12)
    assert np.all(np.abs(phi.vprime(K3) - v_mc) <= 5 * v_se + 1e-12)


HOMOGENEOUS = ["linear", "relu", "abs", "leaky_relu:0.2", "homogeneous:0.5,-1.5"]


def _hermite_moments(phi, K, terms):
    nodes, weights, table = _kernels.hermite_rule(terms)
    P = K.shape[0]
    out = (np.empty(P), np.empty((P, P)), np.empty((P, P)))
    extra = (np.empty((2, P, terms)), np.empty((P, 2)))
    _kernels.gauss_moments_hermite(phi.phi, phi.dphi, K, nodes, weights, table, *out, *extra)
    return out


@pytest.mark.parametrize("name", HOMOGENEOUS)
def test_homogeneous_closed_form_matches_hermite_expansion(name):
    """Closed form vs the Hermite expansion; kinked φ converge algebraically (fitted slope)."""
    phi = nonlinearity(name)
    exact = phi.moments(K3)
    terms = np.array([16, 32, 64, 128])
    errors = []
    for n in terms:
        out = _hermite_moments(phi, K3, int(n))
        errors.append(max(np.abs(a - b).max() for a, b in zip(out, exact, strict=True)))
    errors = np.array(errors)
    if name == "linear":
        assert errors.max() < 1e-12
    else:
        slope = np.polyfit(np.log(terms), np.log(errors), 1)[0]
        assert slope < -0.4 and errors[-1] < 5e-3


def test_erf_closed_form_matches_hermite_expansion():
    phi = nonlinearity("erf")
    for a, b in zip(_hermite_moments(phi, K3, 128), phi.moments(K3), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-13)


@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_derivatives_match_finite_differences(name):
    phi = nonlinearity(name)
    x = np.linspace(-2.3, 2.1, 23)  # avoids the kink at 0
    h = 1e-6
    np.testing.assert_allclose(phi.derivative(x), (phi(x + h) - phi(x - h)) / (2 * h), atol=1e-6)
    if phi.d2phi is not None:
        fd = (phi.derivative(x + h) - phi.derivative(x - h)) / (2 * h)
        np.testing.assert_allclose(phi.second_derivative(x), fd, atol=1e-5)


def test_second_derivative_only_where_it_is_a_function():
    assert nonlinearity("relu").d2phi is None and nonlinearity("abs").d2phi is None
    assert nonlinearity("Abs(x)**1.5").d2phi is None
    for name in ("linear", "erf", "tanh", "gelu", "silu", "x*erf(x)"):
        assert nonlinearity(name).d2phi is not None
    with pytest.raises(ValueError, match="not a function"):
        nonlinearity("relu").second_derivative(1.0)


@pytest.mark.parametrize("name", ALL_BUILTINS)
def test_py_func_parity(name):
    phi = nonlinearity(name)
    for x in (-1.7, -0.2, 0.3, 2.5):
        assert phi.phi(x) == pytest.approx(phi.phi.py_func(x), abs=1e-15)
        assert phi.dphi(x) == pytest.approx(phi.dphi.py_func(x), abs=1e-15)


def test_kernel_py_func_parity():
    args = (np.empty(3), np.empty((3, 3)), np.empty((3, 3)))
    args_py = (np.empty(3), np.empty((3, 3)), np.empty((3, 3)))
    _kernels.gauss_moments_homogeneous(1.0, 0.0, K3, *args)
    _kernels.gauss_moments_homogeneous.py_func(1.0, 0.0, K3, *args_py)
    for a, b in zip(args, args_py, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14)


def test_thread_count_invariance():
    from limitsim._numba import get_num_threads, set_num_threads

    phi = nonlinearity("tanh")
    K = np.cov(np.random.default_rng(1).standard_normal((9, 20)))
    before = get_num_threads()
    try:
        set_num_threads(1)
        one = phi.moments(K)
        set_num_threads(max(before, 2))
        two = phi.moments(K)
    finally:
        set_num_threads(before)
    for a, b in zip(one, two, strict=True):
        assert np.array_equal(a, b)


@settings(deadline=None, max_examples=25)
@given(st.integers(1, 5), st.integers(0, 10_000), st.sampled_from(["relu", "abs", "tanh", "erf"]))
def test_kernels_are_symmetric_psd(p, seed, name):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((p, p + 1))
    K = A @ A.T
    phi = nonlinearity(name)
    for M in (phi.sigma(K), phi.vprime(K)):
        np.testing.assert_allclose(M, M.T)
        assert np.linalg.eigvalsh(M).min() > -1e-8


def test_rank_deficient_kernel_has_no_nan():
    K = np.ones((3, 3))  # three identical inputs
    for name in ("relu", "tanh", "erf"):
        _, second, vprime = nonlinearity(name).moments(K)
        assert np.all(np.isfinite(second)) and np.all(np.isfinite(vprime))
        np.testing.assert_allclose(second, second[0, 0], rtol=1e-9)


def test_special_cases_are_identities():
    """relu = homogeneous:1,0; linear's Σ is K itself; abs's V′ is (2/π) arcsin ρ."""
    np.testing.assert_allclose(
        nonlinearity("homogeneous:1,0").sigma(K3), nonlinearity("relu").sigma(K3)
    )
    np.testing.assert_allclose(nonlinearity("leaky_relu:1").sigma(K3), K3, atol=1e-14)
    rho = K3[0, 1] / math.sqrt(K3[0, 0] * K3[1, 1])
    assert nonlinearity("abs").vprime(K3)[0, 1] == pytest.approx(2 / math.pi * math.asin(rho))
    assert nonlinearity("relu").sigma(np.eye(1))[0, 0] == pytest.approx(0.5 - 1 / (2 * math.pi))
    assert nonlinearity("abs").sigma(np.eye(1))[0, 0] == pytest.approx(1 - 2 / math.pi)


def test_registry_and_errors():
    names = nonlinearities()
    for name in ALL_BUILTINS:
        assert name in names
    with pytest.raises(ValueError, match="relu"):  # the message lists valid names
        nonlinearity("rellu")
    with pytest.raises(ValueError, match="parsable"):
        nonlinearity("x**(")
    with pytest.raises(ValueError, match="single variable x"):
        nonlinearity("x*y")
    with pytest.raises(ValueError, match="leaky_relu"):
        nonlinearity("leaky_relu:abc")
    with pytest.raises(ValueError, match="the function 'besselj' is not allowed"):
        nonlinearity("besselj(0, x)")
    with pytest.raises(TypeError, match="phi must be"):
        nonlinearity(3)


def test_pickle_round_trip():
    phi = nonlinearity("x*erf(x)")
    clone = pickle.loads(pickle.dumps(phi))
    assert clone.name == phi.name and clone(np.array([1.5]))[0] == phi(np.array([1.5]))[0]


def test_float32_preserved():
    x = np.linspace(-1, 1, 5, dtype=np.float32)
    assert nonlinearity("tanh")(x).dtype == np.float32
