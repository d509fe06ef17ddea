"""The coordinate check (limitsim.commands.coordcheck): predicted exponents against App. D.2
and the exact n = ∞ linear limit, fitted exponents of finite networks, the figure, the CLI."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import xarray as xr

from limitsim import Parametrization, Record, Task
from limitsim.cli import main
from limitsim.commands import coordcheck as cc
from limitsim.commands._coordcheck_plot import MIN_DECADES, _y_range, plot_coordcheck
from limitsim.linear.limit import linear_limit
from limitsim.measures import coordinate_check
from limitsim.stats import fit_slope

DELTAS = ("x_delta", "h_delta", "f_delta")


# ------------------------------------------------------------------- predicted exponents
def d2_exponents(alpha, gamma):
    """Depth exponents written out from App. D.2 and Claims 7.1-7.3 (independent of the code):
    f̊_1 and Δx = Θ(L^{1-α-γ}); Δh = W_0 Δx + ΔW x with ΔW x = Θ(L^-γ); x_0, h_0 = Θ(1)."""
    drift = 1 - alpha - gamma
    dh = max(drift, -gamma)
    return {
        "x_delta": drift,
        "h_delta": dh,
        "f_delta": drift,
        "x_rms": max(0.0, drift),
        "h_rms": max(0.0, dh),
        "f_rms": drift,
    }


@pytest.mark.parametrize(
    ("alpha", "gamma", "expected"),
    [
        (0.5, 0.5, dict.fromkeys(cc.VARIABLES, 0.0)),  # Depth-µP: flat in L
        (0.5, 0.0, dict.fromkeys(cc.VARIABLES, 0.5)),  # block-only: every Δ grows like √L
        (1.0, 0.0, dict.fromkeys(cc.VARIABLES, 0.0)),  # ODE: stable, nontrivial
        (1.5, -0.5, {**dict.fromkeys(cc.VARIABLES, 0.0), "h_delta": 0.5, "h_rms": 0.5}),
        (1.0, 0.5, {"x_delta": -0.5, "h_delta": -0.5, "f_delta": -0.5, "x_rms": 0.0}),
    ],
)
def test_predicted_exponents_follow_the_claims(alpha, gamma, expected):
    predicted = cc.predicted_exponents(alpha, gamma)
    assert set(predicted) == set(cc.VARIABLES)
    by_hand = d2_exponents(alpha, gamma)
    for name, (width, depth) in predicted.items():
        assert width == 0.0  # µP in width (Table 2)
        assert depth == pytest.approx(by_hand[name], abs=1e-12)
        if name in expected:
            assert depth == pytest.approx(expected[name], abs=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.49])
def test_no_power_law_below_alpha_one_half(alpha):
    # Claim 7.1: x grows like exp(L^{1-2α}); no depth exponent is predicted.
    predicted = cc.predicted_exponents(alpha, 0.0)
    assert all(math.isnan(depth) and width == 0.0 for width, depth in predicted.values())


@pytest.mark.parametrize(
    ("alpha", "gamma"), [(0.5, 0.5), (0.5, 0.0), (1.0, 0.0), (0.75, 0.25), (0.75, 0.0)]
)
def test_predicted_depth_exponents_match_the_exact_linear_limit(alpha, gamma):
    """One SGD step of the exact n = ∞ linear network (route R2) at L = 64, 128, 256.

    Tolerance 1/8: half the smallest gap (1/4) between the exponents compared, so the fit
    singles out the predicted exponent among them.  Δh is the sum of W_0 Δx (L^{1-α-γ}) and
    ΔW x (L^-γ); the local slope of a sum of two power laws lies between their exponents and
    reaches the larger one as their ratio L^{-|1-α|} vanishes, which for α = 3/4 is as slow as
    L^{-1/4}: where the exponents are less than 1/2 apart, Δh is checked against that bracket.
    """
    task = Task.from_dataset("few_point", steps=2)
    param = Parametrization(alpha=alpha, gamma=gamma, eta=0.1)
    depths = (64, 128, 256)
    runs = []
    for depth in depths:
        run = linear_limit(task, param, depth=depth, record=Record(steps=(0, 1), backward=False))
        runs.append(dataclasses.replace(run, options={**run.options, "width": 0}))
    table = coordinate_check(runs).sel(step=1, width=0, fraction=0.5)
    predicted = cc.predicted_exponents(alpha, gamma)
    drift, update = 1 - alpha - gamma, -gamma
    for name in DELTAS:
        slope = fit_slope(np.log(depths), np.log(table[name].values)).value
        if name == "h_delta" and abs(drift - update) < 0.5:
            assert min(drift, update) - 1 / 8 < slope < max(drift, update) + 1 / 8, slope
        else:
            assert slope == pytest.approx(predicted[name][1], abs=1 / 8), name


# ------------------------------------------------------------------- finite networks
@pytest.fixture(scope="module")
def small():
    """Depth-µP beside block-only, n = 16..64, L = 2..32, 4 seeds, one SGD step (≈ 2 s)."""
    task = Task.from_dataset("digits", steps=2, batch_size=16)
    params = [Parametrization.depth_mup(eta=0.1), Parametrization.block_only(eta=0.1)]
    return cc.coordcheck(
        task, params, widths=(16, 32, 64), depths=(2, 4, 8, 16, 32), seeds=4, record_steps=(1,)
    )


def exponent(data, name, quantity, axis="depth"):
    sel = dict(parametrization=name, quantity=quantity, axis=axis, step=1)
    return tuple(float(data[k].sel(**sel)) for k in ("exponent", "exponent_low", "exponent_high"))


def test_dataset_layout(small):
    assert list(small.parametrization.values) == ["depth_mup", "block_only"]
    assert small.x_delta.dims == ("parametrization", "width", "depth", "step", "fraction")
    assert small.exponent.shape == (2, len(cc.VARIABLES), 2, 2)
    assert list(small.alpha.values) == [0.5, 0.5] and list(small.gamma.values) == [0.5, 0.0]
    assert small.attrs["seeds"] == 4
    # Step 0: nothing has moved, so there is nothing to fit.
    assert np.all(small.x_delta.sel(step=0).values == 0)
    assert np.isnan(small.exponent.sel(step=0, quantity="x_delta").values).all()
    # The exponent is the slope of log(mean) against log L at the largest width.
    curve = small.f_delta.sel(parametrization="block_only", width=64, step=1).values
    slope = np.polyfit(np.log(small.depth.values), np.log(curve), 1)[0]
    assert exponent(small, "block_only", "f_delta")[0] == pytest.approx(slope, rel=1e-12)


@pytest.mark.parametrize("quantity", ["x_delta", "f_delta"])
def test_fitted_depth_exponents_separate_depth_mup_from_block_only(small, quantity):
    """Depth-µP predicts L^0, block-only L^{1/2}: each fit must lie within 1/4 (half the gap)
    of its own prediction, i.e. closer to it than to the other's."""
    mup, block = exponent(small, "depth_mup", quantity), exponent(small, "block_only", quantity)
    assert abs(mup[0] - 0.0) < 1 / 4 and abs(block[0] - 0.5) < 1 / 4, (mup, block)
    # and the intervals tell them apart: neither contains the other's prediction
    assert not mup[1] <= 0.5 <= mup[2] and not block[1] <= 0.0 <= block[2]


def test_fitted_h_exponents_lie_between_their_two_terms(small):
    """Δh = W_0 Δx + ΔW x: L^{1-α-γ} plus L^-γ, so its slope lies in [-1/2, 0] for Depth-µP
    and in [0, 1/2] for block-only (the fit's 95% interval meets that bracket); the intervals
    exclude the other parametrization's prediction."""
    mup, block = exponent(small, "depth_mup", "h_delta"), exponent(small, "block_only", "h_delta")
    assert mup[1] <= 0.0 and mup[2] >= -0.5 and not mup[1] <= 0.5 <= mup[2]
    assert block[1] <= 0.5 and block[2] >= 0.0 and not block[1] <= 0.0 <= block[2]


@pytest.mark.parametrize("quantity", DELTAS)
def test_width_exponents_are_consistent_with_flat(small, quantity):
    # µP in width: the 95% interval of every width slope contains 0.
    for name in ("depth_mup", "block_only"):
        _, low, high = exponent(small, name, quantity, axis="width")
        assert low <= 0.0 <= high


def test_figure(small, tmp_path):
    out = tmp_path / "cc.png"
    plot_coordcheck(small, out, quantity="delta", step=1, title="test")
    assert out.stat().st_size > 20_000
    with pytest.raises(ValueError, match="step must be one of"):
        plot_coordcheck(small, out, step=3)
    with pytest.raises(ValueError, match="quantity"):
        plot_coordcheck(small, out, quantity="size")


@pytest.mark.parametrize(
    "values", [[0.010, 0.012, 0.015], [1e-6, 1e-1], [2.0], [np.nan, 0.0, 3e-3, 4e-3]]
)
def test_y_axis_spans_at_least_three_decades(values):
    low, high = _y_range(np.asarray(values))
    positive = [v for v in values if v > 0]
    assert math.log10(high / low) >= MIN_DECADES
    assert low < min(positive) and max(positive) < high


# ------------------------------------------------------------------- bad input
@pytest.fixture
def no_training(monkeypatch):
    def computed(*args, **kwargs):
        pytest.fail("trained before checking the arguments")

    monkeypatch.setattr(cc, "train_finite_batch", computed)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(seeds=0), "seeds must be a positive integer"),
        (dict(widths=[]), "widths must be a non-empty"),
        (dict(depths=[4, 0]), "depths must be a positive integer"),
        (dict(record_steps=(5,)), "record_steps must be <="),
        (dict(fraction=0.3), "fraction must be one of"),
        (dict(params=[Parametrization.depth_mup()] * 2), "distinct names"),
        (dict(params=[]), "non-empty sequence"),
    ],
)
def test_bad_arguments_raise_before_training(change, message, no_training):
    arguments = dict(
        params=[Parametrization.depth_mup()], widths=[8], depths=[2], seeds=2, record_steps=(1,)
    )
    arguments.update(change)
    params = arguments.pop("params")
    task = Task.from_dataset("few_point", steps=2)
    with pytest.raises((ValueError, TypeError), match=message):
        cc.coordcheck(task, params, **arguments)


# ------------------------------------------------------------------- command line
SMALL = ["--widths", "16", "32", "--depths", "2", "4", "8", "--steps", "2"]
SMALL += ["--record-steps", "1", "--task", "few_point"]


def test_cli_writes_figure_table_and_json(tmp_path, capsys):
    png, nc = tmp_path / "cc.png", tmp_path / "cc.nc"
    assert main(["coordcheck", *SMALL, "--out", str(png), "--data", str(nc), "--json"]) == 0
    assert png.stat().st_size > 20_000
    out = json.loads(capsys.readouterr().out)
    assert out["parametrization"] == "depth_mup" and list(out["compare"]) == ["block_only"]
    assert np.asarray(out["x_delta"], dtype=float).shape == (2, 3, 2)
    rows = {(r["parametrization"], r["quantity"], r["axis"]): r for r in out["exponents"]}
    assert len(rows) == len(out["exponents"]) == 2 * len(cc.VARIABLES) * 2
    assert rows["block_only", "f_delta", "depth"]["predicted"] == 0.5
    assert rows["depth_mup", "f_delta", "depth"]["predicted"] == 0.0
    with xr.open_dataset(nc) as saved:
        assert list(saved.parametrization.values) == ["depth_mup", "block_only"]
        row = rows["block_only", "f_delta", "depth"]
        value = saved.exponent.sel(parametrization="block_only", quantity="f_delta", axis="depth")
        assert float(value.sel(step=1)) == pytest.approx(row["exponent"])


def test_cli_parametrizations_are_chosen_by_flags(tmp_path, capsys):
    png = str(tmp_path / "cc.png")
    argv = ["coordcheck", *SMALL, "--seeds", "2", "--out", png, "--json"]
    assert main([*argv, "--param", "ode", "--compare", "standard", "depth_mup"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["parametrization"] == "ode" and list(out["compare"]) == ["standard", "depth_mup"]
    standard = [r for r in out["exponents"] if r["parametrization"] == "standard"]
    assert all(r["predicted"] is None for r in standard if r["axis"] == "depth")
    assert main([*argv, "--compare"]) == 0  # --param alone
    out = json.loads(capsys.readouterr().out)
    assert out["compare"] == {}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--show-step", "2"], "--show-step must be one of"),
        (["--record-steps", "3"], "--record-steps must be <="),
        (["--depth", "8"], "--depths"),
    ],
)
def test_cli_bad_flags_exit_2(extra, message, capsys, no_training, tmp_path):
    argv = ["coordcheck", *SMALL, "--out", str(tmp_path / "cc.png"), *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
