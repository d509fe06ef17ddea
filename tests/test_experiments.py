"""Each experiment runs at the tiny profile and returns a Dataset with the right coordinates."""

import importlib

import pytest
import xarray as xr

from limitsim.experiments import EXPERIMENTS
from limitsim.experiments.profiles import PROFILES, sizes_for

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
}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_tiny_profile(name, tmp_path):
    module = importlib.import_module(f"limitsim.experiments.{name}")
    ds = module.run(sizes_for("tiny", name))  # no context: a throw-away store, in process
    assert isinstance(ds, xr.Dataset)
    assert COORDS.get(name, set()) <= set(ds.coords)
    paths = module.plot(ds, tmp_path)
    assert all(p.exists() for p in paths)
    for claim in module.claims(ds):
        assert claim.verdict in ("reproduced", "not reproduced", "inconclusive")


def test_every_profile_covers_every_experiment():
    for profile in PROFILES:
        for name in EXPERIMENTS:
            assert isinstance(sizes_for(profile, name), dict)
    with pytest.raises(ValueError, match="valid profiles"):
        sizes_for("huge", "init_kernels")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_profiles_set_the_same_sizes(name):
    """quick and paper (never run in CI) set exactly the keys the tiny run exercises."""
    keys = {profile: set(sizes_for(profile, name)) for profile in PROFILES}
    assert keys["quick"] == keys["tiny"] == keys["paper"]
