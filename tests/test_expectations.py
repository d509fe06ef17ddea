"""Gaussian expectations without a closed form: 30-digit references at variances 1 to 1000."""

import json
import math

import mpmath
import numba
import numpy as np
import pytest
import sympy as sp

from limitsim import Parametrization, init_kernels, nonlinearity
from limitsim.gaussian import _gauss_kronrod, _quadrature
from limitsim.gaussian import _moments as _kernels
from limitsim.gaussian._expectations import MAX_HERMITE_TERMS, QUAD_TOL, RTOL, TAIL_TOL, kink_points
from limitsim.nonlinearities.registry import Nonlinearity
from tests import gaussian_reference

REFERENCE = json.loads(gaussian_reference.PATH.read_text())


def _covariance(v_i, v_j, rho):
    c = rho * math.sqrt(v_i * v_j)
    return np.array([[v_i, c], [c, v_j]])


def _relative(a, b, scale):
    return abs(a - b) / scale


@pytest.mark.parametrize(
    "record",
    REFERENCE,
    ids=[f"{r['phi']}-{r['v_i']}-{r['v_j']}-{r['rho']}" for r in REFERENCE],
)
def test_matches_30_digit_reference(record):
    """second_moment, sigma and vprime (and the diagonal, the means) within RTOL."""
    ref = {k: float(v) for k, v in record.items() if k not in ("phi", "check")}
    assert record["check"] < gaussian_reference.CHECK  # its own accuracy, far below RTOL
    phi = nonlinearity(record["phi"])
    K = _covariance(record["v_i"], record["v_j"], record["rho"])
    mean, second, vprime = phi.moments(K)
    m2 = math.sqrt(ref["second_ii"] * ref["second_jj"])
    v2 = math.sqrt(ref["vprime_ii"] * ref["vprime_jj"])
    assert _relative(second[0, 1], ref["second"], m2) <= RTOL
    assert _relative(vprime[0, 1], ref["vprime"], v2) <= RTOL
    for k, d in ((0, "i"), (1, "j")):
        assert _relative(second[k, k], ref[f"second_{d}{d}"], ref[f"second_{d}{d}"]) <= RTOL
        assert _relative(vprime[k, k], ref[f"vprime_{d}{d}"], ref[f"vprime_{d}{d}"]) <= RTOL
        assert _relative(mean[k], ref[f"mean_{d}"], math.sqrt(ref[f"second_{d}{d}"])) <= RTOL
    var_i = ref["second_ii"] - ref["mean_i"] ** 2
    var_j = ref["second_jj"] - ref["mean_j"] ** 2
    cov = ref["second"] - ref["mean_i"] * ref["mean_j"]
    sigma = phi.sigma(K)
    assert _relative(sigma[0, 1], cov, math.sqrt(var_i * var_j)) <= RTOL
    assert _relative(sigma[0, 0], var_i, var_i) <= RTOL


def test_reference_covers_the_required_grid():
    cases = {(r["phi"], r["v_i"], r["rho"]) for r in REFERENCE if r["v_i"] == r["v_j"]}
    for name in ("tanh", "gelu", "silu", "x*erf(x)"):
        for v in (1, 10, 100, 1000):
            for rho in (0, 0.5, 0.99, -0.7, 1 - 1e-6, -1):
                assert (name, v, rho) in cases


@pytest.mark.parametrize("variance", [0.5, 7.0])
def test_one_variable_moments_match_mpmath_quad(variance):
    """A live 30-digit check (mpmath's own tanh-sinh rule) of E φ, E φ², E φ′² for gelu."""
    gelu, dgelu = gaussian_reference.PHIS["gelu"]

    def expect(f):
        s = mpmath.sqrt(variance)
        return mpmath.quad(
            lambda g: f(s * g) * mpmath.exp(-g * g / 2) / mpmath.sqrt(2 * mpmath.pi),
            [-mpmath.inf, -1 / s, 0, 1 / s, mpmath.inf],
        )

    with mpmath.workdps(30):
        exact = [expect(gelu), expect(lambda x: gelu(x) ** 2), expect(lambda x: dgelu(x) ** 2)]
    mean, second, vprime = nonlinearity("gelu").moments(np.array([[variance]]))
    scale = math.sqrt(float(exact[1]))
    assert abs(mean[0] - float(exact[0])) <= RTOL * scale
    assert abs(second[0, 0] - float(exact[1])) <= RTOL * float(exact[1])
    assert abs(vprime[0, 0] - float(exact[2])) <= RTOL * float(exact[2])


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, v_i, v_j, rho", [("gelu", 1000, 1000, 0.99), ("silu", 10, 1000, 0.9)]
)
def test_reference_file_is_reproducible(name, v_i, v_j, rho):
    """Recompute two stored references (about a minute each) with the committed script."""
    stored = next(
        r for r in REFERENCE if (r["phi"], r["v_i"], r["v_j"], r["rho"]) == (name, v_i, v_j, rho)
    )
    fresh = gaussian_reference.case(name, v_i, v_j, rho, 24)
    for key in ("second", "vprime", "second_ii", "vprime_jj"):
        assert float(fresh[key]) == pytest.approx(float(stored[key]), rel=1e-15)


# ----------------------------------------------------------------- kinked user φ
KINKED = [("Abs(x)", "abs"), ("Max(x, 0)", "relu"), ("Max(x, 0.2*x)", "leaky_relu:0.2")]


def _scaled_errors(a, b, M):
    """|a − b| relative to √(M_ii M_jj)."""
    d = np.sqrt(np.abs(np.diag(M)))
    return np.abs(a - b) / np.outer(d, d)


@pytest.mark.parametrize("expression, builtin", KINKED)
@pytest.mark.parametrize("variance", [1.0, 10.0, 100.0, 1000.0])
def test_kinked_expressions_match_closed_forms(expression, builtin, variance):
    rhos = np.array([0.0, 0.5, 0.99, -0.7, 1 - 1e-9, -1.0])
    # inputs on a circle at the given angles to the first one: all correlations at once
    angles = np.arccos(rhos)
    X = math.sqrt(variance) * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    K = X @ X.T
    user, exact = nonlinearity(expression), nonlinearity(builtin)
    assert user.homogeneous is None and exact.homogeneous is not None
    (m_u, s_u, v_u), (m_e, s_e, v_e) = user.moments(K), exact.moments(K)
    assert _scaled_errors(s_u, s_e, s_e).max() <= RTOL
    assert _scaled_errors(v_u, v_e, v_e).max() <= RTOL
    assert np.all(np.abs(m_u - m_e) <= RTOL * np.sqrt(np.diag(s_e)))
    sigma_u, sigma_e = user.sigma(K), exact.sigma(K)
    assert _scaled_errors(sigma_u, sigma_e, sigma_e).max() <= RTOL


@pytest.mark.parametrize("expression, builtin", KINKED[:2])
def test_kinked_kernels_at_depth_match_closed_forms(expression, builtin):
    """The issue's measurement: K at depth 8 (was 1.9e-3 and 4.8e-4 apart)."""
    X = np.random.default_rng(3).standard_normal((4, 5))
    param = Parametrization.depth_mup()
    user = init_kernels(X, expression, depth=8, param=param)
    exact = init_kernels(X, builtin, depth=8, param=param)
    for a, b in ((user.K, exact.K), (user.G, exact.G)):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=0)


@pytest.mark.parametrize(
    "text, points",
    [
        ("Abs(x)", (0.0,)),
        ("Max(x, 0)", (0.0,)),
        ("x*erf(x)", ()),
        ("tanh(x)", ()),
        ("Abs(x**2 - 2)", (-math.sqrt(2), math.sqrt(2))),
        ("Min(x, 1) + Max(x, -1)", (-1.0, 1.0)),
        ("Piecewise((2*x, x > 0.3), (x, True))", (0.3,)),
        ("Heaviside(x - 1)*x", (1.0,)),
        ("sign(x)*x**2", (0.0,)),
        ("Abs(sin(x))", ()),  # not a polynomial argument: left to the adaptive rule
    ],
)
def test_kink_points(text, points):
    x = sp.Symbol("x", real=True)
    expr = sp.parse_expr(text, local_dict={"x": x})
    assert kink_points(expr) == pytest.approx(points)


def test_kink_away_from_zero_is_integrated_accurately():
    """Max(x, 1) = 1 + relu(x − 1): E over N(0, v) against relu's shifted closed form."""
    user = nonlinearity("Max(x, 1)")
    assert user.kinks == (1.0,)
    for variance in (0.3, 30.0):
        s = math.sqrt(variance)
        a = 1 / s  # E relu(z − 1) = s φ(a) − (1)(1 − Φ(a)) for z ~ N(0, s²)
        tail = 0.5 * math.erfc(a / math.sqrt(2))
        relu_mean = s * math.exp(-a * a / 2) / math.sqrt(2 * math.pi) - tail
        mean, _, vprime = user.moments(np.array([[variance]]))
        assert mean[0] == pytest.approx(1 + relu_mean, rel=RTOL)
        assert vprime[0, 0] == pytest.approx(tail, rel=RTOL)  # E 1(z > 1)


# ------------------------------------------------------------ paths and limits
def test_hermite_path_is_taken_exactly_where_its_tail_is_small():
    phi = nonlinearity("tanh")
    nodes, weights, table = _kernels.hermite_rule(phi.hermite_terms)
    for variance, resolved in ((1.0, True), (1000.0, False)):
        K = variance * np.eye(2)
        out = (np.empty(2), np.empty((2, 2)), np.empty((2, 2)))
        coef, tail = np.empty((2, 2, table.shape[0])), np.empty((2, 2))
        _kernels.gauss_moments_hermite(
            phi.phi, phi.dphi, K, nodes, weights, table, *out, coef, tail
        )
        assert np.all(tail <= TAIL_TOL) == resolved


@pytest.mark.parametrize("rho", [0.3, 0.999])
def test_quadrature_agrees_with_converged_hermite_expansion(rho):
    """Where both apply (tanh at unit variance), forcing quadrature changes nothing."""
    phi = nonlinearity("tanh")
    K = _covariance(1.0, 1.3, rho)
    mean, second, vprime = phi.moments(K)
    forced = [np.array(mean), np.array(second), np.array(vprime)]
    errors = (np.zeros(2), np.zeros((2, 2)), np.zeros((2, 2)))
    coef = np.zeros((2, 2, phi.hermite_terms))
    _quadrature.gauss_moments_quadrature(
        phi.phi, phi.dphi, K, np.array([0.0]), np.zeros(2, bool), QUAD_TOL, coef, *forced, *errors
    )
    for a, b in zip(forced[1:], (second, vprime), strict=True):
        assert _scaled_errors(a, b, b).max() <= 1e-9
    assert np.abs(forced[0] - mean).max() <= 1e-9


def test_quadrature_kernel_py_func_parity():
    phi = nonlinearity("gelu")
    K = _covariance(200.0, 150.0, 0.95)  # one Mehler-series pair is impossible: both paths
    args = []
    for kernel in (
        _quadrature.gauss_moments_quadrature,
        _quadrature.gauss_moments_quadrature.py_func,
    ):
        out = [np.zeros(2), np.zeros((2, 2)), np.zeros((2, 2))]
        errors = (np.zeros(2), np.zeros((2, 2)), np.zeros((2, 2)))
        coef = np.zeros((2, 2, 32))
        kernel(
            phi.phi, phi.dphi, K, np.array([0.0]), np.zeros(2, bool), QUAD_TOL, coef, *out, *errors
        )
        args.append(out)
    for a, b in zip(*args, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_kronrod_rule_exactness():
    """21 Kronrod nodes integrate x^d exactly to d = 31, the embedded Gauss rule to d = 19."""
    for d in range(32):
        exact = (1 - (-1) ** (d + 1)) / (d + 1)
        powers = _gauss_kronrod.XK**d
        assert np.dot(_gauss_kronrod.WK, powers) == pytest.approx(exact, abs=1e-14)
        if d < 20:
            assert np.dot(_gauss_kronrod.WG, powers) == pytest.approx(exact, abs=1e-14)


def test_zero_and_huge_variances():
    """gelu(0) = 0, gelu′(0) = 1/2; at variance 1e6 gelu is relu up to O(1/s) relative."""
    phi = nonlinearity("gelu")
    K = np.diag([0.0, 1e6])
    mean, second, vprime = phi.moments(K)
    assert mean[0] == 0.0 and second[0, 0] == 0.0 and vprime[0, 0] == pytest.approx(0.25)
    assert second[1, 1] == pytest.approx(0.5e6, rel=1e-3)
    assert second[0, 1] == 0.0 and vprime[0, 1] == pytest.approx(0.5 * 0.5, rel=1e-3)


# ------------------------------------------------------------------- errors
def test_hermite_terms_are_validated():
    phi = nonlinearity("tanh")
    for bad in (1, MAX_HERMITE_TERMS + 1, 200.0, True, "64"):
        with pytest.raises(ValueError, match="terms must be an integer"):
            phi.with_hermite_terms(bad)
    K = 5.0 * np.array([[1.0, 0.6], [0.6, 1.0]])
    reference = phi.moments(K)
    for terms in (2, 182, MAX_HERMITE_TERMS):  # 182 overflowed numpy's hermegauss
        _, weights, table = _kernels.hermite_rule(terms)
        gram = (table * weights) @ table.T
        assert np.abs(gram - np.eye(terms)).max() < 1e-12
        for a, b in zip(phi.with_hermite_terms(terms).moments(K), reference, strict=True):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL)


@numba.njit
def _sqrt_abs(x):
    return math.sqrt(abs(x))


@numba.njit
def _sqrt_abs_derivative(x):  # E φ′² = ∫ 1/(4|x|) diverges
    return math.copysign(0.5, x) / math.sqrt(abs(x)) if x != 0.0 else math.inf


@numba.njit
def _nan_beyond_three(x):
    return math.nan if x > 3.0 else x


@numba.njit
def _one(x):
    return 1.0


def test_divergent_expectation_raises():
    """E φ′² = ∞ for φ = √|x|: the adaptive rule cannot converge, and says so."""
    act = Nonlinearity(
        name="test", phi=_sqrt_abs, dphi=_sqrt_abs_derivative, d2phi=None, expression="test"
    )
    with pytest.raises(ValueError, match=r"nonlinearity 'test': cannot integrate .* variances"):
        act.moments(np.array([[2.0, 1.0], [1.0, 2.0]]))


def test_undefined_phi_gives_nan_never_a_number():
    """φ = NaN beyond 3: the entries that see it are NaN (for the callers' guards)."""
    act = Nonlinearity(name="test", phi=_nan_beyond_three, dphi=_one, d2phi=None, expression="test")
    mean, second, vprime = act.moments(np.array([[2.0, 1.0], [1.0, 2.0]]))
    assert np.isnan(mean).all() and np.isnan(second).all()
    np.testing.assert_allclose(vprime, 1.0)
