"""Block depth 2 experiment (Figs. 4-6, 21): tiny run, point-function wiring, claim logic."""

import math

import numpy as np
import pytest
import xarray as xr

from limitsim.data import load_dataset
from limitsim.experiments import block_depth as bd
from limitsim.experiments._digits import train_points
from limitsim.finite.train import train_finite
from limitsim.parametrization import Parametrization


def test_tiny_run_and_filter(tiny_experiment):
    ds = tiny_experiment("block_depth")
    assert ds.log_loss.dims == ("phi", "block_depth", "depth", "log2_eta", "seed")
    # k·L > max_layers is not run: block depth 2 at L = 16 (32 layers) is the largest run
    assert np.isfinite(ds.log_loss.sel(block_depth=2, depth=16)).all()
    assert bd.depths_run(ds, 2) == [8, 16] and bd.depths_run(ds, 1) == [8, 16]
    claims = bd.claims(ds)
    assert len(claims) == 5 * ds.sizes["phi"] and {c.kind for c in claims} == {"paper"}
    # the early checkpoint comes from the same runs: its window ends before the run's end
    assert ds.attrs["early_step"] == bd.early_step(4, 2, 11 / 38) == 2
    assert np.isfinite(ds.log_loss_early.sel(block_depth=1, depth=8)).all()


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
    (result,) = train_points([{**point, "loss_checkpoints": (3,)}])
    task = load_dataset("digits", steps=point["steps"], batch_size=point["batch"])
    param = Parametrization(alpha=0.5, gamma=0.5, eta=0.1 * 2**1.5, a=2.0**log2_a,
                            optimizer="adam", base_depth=8)  # fmt: skip
    run = train_finite(task, param, depth=4, width=point["width"], phi=phi, seed=3,
                       block_depth=2, pre_ln=pre_ln, dtype="float32", eval_every=0)  # fmt: skip
    expected = math.log(float(np.mean(run.loss[-point["window"] :])))
    assert result["log_loss"] == pytest.approx(expected, rel=1e-6)
    # the early checkpoint: the window of steps before step 3 of the same run
    early = math.log(float(np.mean(run.loss[3 - point["window"] : 3])))
    assert result["log_loss_at"] == pytest.approx([early], rel=1e-6)


def _synthetic(optimum, offset, *, seeds=8, noise=0.02, early=None):
    """Parabolic LogLoss curves with argmin ``optimum(k, L)`` and level ``offset(k, L)``;
    the early checkpoint's level is ``early(k, L)`` (default: the same as the end's)."""
    early = early or offset
    rng = np.random.default_rng(1)
    depths, etas = [8, 16, 32, 64], np.arange(-4.0, 6.01, 0.5)
    data = np.full((2, 1, 2, len(depths), etas.size, seeds), np.nan)
    for level, when in enumerate((offset, early)):
        for i, k in enumerate((1, 2)):
            for j, L in enumerate(depths):
                if k * L > 64:
                    continue
                curve = 0.3 * (etas - optimum(k, L)) ** 2 + when(k, L)
                noisy = curve[:, None] + noise * rng.standard_normal((etas.size, seeds))
                data[level, 0, i, j] = noisy
    coords = {"phi": ["relu"], "block_depth": [1, 2], "depth": depths, "log2_eta": etas,
              "seed": list(range(seeds))}  # fmt: skip
    ds = xr.Dataset(
        {"log_loss": (tuple(coords), data[0]), "log_loss_early": (tuple(coords), data[1])},
        coords=coords,
    )
    ds.attrs = {"max_layers": 64, "base_eta": 0.1, "steps": 200, "early_step": 58}
    return ds


def _verdicts(ds):
    return [c.verdict for c in bd.claims(ds)]


def test_claims_on_synthetic_data_paper_like():
    """k = 2: optimum moves by −1 per doubling of L; k = 1: fixed (control); k = 2 worse."""
    ds = _synthetic(
        lambda k, L: 2.0 - (math.log2(L) - 3) if k == 2 else 2.0,
        lambda k, L: -2.0 + (0.5 if k == 2 else 0.0),
    )
    claims = bd.claims(ds)
    assert [c.verdict for c in claims[:4]] == ["reproduced"] * 4
    assert claims[1].estimate.value == pytest.approx(-1.0, abs=0.02)  # slope at k = 2
    value, totals = bd.gap(ds, "relu")
    assert totals == [16, 32, 64] and value.low < 0.5 < value.high


def test_claims_when_block_depth_two_transfers():
    """k = 2 fixed, k = 1 fixed: the control passes and the shift rows are not reproduced."""
    ds = _synthetic(lambda k, L: 1.0, lambda k, L: -2.0 - (0.5 if k == 2 else 0.0))
    assert _verdicts(ds)[:4] == ["reproduced", "not reproduced", "not reproduced", "not reproduced"]


@pytest.mark.parametrize(("phi", "late_gap", "verdict"), [
    ("relu", 0.0, "reproduced"),  # Fig. 4: the gap closes
    ("relu", 1.0, "not reproduced"),  # the gap grows
    ("abs", 0.5, "reproduced"),  # Fig. 5: the gap persists
    ("abs", -0.5, "not reproduced"),  # block depth 2 ends better
])  # fmt: skip
def test_catch_up_rows(phi, late_gap, verdict):
    """Early gap 0.5 everywhere; at the end ``late_gap``: relu must close it, abs must not."""
    ds = _synthetic(
        lambda k, L: 1.0,
        lambda k, L: -2.0 + (late_gap if k == 2 else 0.0),
        early=lambda k, L: -1.0 + (0.5 if k == 2 else 0.0),
    ).assign_coords(phi=[phi])
    row = bd.claims(ds)[-1]
    assert row.verdict == verdict
    expected = late_gap - 0.5 if phi == "relu" else late_gap
    assert row.estimate.value == pytest.approx(expected, abs=0.03)


def test_failed_control_makes_the_shift_rows_inconclusive():
    """k = 1's optimum moves: the control is not reproduced and the k = 2 rows undecided."""
    ds = _synthetic(lambda k, L: 2.0 - (math.log2(L) - 3), lambda k, L: -2.0)
    verdicts = _verdicts(ds)
    assert verdicts[0] == "not reproduced"
    assert verdicts[1:3] == ["inconclusive (control failed)"] * 2


def test_best_losses_skip_diverged_points():
    ds = _synthetic(lambda k, L: 2.0, lambda k, L: -2.0, noise=0.0)
    ds.log_loss.loc[{"block_depth": 1, "depth": 8, "log2_eta": 2.0, "seed": 0}] = np.nan
    best = bd.best_losses(ds, "relu", 1, 8)
    assert best[0] == pytest.approx(-2.0 + 0.3 * 0.25)  # the grid points next to the optimum
    assert best[1] == pytest.approx(-2.0)


def test_needs_two_seeds():
    with pytest.raises(ValueError, match="seeds"):
        bd.run({**bd.SIZES["tiny"], "seeds": 1})
