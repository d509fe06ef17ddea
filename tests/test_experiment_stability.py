"""Stability experiment (Claims 7.3, 7.4): tiny run, the limit against finite linear nets,
the claims on known power laws."""

import numpy as np
import xarray as xr

from limitsim.experiments import stability as st
from limitsim.finite import train_finite_batch
from limitsim.linear_limit import linear_limit
from limitsim.run import Record

POINT = {"steps": 3, "n_points": 3, "d_in": 5, "target_scale": 3.0}


def test_tiny_profile(tiny_experiment):
    ds = tiny_experiment("stability")
    rows = st.claims(ds)
    assert {c.kind for c in rows} == {"paper"}
    finite = [c for c in rows if "finite" in c.quantity]
    assert finite and all(c.estimate.seeds == ds.sizes["seed"] for c in finite)
    assert sum("Claim 7.4" in c.source for c in rows) == 3
    assert np.isfinite(ds.h).all() and np.isfinite(ds.limit_h).all()


def test_limit_measures_match_wide_finite_linear_nets():
    """The exact n = ∞ limit against width-256 linear nets (8 seeds) at α = 3/2: the finite
    nets fluctuate by O(n^-1/2) around the limit, so their mean is within 5 SE of it."""
    L, T = 8, POINT["steps"]
    param = st._param("1.5,-0.5", 0.15)
    task = st._task(POINT)
    limit = st._measures(
        linear_limit(task, param, depth=L, record=Record(steps=(0, T), backward=False)), L, T
    )
    runs = train_finite_batch(
        task,
        param,
        depth=L,
        width=2048,
        phi="linear",
        seeds=range(8),
        eval_every=0,
        record=Record(steps=(0, T), backward=False),
    )
    for key in ("h", "dh"):
        values = np.array([st._measures(r, L, T)[key] for r in runs])
        se = values.std(ddof=1) / np.sqrt(values.size)
        assert abs(values.mean() - limit[key]) < 5 * se + 1e-3, key


def synthetic(seeds=8):
    """h = L^max(α−1, 0) (+ 1% noise), h − h_0 = L^(α−1); d(ε)² = L^(1−2α) ε + ε²."""
    rng = np.random.default_rng(0)
    labels = ["0.5,0.5", "0.75,0.25", "1.5,-0.5"]
    depths = np.array([64, 128, 256])
    alphas = np.array([0.5, 0.75, 1.5])
    h = depths[None, :] ** np.maximum(alphas - 1, 0)[:, None]
    dh = depths[None, :] ** (alphas - 1)[:, None]
    kmax = depths[-1] // 16
    k = np.arange(1, kmax + 1)
    d = np.full((3, depths.size, kmax), np.nan)
    for i, a in enumerate(alphas):
        for j, L in enumerate(depths):
            eps = k[: L // 16] / L
            d[i, j, : L // 16] = np.sqrt(L ** (1 - 2 * a) * eps + eps**2)
    noise = np.exp(0.01 * rng.standard_normal((3, depths.size, seeds)))
    ds = xr.Dataset(
        {
            "limit_h": (("parametrization", "limit_depth"), h),
            "limit_dh": (("parametrization", "limit_depth"), dh),
            "limit_d": (("parametrization", "limit_depth", "limit_step", "limit_k"), d[:, :, None]),
            "h": (("parametrization", "depth", "seed"), h[..., None] * noise),
            "dh": (("parametrization", "depth", "seed"), dh[..., None] * noise),
            "d": (
                ("parametrization", "depth", "seed", "step", "k"),
                np.repeat(d[:, :, None, None], seeds, axis=2),
            ),
        },
        coords={
            "parametrization": labels,
            "limit_depth": depths,
            "depth": depths,
            "seed": np.arange(seeds),
            "limit_step": [3],
            "step": [3],
            "limit_k": k,
            "k": k,
        },
    )
    ds.attrs = {"steps": 3, "width": 64}
    return ds


def test_claims_on_known_power_laws():
    rows = {(c.claim, c.quantity.split(",")[1]): c for c in st.claims(synthetic())}
    by_claim = {}
    for (claim, _), c in rows.items():
        by_claim.setdefault(claim, []).append(c)
    for claim, cs in by_claim.items():
        if "faithful" in claim or "explodes" in claim or "L^(α−1)" in claim:
            assert all(c.verdict == "reproduced" for c in cs), claim
    noise = next(c for c in st.claims(synthetic()) if "noise term" in c.claim)
    assert abs(noise.estimate.value + 0.5) < 1e-6 and noise.verdict == "reproduced"
