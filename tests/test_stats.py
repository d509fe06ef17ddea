"""Intervals of the claims report against closed forms, scipy and their own coverage."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from limitsim.stats import (
    MIN_BOOTSTRAP_SEEDS,
    Estimate,
    argmin_fit,
    bootstrap_interval,
    exact,
    fit_slope,
    from_standard_error,
    jackknife_se,
    paired_interval,
    proportion_interval,
    spline_argmin,
    t_interval,
)


def test_t_interval_uses_the_t_quantile_at_two_seeds():
    e = t_interval([0.4, 0.6])  # mean 0.5, sd 0.1414, se 0.1
    assert e.seeds == 2 and e.value == pytest.approx(0.5)
    assert e.high - e.value == pytest.approx(12.7062047 * 0.1, rel=1e-6)  # t_{0.975, 1}


def test_t_interval_matches_scipy_and_drops_non_finite(rng):
    x = rng.normal(size=9)
    e = t_interval(np.append(x, [np.nan, np.inf]))
    low, high = sps.t.interval(0.95, 8, loc=x.mean(), scale=sps.sem(x))
    assert e.seeds == 9 and (e.low, e.high) == pytest.approx((low, high))


def test_t_interval_coverage_at_three_seeds(rng):
    """95% of intervals from 3 normal samples cover the mean (binomial SE of the rate)."""
    trials = 4000
    covered = sum(
        (e := t_interval(rng.normal(1.0, 2.0, size=3))).low <= 1.0 <= e.high for _ in range(trials)
    )
    rate = covered / trials
    assert abs(rate - 0.95) < 4 * math.sqrt(0.95 * 0.05 / trials)


def test_t_interval_degenerate_inputs():
    assert math.isnan(t_interval([]).value)
    one = t_interval([1.0, np.nan])
    assert one.value == 1.0 and one.seeds == 1 and math.isnan(one.low)


def test_paired_interval_removes_shared_seed_noise(rng):
    shared = rng.normal(0.0, 10.0, size=8)  # seed effect common to both arms
    a = shared + 0.5 + rng.normal(0.0, 0.01, size=8)
    b = shared + rng.normal(0.0, 0.01, size=8)
    paired = paired_interval(a, b)
    assert paired.low > 0.45 and paired.high < 0.55
    unpaired_half = sps.t.ppf(0.975, 14) * math.sqrt(a.var(ddof=1) / 8 + b.var(ddof=1) / 8)
    assert paired.high - paired.value < unpaired_half / 100
    with pytest.raises(ValueError, match="same seeds"):
        paired_interval([1.0, 2.0], [1.0])


def test_bootstrap_interval_needs_enough_seeds(rng):
    few = bootstrap_interval(rng.normal(size=MIN_BOOTSTRAP_SEEDS - 1), np.mean)
    assert math.isnan(few.low) and few.seeds == MIN_BOOTSTRAP_SEEDS - 1
    x = rng.normal(size=40)
    e = bootstrap_interval(x, np.mean, n_boot=4000)
    t = t_interval(x)
    # the percentile interval of a mean agrees with the t interval to O(1/S)
    assert e.low == pytest.approx(t.low, abs=0.1) and e.high == pytest.approx(t.high, abs=0.1)


def test_bootstrap_resamples_whole_seeds():
    """Rows are drawn whole: a statistic of the difference of two columns stays paired."""
    base = np.arange(10.0)[:, None] * 100.0
    data = np.hstack([base + 1.0, base])
    e = bootstrap_interval(data, lambda d: float(np.mean(d[:, 0] - d[:, 1])))
    assert e.low == pytest.approx(1.0) and e.high == pytest.approx(1.0)


def test_fit_slope_exact_line_and_scipy_stderr(rng):
    x = np.arange(6.0)
    line = fit_slope(x, 2.0 * x + 1.0)
    assert line.value == pytest.approx(2.0) and line.high - line.low == pytest.approx(0, abs=1e-9)
    y = 2.0 * x + rng.normal(size=6)
    fit = sps.linregress(x, y)
    e = fit_slope(x, y)
    assert e.seeds is None
    assert e.high - e.value == pytest.approx(sps.t.ppf(0.975, 4) * fit.stderr)


def test_from_standard_error():
    e = from_standard_error(1.0, 0.1, dof=3, seeds=8)
    assert e.high == pytest.approx(1.0 + sps.t.ppf(0.975, 3) * 0.1) and e.seeds == 8
    assert math.isnan(from_standard_error(1.0, 0.1, dof=0, seeds=None).low)


def test_proportion_interval_is_clopper_pearson():
    for k, n in ((0, 8), (3, 8), (8, 8)):
        e = proportion_interval(k, n)
        ci = sps.binomtest(k, n).proportion_ci(0.95, method="exact")
        assert (e.low, e.high) == pytest.approx((ci.low, ci.high))
    with pytest.raises(ValueError, match="successes"):
        proportion_interval(9, 8)


def test_exact_and_estimate_validation():
    assert exact(2.0) == Estimate(value=2.0, low=2.0, high=2.0, seeds=None)
    with pytest.raises(ValueError, match="reversed"):
        Estimate(value=0.0, low=1.0, high=-1.0, seeds=2)


def test_argmin_fit_recovers_the_vertex_between_grid_points():
    x = np.arange(-2.0, 2.01, 0.5)
    location, edge = argmin_fit(x, (x - 0.3) ** 2)
    assert location == pytest.approx(0.3) and not edge


def test_argmin_fit_moves_continuously_with_noise(rng):
    """A small perturbation moves the estimate a little, never by a whole grid step."""
    x = np.arange(-2.0, 2.01, 0.5)
    y = (x - 0.25) ** 2  # two grid points tie
    for _ in range(50):
        location, _ = argmin_fit(x, y + 1e-3 * rng.standard_normal(x.size))
        assert abs(location - 0.25) < 0.05


def test_argmin_fit_edges_and_divergence():
    x = np.arange(0.0, 5.0)
    assert argmin_fit(x, x) == (0.0, True)  # minimum at the first grid point: a bound only
    diverged = np.array([4.0, 1.0, 0.5, np.nan, np.nan])  # best just before divergence
    location, edge = argmin_fit(x, diverged)
    assert not edge and 1.0 <= location <= 2.0
    assert math.isnan(argmin_fit(x, np.full(5, np.nan))[0])


def test_spline_argmin_is_exact_for_a_cubic_between_grid_points():
    """Not-a-knot splines reproduce cubics: an asymmetric cubic's minimum is found exactly,
    where the parabola of argmin_fit is biased toward the gentle side."""
    x = np.arange(-2.0, 2.01, 0.5)
    y = (x - 0.3) ** 2 + 0.4 * (x - 0.3) ** 3
    location, edge = spline_argmin(x, y)
    assert location == pytest.approx(0.3, abs=1e-12) and not edge
    assert abs(argmin_fit(x, y)[0] - 0.3) > 0.05


def test_spline_argmin_handles_diverged_points_and_edges():
    x = np.arange(0.0, 3.01, 0.5)
    y = (x - 1.2) ** 2
    y[-1] = np.nan  # a diverged run
    assert spline_argmin(x, y)[0] == pytest.approx(1.2, abs=1e-12)
    assert spline_argmin(x, x)[1] and spline_argmin(x, x)[0] == 0.0
    assert np.isnan(spline_argmin(x, np.full(x.size, np.nan))[0])
    three = np.full(x.size, np.nan)
    three[2:5] = (x[2:5] - 1.2) ** 2  # three points: argmin_fit's parabola
    assert spline_argmin(x, three)[0] == pytest.approx(argmin_fit(x, three)[0])


def test_spline_argmin_moves_continuously_when_the_grid_minimum_changes(rng):
    """Two grid points tie: small noise flips the grid minimum, the estimate barely moves."""
    x = np.arange(-2.0, 2.01, 0.5)
    y = (x - 0.25) ** 2 + 0.3 * (x - 0.25) ** 3
    base = spline_argmin(x, y)[0]
    moves = [
        abs(spline_argmin(x, y + 1e-4 * rng.standard_normal(x.size))[0] - base) for _ in range(50)
    ]
    assert max(moves) < 0.01


@pytest.mark.parametrize("locate", [argmin_fit, spline_argmin])
@pytest.mark.parametrize("half_width", [0, -2, 1.5, True])
def test_optimum_locators_reject_a_bad_half_width(locate, half_width):
    """A window of fewer than one grid step each side is refused, naming the parameter."""
    with pytest.raises((ValueError, TypeError), match="half_width"):
        locate([0.0, 1.0, 2.0, 3.0], [3.0, 1.0, 2.0, 4.0], half_width=half_width)


def test_jackknife_se_of_the_mean_is_the_standard_error(rng):
    """For the mean, the leave-one-out jackknife SE equals sd/√R exactly (closed form)."""
    x = rng.standard_normal((7, 3))
    leave_one_out = (x.sum(axis=0) - x) / 6
    np.testing.assert_allclose(jackknife_se(leave_one_out), x.std(axis=0, ddof=1) / math.sqrt(7))


@pytest.mark.parametrize("values", [1.0, [0.3], np.ones((1, 4))])
def test_jackknife_se_refuses_fewer_than_two_values(values):
    with pytest.raises(ValueError, match="leave_one_out needs at least 2"):
        jackknife_se(values)
