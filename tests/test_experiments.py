"""Each experiment runs at the tiny profile, plots, and returns claims with a valid source."""

import dataclasses
import importlib

import numpy as np
import pytest

from limitsim.experiments import EXPERIMENTS
from limitsim.experiments.profiles import PROFILES, ExperimentSizes, sizes_for
from limitsim.report import SOURCES

COORDS = {
    "phase_diagram": {"alpha", "alpha_plus_gamma"},
    "init_kernels": {"phi", "depth", "lam"},
    "scaling_exponents": {"alpha_gamma", "depth", "seed"},
    "transfer": {"optimizer", "param", "depth", "log2_eta", "seed"},
    "linear_rms": {"width", "depth", "step"},
    "block_depth": {"phi", "block_depth", "depth", "log2_eta", "seed"},
    "block_heatmap": {"depth", "log2_a", "log2_eta", "seed"},
    "convergence": {"phi", "width", "seed", "depth", "particle_depth", "step"},
    "diversity": {"parametrization", "depth", "seed", "step", "limit_depth", "limit_step"},
    "nonlinearity": {"phi", "depth", "log2_eta", "seed", "step", "theta"},
    "prenonlin": {"block", "depth", "log2_eta", "seed"},
    "multiplier": {"depth", "multiplier", "seed"},
    "stability": {"parametrization", "depth", "seed", "limit_depth", "limit_step", "step"},
    "linearization": {"alpha_gamma", "depth", "seed"},
    "limit_transfer": {"optimizer", "param", "depth", "log2_eta", "seed"},
}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_tiny_profile(name, tmp_path, tiny_experiment):
    module = importlib.import_module(f"limitsim.experiments.{name}")
    ds = tiny_experiment(name)
    assert COORDS[name] <= set(ds.coords)
    paths = module.plot(ds, tmp_path)
    assert paths and all(p.exists() for p in paths)
    claims = module.claims(ds)
    assert claims
    for claim in claims:
        assert claim.kind in SOURCES and claim.source.split(":", 1)[1].strip()
        assert claim.experiment == name and claim.quantity
        seeds = claim.estimate.seeds
        assert seeds is None or seeds >= 0


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_seeded_finite_experiments_use_eight_seeds(name):
    """The issue's floor: every claim on finite networks rests on at least 8 seeds (quick)."""
    for profile in ("quick", "standard", "paper"):
        sizes = sizes_for(profile, name)
        if "seeds" in sizes:
            assert int(sizes["seeds"]) >= 8, (profile, name)


def test_base_seed_gives_disjoint_seeds(tmp_path):
    from limitsim.experiments._common import Context, seed_axis

    zero = seed_axis(Context(tmp_path, seed=0), 8)
    one = seed_axis(Context(tmp_path, seed=1), 8)
    assert zero == list(range(8)) and not set(zero) & set(one)
    assert seed_axis(None, 3) == [0, 1, 2]
    with pytest.raises(ValueError, match="seeds"):
        seed_axis(None, 0)


def test_every_profile_covers_every_experiment():
    for profile in PROFILES:
        for name in EXPERIMENTS:
            sizes = sizes_for(profile, name)
            assert isinstance(sizes, ExperimentSizes) and dict(sizes)
    with pytest.raises(ValueError, match="valid profiles"):
        sizes_for("huge", "init_kernels")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_profiles_are_derived_frozen_sizes(name):
    """quick, standard and paper (never run in CI) are the tiny sizes with fields replaced."""
    module = importlib.import_module(f"limitsim.experiments.{name}")
    sizes = [sizes_for(profile, name) for profile in PROFILES]
    assert {type(s) for s in sizes} == {module.Sizes}
    assert all(set(s) == set(sizes[0]) for s in sizes)
    quick = sizes_for("quick", name)
    field = next(iter(quick))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(quick, field, None)
    assert quick[field] == getattr(quick, field)


def test_sizes_validate_seeds():
    from limitsim.experiments import transfer

    with pytest.raises(ValueError, match="seeds"):
        dataclasses.replace(transfer.QUICK, seeds=0)


def test_optimum_trend_on_known_optima():
    """Per-seed parabolas whose vertex moves by −0.5 per doubling: slope −0.5, no edges."""
    from limitsim.experiments._common import optimum_trend

    rng = np.random.default_rng(0)
    grid = np.arange(-3.0, 2.01, 0.5)
    depths = [8, 16, 32, 64]
    optima = np.array([0.5 - 0.5 * k for k in range(4)])
    seeds = 8
    shifts = rng.normal(0.0, 0.1, size=seeds)  # per-seed offset shared by its depths
    losses = (grid[None, :, None] - optima[:, None, None] - shifts[None, None, :]) ** 2
    trend = optimum_trend(grid, losses + 1e-3 * rng.standard_normal(losses.shape), depths)
    assert trend.slope.seeds == seeds and trend.edge_fraction == 0.0
    assert trend.slope.low < -0.5 < trend.slope.high and trend.slope.high - trend.slope.low < 0.05
    assert trend.undecided("η", depths) == ""


def test_optimum_trend_flags_grid_edges():
    from limitsim.experiments._common import optimum_trend

    grid = np.arange(0.0, 3.01, 0.5)
    losses = np.stack([(grid - 3.5) ** 2, (grid - 1.0) ** 2])[:, :, None].repeat(4, axis=2)
    trend = optimum_trend(grid, losses, [8, 16])
    assert trend.edge_fraction == 0.5
    assert "grid's edge" in trend.undecided("η", [8, 16])
