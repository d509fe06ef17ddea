"""95% intervals for the claims report: t intervals over seeds, paired differences, fits.

Every measured quantity of the claims report is an :class:`Estimate`: a value, a two-sided
95% interval and the number of independent seeds (or replicas) behind it; ``seeds is None``
marks a deterministic computation whose interval, if any, comes from a least-squares fit.

- :func:`t_interval`: mean of per-seed values, mean ± t_{0.975, S−1} · sd/√S (Student's t
  quantile, so 2 seeds give a multiplier of 12.7, not 2);
- :func:`paired_interval`: the same for per-seed differences of two arms that share seeds
  (initial weights and batches), which cancels the seed-to-seed variation both arms share;
- :func:`bootstrap_interval`: percentile bootstrap of any statistic of the seed axis, for
  statistics that are not means (at least :data:`MIN_BOOTSTRAP_SEEDS` seeds);
- :func:`fit_slope`: least-squares slope with a t_{0.975, n−2} interval (deterministic data);
- :func:`proportion_interval`: Clopper–Pearson interval of a fraction of runs;
- :func:`argmin_fit`: location of a minimum on a grid that survives grid steps and noise, by a
  least-squares parabola over the points around the grid minimum; it also says when the
  minimum sits at the edge of the grid (then the location is only a bound);
- :func:`spline_argmin`: the same from the cubic spline through the points around the grid
  minimum (for curves that are far from parabolic there, and estimates whose bias matters).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as _scipy_stats

from limitsim.validation import check_integer

__all__ = [
    "LEVEL",
    "MIN_BOOTSTRAP_SEEDS",
    "Estimate",
    "argmin_fit",
    "bootstrap_interval",
    "exact",
    "fit_slope",
    "from_standard_error",
    "jackknife_se",
    "missing",
    "paired_interval",
    "proportion_interval",
    "spline_argmin",
    "t_interval",
]

#: Coverage of every interval in the report.
LEVEL = 0.95
#: Fewest seeds for a percentile bootstrap (fewer give intervals that undercover badly).
MIN_BOOTSTRAP_SEEDS = 8


@dataclass(frozen=True, kw_only=True, slots=True)
class Estimate:
    """A measured value with its 95% interval.

    Attributes
    ----------
    value : float
        The estimate (NaN when it could not be measured).
    low, high : float
        The interval; ``low == high == value`` for exact computations.
    seeds : int or None
        Independent seeds or replicas behind the interval; None for deterministic values.
    """

    value: float
    low: float
    high: float
    seeds: int | None

    def __post_init__(self) -> None:
        if self.seeds is not None and self.seeds < 0:
            raise ValueError(f"seeds must be >= 0 or None, got {self.seeds}")
        if math.isfinite(self.low) and math.isfinite(self.high) and self.low > self.high:
            raise ValueError(f"interval [{self.low}, {self.high}] is reversed")

    @property
    def finite(self) -> bool:
        """True when the value and both ends of the interval are finite numbers."""
        return all(math.isfinite(v) for v in (self.value, self.low, self.high))


def exact(value: float) -> Estimate:
    """A deterministic value: the interval is the point itself."""
    return Estimate(value=float(value), low=float(value), high=float(value), seeds=None)


def missing(seeds: int | None = 0) -> Estimate:
    """A quantity that could not be measured (NaN value and interval)."""
    return Estimate(value=math.nan, low=math.nan, high=math.nan, seeds=seeds)


def t_interval(samples: ArrayLike, *, level: float = LEVEL) -> Estimate:
    """Mean of per-seed values with the Student-t interval; non-finite samples are dropped.

    Parameters
    ----------
    samples : array_like, shape (S,)
        One value per independent seed.

    Returns
    -------
    Estimate
        ``seeds`` counts the finite samples; fewer than two give a NaN interval.
    """
    x = np.asarray(samples, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return missing(0)
    mean = float(x.mean())
    if x.size < 2:
        return Estimate(value=mean, low=math.nan, high=math.nan, seeds=1)
    half = float(_scipy_stats.t.ppf(0.5 + level / 2, x.size - 1)) * float(x.std(ddof=1))
    half /= math.sqrt(x.size)
    return Estimate(value=mean, low=mean - half, high=mean + half, seeds=int(x.size))


def paired_interval(a: ArrayLike, b: ArrayLike, *, level: float = LEVEL) -> Estimate:
    """t interval of the per-seed differences ``a − b`` of two arms that share seeds.

    Parameters
    ----------
    a, b : array_like, shape (S,)
        Per-seed values of the two arms, seed ``s`` of ``a`` paired with seed ``s`` of ``b``;
        a pair with a non-finite member is dropped.
    """
    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired arms need the same seeds, got shapes {x.shape} and {y.shape}")
    return t_interval(x - y, level=level)


def bootstrap_interval(
    samples: ArrayLike,
    statistic: Callable[[NDArray[np.float64]], float],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = LEVEL,
) -> Estimate:
    """Percentile bootstrap of ``statistic`` over the seed axis (axis 0) of ``samples``.

    Parameters
    ----------
    samples : array_like, shape (S, ...)
        Per-seed data; resampling draws whole rows, so everything a seed shares stays paired.
    statistic : callable
        Maps an array shaped like ``samples`` to a float (NaN allowed for failed draws).

    Returns
    -------
    Estimate
        The statistic of the data and the percentile interval of its bootstrap draws; a NaN
        interval when fewer than :data:`MIN_BOOTSTRAP_SEEDS` seeds or more than 5% of the
        draws fail.
    """
    data = np.asarray(samples, dtype=np.float64)
    S = data.shape[0]
    value = float(statistic(data))
    if S < MIN_BOOTSTRAP_SEEDS or not math.isfinite(value):
        return Estimate(value=value, low=math.nan, high=math.nan, seeds=S)
    rng = np.random.default_rng(seed)
    draws = np.array([statistic(data[rng.integers(0, S, S)]) for _ in range(n_boot)])
    if np.mean(~np.isfinite(draws)) > 0.05:
        return Estimate(value=value, low=math.nan, high=math.nan, seeds=S)
    lo, hi = np.quantile(draws[np.isfinite(draws)], [0.5 - level / 2, 0.5 + level / 2])
    return Estimate(value=value, low=float(lo), high=float(hi), seeds=S)


def from_standard_error(
    value: float, se: float, *, dof: int, seeds: int | None, level: float = LEVEL
) -> Estimate:
    """``value ± t_{dof} · se``: an interval from a standard error with ``dof`` degrees of
    freedom (e.g. a weighted fit's slope, dof = points − 2)."""
    if dof < 1 or not (math.isfinite(value) and math.isfinite(se)):
        return Estimate(value=value, low=math.nan, high=math.nan, seeds=seeds)
    half = float(_scipy_stats.t.ppf(0.5 + level / 2, dof)) * se
    return Estimate(value=value, low=value - half, high=value + half, seeds=seeds)


def fit_slope(x: ArrayLike, y: ArrayLike, *, level: float = LEVEL) -> Estimate:
    """Least-squares slope of ``y`` against ``x`` with its t_{n−2} interval (no seeds).

    For deterministic data (exact routes, quadrature) the interval measures how far the points
    are from a straight line, not sampling noise; non-finite points are dropped, and fewer
    than three points give a NaN interval.
    """
    xs, ys = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    if np.unique(xs).size < 2:
        return missing(None)
    slope, intercept = np.polyfit(xs, ys, 1)
    if xs.size < 3:
        return Estimate(value=float(slope), low=math.nan, high=math.nan, seeds=None)
    residual = ys - (slope * xs + intercept)
    spread = float(np.sum((xs - xs.mean()) ** 2))
    se = math.sqrt(float(residual @ residual) / (xs.size - 2) / spread)
    half = float(_scipy_stats.t.ppf(0.5 + level / 2, xs.size - 2)) * se
    return Estimate(value=float(slope), low=slope - half, high=slope + half, seeds=None)


def proportion_interval(successes: int, trials: int, *, level: float = LEVEL) -> Estimate:
    """Fraction ``successes / trials`` with its exact Clopper–Pearson interval."""
    if trials <= 0:
        return missing(0)
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, {trials}], got {successes}")
    alpha = 1 - level
    beta = _scipy_stats.beta
    low = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, trials - successes + 1))
    high = (
        1.0
        if successes == trials
        else float(beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    )
    return Estimate(value=successes / trials, low=low, high=high, seeds=trials)


def jackknife_se(leave_one_out: ArrayLike) -> NDArray[np.float64]:
    """Jackknife standard error from the leave-one-out values on axis 0 (R ≥ 2 of them):
    ``sqrt((R − 1)/R Σ_i (θ_(i) − mean_i θ_(i))²)``, shape of ``leave_one_out[0]``.

    Raises
    ------
    ValueError
        With fewer than two leave-one-out values (a zero SE would look exact).
    """
    values = np.asarray(leave_one_out, dtype=np.float64)
    if values.ndim == 0 or values.shape[0] < 2:
        raise ValueError(
            f"leave_one_out needs at least 2 values on axis 0, got shape {values.shape}"
        )
    R = values.shape[0]
    out: NDArray[np.float64] = np.sqrt(
        (R - 1) / R * np.sum((values - values.mean(axis=0)) ** 2, axis=0)
    )
    return out


def _grid_minimum(
    x: ArrayLike, y: ArrayLike, half_width: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], int, bool, NDArray[np.intp]] | None:
    """Grid, values, index of the grid minimum over the finite values, whether it is at an end,
    and the indices of the finite points within ``half_width`` steps of it (None with fewer
    than two finite values)."""
    half_width = check_integer("half_width", half_width, minimum=1)
    xs = np.asarray(x, dtype=np.float64).ravel()
    ys = np.asarray(y, dtype=np.float64).ravel()
    if xs.shape != ys.shape:
        raise ValueError(f"x and y need the same shape, got {xs.shape} and {ys.shape}")
    finite = np.isfinite(ys)
    if finite.sum() < 2:
        return None
    k = int(np.argmin(np.where(finite, ys, np.inf)))
    lo, hi = max(0, k - half_width), min(xs.size, k + half_width + 1)
    return xs, ys, k, k == 0 or k == xs.size - 1, np.arange(lo, hi)[finite[lo:hi]]


def argmin_fit(x: ArrayLike, y: ArrayLike, *, half_width: int = 2) -> tuple[float, bool]:
    """Location of the minimum of ``y`` on the grid ``x``, and whether it is at the grid edge.

    The grid minimum (non-finite ``y``, e.g. diverged runs, excluded) is refined by a
    least-squares parabola through the finite points within ``half_width`` grid steps of it;
    the vertex is used when the parabola opens upwards and is clipped to those points' range,
    so one noisy point moves the estimate continuously instead of by a whole grid step.

    Returns
    -------
    location : float
        NaN when fewer than two points are finite.
    at_edge : bool
        True when the grid minimum is the first or last grid point: the true minimum may lie
        outside the grid, and ``location`` is only a bound.
    """
    found = _grid_minimum(x, y, half_width)
    if found is None:
        return math.nan, False
    xs, ys, k, at_edge, window = found
    if window.size < 3 or at_edge:
        return float(xs[k]), at_edge
    a, b, _ = np.polyfit(xs[window], ys[window], 2)
    if a <= 0:
        return float(xs[k]), at_edge
    return float(np.clip(-b / (2 * a), xs[window].min(), xs[window].max())), at_edge


def spline_argmin(x: ArrayLike, y: ArrayLike, *, half_width: int = 3) -> tuple[float, bool]:
    """Location of the minimum of ``y`` on the grid ``x`` by a cubic spline, and the edge flag.

    The not-a-knot cubic spline (:class:`scipy.interpolate.CubicSpline`) through the finite
    points within ``half_width`` grid steps of the grid minimum is minimised exactly (its
    critical points and the ends).  Unlike the parabola of :func:`argmin_fit`, which is fitted
    over points on both sides of the minimum and so is biased when the curve is asymmetric
    (a training loss rises much faster past the optimal learning rate than before it), the
    spline passes through every point: the estimate is exact for cubic curves, and when the
    grid minimum moves to a neighbouring point the points used change only far from the
    minimum, where a cubic spline's dependence on them decays by about 0.27 per grid step.

    Returns
    -------
    location : float
        NaN when fewer than two points are finite; with two or three finite points near the
        grid minimum, :func:`argmin_fit`'s estimate.
    at_edge : bool
        True when the grid minimum is the first or last grid point (as :func:`argmin_fit`).
    """
    from scipy.interpolate import CubicSpline

    found = _grid_minimum(x, y, half_width)
    if found is None:
        return math.nan, False
    xs, ys, _, at_edge, window = found
    if window.size < 4:
        return argmin_fit(xs, ys, half_width=half_width)
    spline = CubicSpline(xs[window], ys[window])
    roots = spline.derivative().roots(extrapolate=False)
    candidates = np.concatenate([xs[window[[0, -1]]], roots[np.isfinite(roots)]])
    return float(candidates[np.argmin(spline(candidates))]), at_edge
