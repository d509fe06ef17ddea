import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from limitsim import Parametrization
from limitsim.parametrization import PRESETS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_match_explicit_fields(name):
    alpha, gamma = PRESETS[name]
    preset = getattr(Parametrization, name)(a=2.0, eta=0.3, optimizer="adam", base_depth=8)
    explicit = Parametrization(
        alpha=alpha, gamma=gamma, a=2.0, eta=0.3, optimizer="adam", base_depth=8
    )
    assert preset == explicit
    assert preset.name == name


def test_scalings():
    p = Parametrization(alpha=0.5, gamma=0.25, a=2.0, eta=0.1, base_depth=4)
    assert p.branch_multiplier(16) == pytest.approx(2.0 * 4**-0.5)
    assert p.learning_rate(16) == pytest.approx(0.1 * 4**0.25)  # SGD: η (L/L0)^(α−γ)
    adam = dataclasses.replace(p, optimizer="adam")
    assert adam.learning_rate(16, width=100) == pytest.approx(0.1 * 4**-0.25 / 100)
    assert adam.gradient_scale(16, 100) == pytest.approx(100 * 4**0.5)
    # all parametrizations coincide at the base depth
    for name in PRESETS:
        q = Parametrization.preset(name, a=1.5, eta=0.2, base_depth=8)
        assert q.branch_multiplier(8) == 1.5 and q.learning_rate(8) == pytest.approx(0.2)


@given(st.floats(-2, 2), st.floats(-2, 2), st.floats(0.01, 10), st.floats(1e-4, 10))
def test_replace_round_trip(alpha, gamma, a, eta):
    p = Parametrization(alpha=alpha, gamma=gamma, a=a, eta=eta)
    assert dataclasses.replace(p) == p
    assert dataclasses.replace(p, alpha=0.5).alpha == 0.5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"a": 0.0}, "a .branch multiplier"),
        ({"eta": -1.0}, "eta"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of"),
        ({"base_depth": 0}, "base_depth"),
        ({"alpha": float("nan")}, "alpha must be finite"),
        ({"beta1": 1.0}, "beta1"),
    ],
)
def test_bad_fields(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Parametrization(**kwargs)


def test_bad_depth_and_preset():
    p = Parametrization.depth_mup()
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="depth"):
            p.branch_multiplier(bad)
    with pytest.raises(TypeError, match="depth"):
        p.branch_multiplier("8")
    with pytest.raises(ValueError, match="valid names"):
        Parametrization.preset("mup")
    with pytest.raises(ValueError, match="width is required"):
        Parametrization.depth_mup(optimizer="adam").learning_rate(8)
    with pytest.raises(TypeError, match="fixes alpha"):
        Parametrization.depth_mup(alpha=1.0)
