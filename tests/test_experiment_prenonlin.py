"""Post- vs pre-nonlin (Fig. 2): tiny run, min over η with SE, and the claims on known data."""

import math

import numpy as np
import pytest
import xarray as xr

from limitsim.experiments import prenonlin
from limitsim.experiments._digits import edge_fraction, per_seed_min
from tests.helpers import tiny_dataset

DEPTHS = [4, 8, 16, 32, 64]
ETAS = [-1.0, 0.0, 1.0]


def synthetic(post, pre, *, seeds=8, noise=0.02, seed=0, etas=ETAS, shift=0.0):
    """Quadratic curves in log2 η with minimum ``post[L]``/``pre[L]`` at log2 η =
    ``shift`` · log2(L/8) (both blocks)."""
    rng = np.random.default_rng(seed)
    shape = (len(DEPTHS), len(etas), seeds)
    centre = shift * (np.log2(DEPTHS) - 3)[:, None, None]
    bowl = (np.asarray(etas)[None, :, None] - centre) ** 2
    minima = [np.asarray([v[L] for L in DEPTHS])[:, None, None] for v in (post, pre)]
    data = [m + bowl + noise * rng.standard_normal(shape) for m in minima]
    return xr.Dataset(
        {"log_loss": (("block", "depth", "log2_eta", "seed"), np.stack(data))},
        coords={
            "block": ["post", "pre"],
            "depth": DEPTHS,
            "log2_eta": list(etas),
            "seed": np.arange(seeds),
        },
    )


def test_tiny_profile():
    ds = tiny_dataset("prenonlin")
    assert ds.log_loss.dims == ("block", "depth", "log2_eta", "seed")
    claims = prenonlin.claims(ds)
    assert [c.kind for c in claims] == ["paper"] * 4  # Adam, as in the paper
    assert all(c.estimate.seeds == ds.sizes["seed"] for c in claims)


def test_per_seed_min_skips_diverged_points():
    values = np.array([[2.0, 3.0, np.nan], [0.0, np.nan, np.nan], [2.0, 2.0, np.nan]])
    da = xr.DataArray(values, dims=("log2_eta", "seed"), coords={"log2_eta": [0.0, 1.0, 2.0]})
    best = per_seed_min(da, ("log2_eta",)).values
    assert best[0] == 0.0 and best[1] == 2.0 and np.isnan(best[2])  # seed 2 diverged everywhere


def test_claims_on_the_papers_picture_are_reproduced():
    post = {L: -0.5 * math.log2(L) for L in DEPTHS}  # keeps improving
    pre = dict.fromkeys(DEPTHS, -1.5)  # plateau
    claims = prenonlin.claims(synthetic(post, pre))
    assert [c.verdict for c in claims] == ["reproduced"] * 4
    assert abs(claims[0].estimate.value) < 0.05  # the optimum stays at log2 η = 0
    assert claims[1].estimate.value == pytest.approx(-1.5 + 3.0, abs=0.1)  # gap at L = 64


def test_claims_on_the_opposite_picture_are_not_reproduced():
    pre = {L: -0.5 * math.log2(L) for L in DEPTHS}
    post = {L: -3.0 + 0.2 * math.log2(L) for L in DEPTHS}  # deeper is worse
    claims = prenonlin.claims(synthetic(post, pre))
    assert [c.verdict for c in claims[1:]] == ["not reproduced"] * 3


@pytest.mark.parametrize(("shift", "verdict"), [(0.0, "reproduced"), (-0.75, "not reproduced")])
def test_pre_nonlin_transfer_row(shift, verdict):
    """Fig. 2 left: the optimum's slope per doubling must lie within ±0.25."""
    flat = dict.fromkeys(DEPTHS, -1.5)
    etas = np.arange(-6.0, 4.01, 0.5)
    row = prenonlin.claims(synthetic(flat, flat, etas=etas, shift=shift))[0]
    assert row.verdict == verdict
    assert row.estimate.value == pytest.approx(shift, abs=0.05)


def test_minimum_at_the_grid_edge_is_undecided():
    """Losses still falling at the largest η: the minimum over η is only a bound."""
    post = {L: -0.5 * math.log2(L) for L in DEPTHS}
    ds = synthetic(post, dict.fromkeys(DEPTHS, -1.5))
    ds["log_loss"] = ds.log_loss - 2.0 * ds.log2_eta  # monotone in η: minima at log2 η = 1
    assert edge_fraction(ds.log_loss, "log2_eta") == 1.0
    claims = prenonlin.claims(ds)
    assert all("grid's edge" in c.verdict for c in claims)
