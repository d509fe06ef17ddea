"""Transfer experiment (Figs. 10, 12, 20, 23): the rows beyond the optimum's slope on data whose
answer is known, and the tiny run."""

import math

import numpy as np
import pytest
import xarray as xr

from limitsim.experiments import transfer
from limitsim.experiments._transfer_ln import claims_ln
from limitsim.experiments._transfer_rows import monotone_step
from limitsim.parametrization import Parametrization

DEPTHS = [8, 32, 128]
ETAS = np.arange(-3.0, 3.01, 0.5)


def _steps(means, *, seeds=8, noise=0.05, seed=0):
    """Per-seed values at len(means) + 1 depths whose consecutive steps have exactly these
    means over seeds (the noise is centred per depth)."""
    rng = np.random.default_rng(seed)
    levels = np.concatenate([[0.0], np.cumsum(means)])
    jitter = noise * rng.standard_normal((levels.size, seeds))
    return levels[:, None] + jitter - jitter.mean(axis=1, keepdims=True)


@pytest.mark.parametrize(
    ("means", "verdict", "index"),
    [
        ([-0.5, -0.5], "reproduced", None),
        ([-0.5, 0.5], "not reproduced", 1),  # the second step worsens
        ([-0.5, 0.0], "inconclusive", 1),  # the second step is flat: undecided
        ([0.5, 0.0], "not reproduced", 0),  # a flat step does not hide a worsening one
    ],
)
def test_monotone_step_is_an_intersection_union_test(means, verdict, index):
    from limitsim.report import verdict as judge

    estimate, i = monotone_step(_steps(means))
    assert judge(estimate, -math.inf, 0.0) == verdict
    if index is not None:
        assert i == index
    assert estimate.seeds == 8


def _synthetic(*, seeds=8, noise=0.02, monotone=True):
    """Adam curves: Depth-µP flat at log2 η = 0 improving with L, block-only moving −0.5 per
    doubling, both SP definitions diverging at the largest depth."""
    rng = np.random.default_rng(3)
    params = ["depth_mup", "block_only", "standard", "standard_gamma1"]
    shape = (1, len(params), len(DEPTHS), ETAS.size, seeds)
    data = np.empty(shape)
    for j, param in enumerate(params):
        for i, L in enumerate(DEPTHS):
            doublings = math.log2(L / 8)
            centre = -0.5 * doublings if param == "block_only" else 0.0
            level = (-0.3 if monotone else 0.3 * (i == 2)) * doublings
            data[0, j, i] = (0.3 * (ETAS - centre) ** 2 + level)[:, None]
    data += noise * rng.standard_normal(shape)
    data[0, 2:, -1] = np.nan  # SP diverges at every η at L = 128
    coords = {"optimizer": ["adam"], "param": params, "depth": DEPTHS, "log2_eta": ETAS,
              "seed": np.arange(seeds)}  # fmt: skip
    ds = xr.Dataset({"log_loss": (tuple(coords), data)}, coords=coords)
    ds.attrs = {"log2_etas_adam": list(ETAS), "steps": 200, "base_eta_adam": 0.1}
    return ds


def _rows(claims, text):
    return [c for c in claims if text in c.claim]


def test_rows_on_the_papers_picture():
    claims = transfer.claims(_synthetic())
    (monotone,) = _rows(claims, "monotonically")
    assert monotone.verdict == "reproduced"
    assert monotone.estimate.value == pytest.approx(-0.6, abs=0.05)  # 2 doublings × −0.3
    (fails,) = _rows(claims, "fails at large depth")
    assert fails.verdict == "reproduced" and fails.estimate.value == pytest.approx(1.0)
    unstable = _rows(claims, "unstable at initialization")
    assert [c.verdict for c in unstable] == ["reproduced"] * 2
    assert "Fig. 23" in unstable[1].source and "(0, 1)" in unstable[1].claim
    (gamma1,) = _rows(claims, "SP with γ = 1 (0, 1): the optimal η moves")
    # where it trains (L = 8, 32) this synthetic SP keeps its optimum: "moves" is not reproduced
    assert gamma1.verdict == "not reproduced" and "L = 8..32" in gamma1.quantity


def test_monotone_row_not_reproduced_when_depth_hurts():
    (row,) = _rows(transfer.claims(_synthetic(monotone=False)), "monotonically")
    assert row.verdict == "not reproduced" and "32 → 128" in row.quantity


def _ln(slopes, *, seeds=8, noise=0.02):
    """A Fig. 12 grid whose optimum moves by ``slopes[param]`` per doubling of L."""
    rng = np.random.default_rng(4)
    depths, etas = [8, 16, 32], np.arange(1.0, 7.01, 0.5)
    params = list(slopes)
    data = np.empty((len(params), len(depths), etas.size, seeds))
    for j, param in enumerate(params):
        for i, L in enumerate(depths):
            centre = 4.5 + slopes[param] * math.log2(L / 8)
            data[j, i] = (0.3 * (etas - centre) ** 2)[:, None]
    data += noise * rng.standard_normal(data.shape)
    coords = {"ln_param": params, "ln_depth": depths, "ln_log2_eta": etas,
              "seed": np.arange(seeds)}  # fmt: skip
    ds = xr.Dataset({"ln_log_loss": (tuple(coords), data)}, coords=coords)
    ds.attrs = {"ln_phi": "abs", "ln_log2_a": -3.0, "steps": 200}
    return ds


@pytest.mark.parametrize(
    ("slopes", "verdicts"),
    [
        ({"depth_mup": 0.0, "block_only": -0.5}, ["reproduced", "reproduced"]),
        ({"depth_mup": -0.5, "block_only": 0.0}, ["not reproduced", "not reproduced"]),
    ],
)
def test_fig12_rows(slopes, verdicts):
    rows = claims_ln(_ln(slopes))
    assert [c.verdict for c in rows] == verdicts
    assert [c.estimate.value for c in rows] == pytest.approx(list(slopes.values()), abs=0.05)
    assert [c.source.split(":")[1].strip() for c in rows] == ["Fig. 12 left", "Fig. 12 right"]


def test_sp_gamma1_under_adam_is_sp_at_a_depth_scaled_rate():
    """Under Adam, (0, 1) at η applies the step of (0, 0) at η·(L/8)^-1 (the x axis of Fig. 23)."""
    sp = Parametrization.standard(eta=0.1, optimizer="adam", base_depth=8)
    sp1 = Parametrization.standard_gamma1(eta=0.1 * 16, optimizer="adam", base_depth=8)
    assert sp1.learning_rate(128, 64) == pytest.approx(sp.learning_rate(128, 64))
    assert sp1.gradient_scale(128, 64) == sp.gradient_scale(128, 64)
    assert sp1.branch_multiplier(128) == sp.branch_multiplier(128) == 1.0


def test_tiny_run_has_every_row_and_both_figures(tmp_path, tiny_experiment):
    ds = tiny_experiment("transfer")
    assert ds.ln_log_loss.dims == ("ln_param", "ln_depth", "ln_log2_eta", "seed")
    assert np.isfinite(ds.ln_log_loss).all()
    claims = transfer.claims(ds)
    sources = " ".join(c.source for c in claims)
    for figure in ("Fig. 10 top", "Fig. 12 left", "Fig. 12 right", "Fig. 20", "Fig. 23"):
        assert figure in sources
    assert len(_rows(claims, "monotonically")) == 1
    names = sorted(p.name for p in transfer.plot(ds, tmp_path))
    assert names == ["transfer.pdf", "transfer.png", "transfer_ln.pdf", "transfer_ln.png"]
