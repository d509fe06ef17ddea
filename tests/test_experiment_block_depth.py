"""Block depth 2 experiment (Figs. 4-6, 21): tiny run, point-function wiring, claim logic."""

import math

import numpy as np
import pytest
import xarray as xr

from limitsim.data import load_dataset
from limitsim.experiments import block_depth as bd
from limitsim.finite import train_finite
from limitsim.parametrization import Parametrization


def test_tiny_run_plot_claims(tmp_path):
    sizes = bd.SIZES["tiny"]
    ds = bd.run(sizes)
    assert {"phi", "block_depth", "depth", "log2_eta", "seed"} <= set(ds.coords)
    assert ds.log_loss.dims == ("phi", "block_depth", "depth", "log2_eta", "seed")
    # k·L > max_layers is not run: block depth 2 at L = 4 (8 layers) is the largest run
    assert np.isfinite(ds.log_loss.sel(block_depth=2, depth=4)).all()
    assert bd.depths_run(ds, 2) == [2, 4] and bd.depths_run(ds, 1) == [2, 4]
    paths = bd.plot(ds, tmp_path)
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.exists() for p in paths)
    claims = bd.claims(ds)
    assert len(claims) == 3 * len(sizes["phis"])
    assert all(c.verdict in ("reproduced", "not reproduced", "inconclusive") for c in claims)


def test_filter_drops_blocks_beyond_max_layers():
    sizes = {**bd.SIZES["tiny"], "depths": (2, 4, 8), "max_layers": 8, "log2_etas": (0.0,)}
    ds = bd.run(sizes)
    assert bd.depths_run(ds, 1) == [2, 4, 8] and bd.depths_run(ds, 2) == [2, 4]
    assert np.isnan(ds.log_loss.sel(block_depth=2, depth=8)).all()
    assert np.isfinite(ds.log_loss.sel(block_depth=1, depth=8)).all()


@pytest.mark.parametrize("phi", ["relu", "abs"])
def test_point_function_matches_direct_training(phi):
    """The point function trains exactly the model the docstring names (a, η, LN, k, L0)."""
    pre_ln, log2_a = bd.SETUPS[phi]
    point = {
        **{k: bd.SIZES["tiny"][k] for k in ("width", "steps", "batch", "task", "window")},
        "optimizer": "adam", "base_eta": 0.1, "phi": phi, "pre_ln": pre_ln, "log2_a": log2_a,
        "block_depth": 2, "depth": 4, "log2_eta": 1.5, "seed": 3,
    }  # fmt: skip
    (result,) = bd.train_points([point])
    task = load_dataset("digits", steps=point["steps"], batch_size=point["batch"])
    param = Parametrization(alpha=0.5, gamma=0.5, eta=0.1 * 2**1.5, a=2.0**log2_a,
                            optimizer="adam", base_depth=8)  # fmt: skip
    run = train_finite(task, param, depth=4, width=point["width"], phi=phi, seed=3,
                       block_depth=2, pre_ln=pre_ln, dtype="float32", eval_every=0)  # fmt: skip
    expected = math.log(float(np.mean(run.loss[-point["window"] :])))
    assert result["log_loss"] == pytest.approx(expected, rel=1e-6)


def _synthetic(optimum, offset, *, seeds=4, noise=0.02):
    """Parabolic LogLoss curves with argmin ``optimum(k, L)`` and level ``offset(k, L)``."""
    rng = np.random.default_rng(1)
    depths, etas = [2, 4, 8, 16], np.arange(-2.0, 6.01, 0.5)
    data = np.full((1, 2, len(depths), etas.size, seeds), np.nan)
    for i, k in enumerate((1, 2)):
        for j, L in enumerate(depths):
            if k * L > 16:
                continue
            curve = 0.3 * (etas - optimum(k, L)) ** 2 + offset(k, L)
            data[0, i, j] = curve[:, None] + noise * rng.standard_normal((etas.size, seeds))
    coords = {"phi": ["relu"], "block_depth": [1, 2], "depth": depths, "log2_eta": etas,
              "seed": list(range(seeds))}  # fmt: skip
    ds = xr.Dataset({"log_loss": (tuple(coords), data)}, coords=coords)
    ds.attrs = {"max_layers": 16, "base_eta": 0.1}
    return ds


def test_claims_on_synthetic_data_paper_like():
    """k = 2: optimum moves by 1 per doubling of L; k = 1: fixed; k = 2 worse by 0.5."""
    ds = _synthetic(
        lambda k, L: 2.0 - (math.log2(L) - 1) if k == 2 else 2.0,
        lambda k, L: -2.0 + (0.5 if k == 2 else 0.0),
    )
    shift2, se2, lo, hi = bd.shift(ds, "relu", 2)
    assert (lo, hi) == (2, 8) and abs(shift2 - 2.0) < 4 * se2 + 1e-9
    claims = bd.claims(ds)
    assert [c.verdict for c in claims] == ["reproduced"] * 3
    value, se, totals = bd.gap(ds, "relu")
    assert totals == [4, 8, 16] and abs(value - 0.5) < 4 * se


def test_claims_on_synthetic_data_opposite():
    """k = 1 shifts and k = 2 does not; k = 2 better: every claim is not reproduced."""
    ds = _synthetic(
        lambda k, L: 2.0 - (math.log2(L) - 1) if k == 1 else 2.0,
        lambda k, L: -2.0 - (0.5 if k == 2 else 0.0),
    )
    assert [c.verdict for c in bd.claims(ds)] == ["not reproduced"] * 3


def test_best_loss_treats_any_diverged_seed_as_diverged():
    ds = _synthetic(lambda k, L: 2.0, lambda k, L: -2.0, noise=0.0)
    ds.log_loss.loc[{"block_depth": 1, "depth": 2, "log2_eta": 2.0, "seed": 0}] = np.nan
    value, _ = bd.best_loss(ds, "relu", 1, 2)
    assert value == pytest.approx(-2.0 + 0.3 * 0.25)  # the grid points next to the optimum


def test_needs_two_seeds():
    with pytest.raises(ValueError, match="seeds"):
        bd.run({**bd.SIZES["tiny"], "seeds": 1})
