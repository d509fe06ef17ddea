"""The vectorizable arcsine of route R1 against mpmath (limitsim/gaussian/_asin.py)."""

import math

import mpmath
import numpy as np
import pytest

from limitsim._generated.gaussian import (
    homogeneous_second_moment,
    homogeneous_second_moment_angle,
    homogeneous_vprime,
    homogeneous_vprime_angle,
)
from limitsim._numba import jit
from limitsim.gaussian._asin import asin


@jit
def _asin_array(x, out):  # type: ignore[no-untyped-def]
    for i in range(x.size):  # the vectorized loop, as in the compiled recursion
        out[i] = asin(x[i])


def _asin(x):
    out = np.empty_like(x)
    _asin_array(np.ascontiguousarray(x, dtype=np.float64), out)
    return out


def _ulp_errors(x, y):
    """|y − asin x| in units of the ulp of the correctly rounded asin x (mpmath, 40 digits)."""
    errors = np.empty(x.size)
    with mpmath.workdps(40):
        for k, (xk, yk) in enumerate(zip(x.tolist(), y.tolist(), strict=True)):
            exact = mpmath.asin(mpmath.mpf(xk))
            unit = math.ulp(abs(float(exact))) if exact != 0 else math.ulp(0.0)
            errors[k] = float(abs(mpmath.mpf(yk) - exact) / unit)
    return errors


@pytest.fixture(scope="module")
def grid():
    """Uniform on [-1, 1], geometric towards 0 and towards ±1, and the ends of the three
    argument ranges of the algorithm (1/2 and 0.975) with their neighbours."""
    rng = np.random.default_rng(7)
    edges = []
    for edge in (0.5, 0.975, 1.0, 2.0**-26, 0.0):
        x = edge
        for _ in range(4):
            edges += [x, -x]
            x = np.nextafter(x, 0.0)
        x = edge
        for _ in range(4):
            x = np.nextafter(x, 1.0)
            if x <= 1.0:
                edges += [x, -x]
    x = np.concatenate(
        [
            rng.uniform(-1.0, 1.0, 60_000),
            np.linspace(-1.0, 1.0, 20_001),
            1.0 - np.geomspace(2.0**-53, 0.5, 10_000),
            -(1.0 - np.geomspace(2.0**-53, 0.5, 10_000)),
            np.geomspace(5e-324, 0.5, 10_000),
            -np.geomspace(5e-324, 0.5, 10_000),
            np.array(edges),
        ]
    )
    return x


def test_asin_is_within_one_ulp(grid):
    errors = _ulp_errors(grid, _asin(grid))
    assert errors.max() <= 1.0, grid[errors.argmax()]


def test_asin_special_values():
    x = np.array([0.0, -0.0, 1.0, -1.0, np.nextafter(1.0, 2.0), -1.5, np.inf, np.nan])
    y = _asin(x)
    assert y[0] == 0.0 and not math.copysign(1.0, y[0]) < 0
    assert y[1] == 0.0 and math.copysign(1.0, y[1]) < 0
    assert y[2] == math.pi / 2 and y[3] == -math.pi / 2
    assert np.isnan(y[4:]).all()


def test_asin_is_odd(grid):
    np.testing.assert_array_equal(_asin(-grid), -_asin(grid))


@pytest.mark.parametrize(("c_plus", "c_minus"), [(1.0, 0.0), (1.0, -1.0), (0.7, 0.2)])
def test_angle_closed_forms_are_the_closed_forms_with_the_angle_given(c_plus, c_minus):
    """The ``*_angle`` forms take θ = asin ρ from the caller; with libm's θ they are the
    original closed forms, bit for bit."""
    for rho in (-1.0, -0.3, 0.0, 0.5, 0.99, 1.0):
        theta = math.asin(rho)
        args = (0.8, 1.7, rho, c_plus, c_minus)
        angle = (0.8, 1.7, rho, theta, c_plus, c_minus)
        assert homogeneous_second_moment_angle(*angle) == homogeneous_second_moment(*args)
        assert homogeneous_vprime_angle(*angle) == homogeneous_vprime(*args)
