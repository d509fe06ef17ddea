"""classify() against Claims 7.1–7.6 on a grid of (α, γ)."""

import itertools

import numpy as np
import pytest

from limitsim import classify

GRID = [x / 8 for x in range(-4, 17)]  # -0.5 .. 2 in steps of 1/8


def expected(alpha, gamma):
    """The claims, written directly from tp6-notes §2.2 (independent of the exponents)."""
    stable_init = alpha >= 0.5  # 7.1
    line = np.isclose(alpha + gamma, 1.0)
    stable_training = stable_init and alpha + gamma >= 1 - 1e-12  # 7.2
    nontrivial = stable_init and alpha + gamma <= 1 + 1e-12
    good = stable_training and nontrivial
    faithful = good and alpha <= 1  # 7.3
    kappa = None if not good else (0.5 if alpha == 0.5 else 0.0)  # 7.4, 7.5
    linearization = good and 0.5 <= alpha < 1  # 7.6
    assert good == (stable_init and line)
    return dict(
        stable_init=stable_init,
        stable_training=stable_training,
        nontrivial=nontrivial,
        faithful=faithful,
        feature_learning=faithful,
        diversity_exponent=kappa,
        redundant=kappa == 0.0,
        layerwise_linearization=linearization,
    )


@pytest.mark.parametrize("alpha, gamma", list(itertools.product(GRID, GRID)))
def test_grid_matches_claims(alpha, gamma):
    c = classify(alpha, gamma)
    for field, value in expected(alpha, gamma).items():
        assert getattr(c, field) == value, (field, alpha, gamma)


def test_regions_and_uniqueness_of_depth_mup():
    names = {(a, g): classify(a, g).region for a, g in itertools.product(GRID, GRID)}
    assert names[(0.5, 0.5)] == "Depth-muP"
    assert [k for k, v in names.items() if v == "Depth-muP"] == [(0.5, 0.5)]  # Claim 7.5
    assert names[(1.0, 0.0)] == "redundant"
    assert names[(0.0, 0.0)] == "unstable at initialization"
    assert names[(0.5, 0.0)] == "unstable during training"
    assert names[(1.0, 1.0)] == "trivial"
    assert names[(1.5, -0.5)] == "unfaithful"
    assert str(classify(0.5, 0.5)) == "(alpha, gamma) = (0.5, 0.5): Depth-muP (kappa 0.5)"


def test_float_boundaries():
    c = classify(1 / 3 + 1 / 6, 1 - (1 / 3 + 1 / 6))
    assert c.region == "Depth-muP"
    assert classify(0.7, 0.3).region == "redundant"


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_bad_input(bad):
    with pytest.raises(ValueError, match="alpha"):
        classify(bad, 0.5)
    with pytest.raises(TypeError, match="gamma"):
        classify(0.5, "half")
