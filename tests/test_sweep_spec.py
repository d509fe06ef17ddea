"""Sweep specs are data: point functions come from a registry; code runs only with allow_code."""

from __future__ import annotations

import pytest
import sweep_funcs

from limitsim import Grid, register_point_function
from limitsim.sweeps.spec import (
    SweepSpec,
    get_point_function,
    point_functions,
)
from limitsim.sweeps.sweep import resolve_function


def test_a_spec_built_in_python_is_checked_when_run(tmp_path):
    spec = SweepSpec(function="planted_mod:f", grid=Grid(axes={"x": [1]}))
    with pytest.raises(ValueError, match="not a registered point function"):
        spec.run(store=tmp_path / "s")
    with pytest.raises(ValueError, match="requires entries must be dotted names"):
        SweepSpec(function="f", grid=Grid(axes={"x": [1]}), requires=("a b",)).check_code()
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("name", "function", "error", "match"),
    [
        ("my sweep", sweep_funcs.noisy, ValueError, "name must start with a letter"),
        ("", sweep_funcs.noisy, ValueError, "name must start with a letter"),
        ("f", lambda p: {}, TypeError, "lambdas and nested functions"),
        ("f", 3, TypeError, "must be callable"),
        ("limitsim.sweep_spec:demo_point", sweep_funcs.noisy, ValueError, "already registered"),
    ],
)
def test_bad_registrations(registry, name, function, error, match):
    with pytest.raises(error, match=match):
        register_point_function(name, function)


def test_a_name_keeps_its_function(registry):
    register_point_function("f", sweep_funcs.noisy)
    register_point_function("f", sweep_funcs.noisy)  # the same function again: allowed
    with pytest.raises(ValueError, match="'f' is already registered to sweep_funcs:noisy"):
        register_point_function("f", sweep_funcs.flaky)


def test_builtin_point_functions_import():
    builtins = point_functions()
    assert "limitsim.sweep_spec:demo_point" in builtins
    for name in builtins:
        function, dotted = resolve_function(get_point_function(name))
        assert dotted == name and callable(function)


def test_python_callers_may_still_name_any_function(tmp_path):
    """run_sweep's caller is code already: its names are imported (spec files are not)."""
    assert resolve_function("sweep_funcs:noisy") == (sweep_funcs.noisy, "sweep_funcs:noisy")
    with pytest.raises(ValueError, match="cannot be imported"):
        get_point_function("sweep_funcs:nope", allow_code=True)


def test_check_code_accepts_registered_names_with_or_without_allow_code(registry):
    register_point_function("my-sweep", sweep_funcs.noisy)
    grid = Grid(axes={"x": [1]})
    for function in ("my-sweep", "sweep_funcs:noisy", "limitsim.sweep_spec:demo_point"):
        for allow_code in (False, True):
            SweepSpec(function=function, grid=grid).check_code(allow_code=allow_code)
    with pytest.raises(ValueError, match="registered name or 'package\\.module:function'"):
        SweepSpec(function="os:system; rm", grid=grid).check_code(allow_code=True)
