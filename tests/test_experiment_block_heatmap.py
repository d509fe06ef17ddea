"""(η, a) heatmaps of block depth 2 (Fig. 7): tiny run, the sublevel-slope fit, claim logic."""

import math

import numpy as np
import pytest
import xarray as xr

from limitsim.experiments import block_heatmap as bh


def test_tiny_run(tiny_experiment):
    ds = tiny_experiment("block_heatmap")
    assert ds.log_loss.dims == ("depth", "log2_a", "log2_eta", "seed")
    assert np.isfinite(ds.log_loss).all()
    claims = bh.claims(ds)
    assert [c.kind for c in claims] == ["paper"] * 3
    assert all(c.estimate.seeds == ds.sizes["seed"] for c in claims)


def _valley(slope, x, y, *, across=0.4, along=3.0, centre=(1.0, -1.0)):
    """LogLoss with a straight elliptical valley of the given d(log2 a)/d(log2 η) slope."""
    E, A = np.meshgrid(x, y)  # (n_a, n_eta)
    direction = np.array([1.0, slope]) / math.hypot(1.0, slope)
    du, dv = E - centre[0], A - centre[1]
    t = du * direction[0] + dv * direction[1]  # along the valley
    s = -du * direction[1] + dv * direction[0]  # across it
    return -3.0 + (s / across) ** 2 + (t / along) ** 2


@pytest.mark.parametrize("slope", [-2.0, -1.0, -0.5, 0.0])
def test_principal_axis_recovers_valley_slope(slope):
    """Error of the fitted slope falls with the grid step and ends below 0.02."""
    errors = []
    for step in (0.5, 0.25, 0.1):
        x = np.arange(-6.0, 8.0 + 1e-9, step)
        y = np.arange(-9.0, 7.0 + 1e-9, step)
        fitted, centroid = bh.sublevel_axis(x, y, _valley(slope, x, y), delta=1.0)
        errors.append(abs(fitted - slope))
        assert np.allclose(centroid, (1.0, -1.0), atol=step)
    assert errors[-1] < 0.02 and errors[-1] <= errors[0] + 1e-12


def test_diverged_cells_are_outside_the_set():
    x = np.arange(-2.0, 4.01, 0.5)
    y = np.arange(-5.0, 3.01, 0.5)
    loss = _valley(-2.0, x, y)
    clean, _ = bh.sublevel_axis(x, y, loss, delta=1.0)
    loss[loss > -2.0] = np.nan  # everything outside the set diverged: same answer
    assert bh.sublevel_axis(x, y, loss, delta=1.0)[0] == pytest.approx(clean)
    only = np.full(loss.shape, np.nan)
    only[3, 4], only[3, 5] = -3.0, -2.9  # two cells: no axis
    assert math.isnan(bh.sublevel_axis(x, y, only, delta=1.0)[0])
    assert math.isnan(bh.sublevel_axis(x, y, np.full(loss.shape, np.nan), delta=1.0)[0])


def _dataset(slopes, *, seeds=8, noise=0.05):
    rng = np.random.default_rng(7)
    x = np.arange(-2.0, 4.01, 0.5)
    y = np.arange(-5.0, 3.01, 0.5)
    depths = [2, 32]
    cube = np.stack([_valley(s, x, y, along=2.0) for s in slopes])[..., None]
    data = cube + noise * rng.standard_normal((*cube.shape[:-1], seeds))
    coords = {"depth": depths, "log2_a": y, "log2_eta": x, "seed": list(range(seeds))}
    ds = xr.Dataset({"log_loss": (tuple(coords), data)}, coords=coords)
    ds.attrs = {"delta": 1.0, "n_boot": 100, "base_eta": 0.1}
    return ds


def test_claims_on_synthetic_heatmaps():
    """Slopes −2 → −1 reproduce all three claims; −1 → −2 fails all three."""
    ds = _dataset([-2.0, -1.0])
    for L, slope in ((2, -2.0), (32, -1.0)):
        fitted = bh.slope_fit(ds, L)
        assert fitted.seeds == 8 and fitted.low - 0.05 < slope < fitted.high + 0.05  # grid 0.5
    assert [c.verdict for c in bh.claims(ds)] == ["reproduced"] * 3
    assert [c.verdict for c in bh.claims(_dataset([-1.0, -2.0]))] == ["not reproduced"] * 3


def test_bootstrap_needs_eight_seeds():
    fitted = bh.slope_fit(_dataset([-2.0, -1.0], seeds=4), 2)
    assert math.isfinite(fitted.value) and math.isnan(fitted.low)


def test_seed_mean_excludes_cells_with_a_diverged_seed():
    cube = np.ones((3, 2, 2))
    cube[1, 0, 0] = np.nan
    mean = bh._seed_mean(cube)
    assert np.isnan(mean[0, 0]) and np.all(mean.ravel()[1:] == 1.0)


def test_needs_two_seeds():
    with pytest.raises(ValueError, match="seeds"):
        bh.run({**bh.SIZES["tiny"], "seeds": 1})
