"""Sweep specs are data: point functions come from a registry; code runs only with allow_code."""

from __future__ import annotations

import sys

import pytest
import sweep_funcs

from limitsim import Grid, register_point_function
from limitsim.cli import main
from limitsim.sweep import resolve_function
from limitsim.sweep_spec import (
    SweepSpec,
    get_point_function,
    load_spec,
    point_functions,
)

EXPLOIT = """
function = "subprocess:run"
[axes]
touch = [0]
[fixed]
pwned = 1
"""

IMPORTS_ON_LOAD = (
    "from pathlib import Path\nPath({marker!r}).write_text('ran')\ndef f(p):\n    return {{}}\n"
)


def cli(*argv: str) -> int:
    return main(["sweep", *argv])


@pytest.fixture
def registry(monkeypatch):
    """An empty registry of user point functions, restored after the test."""
    from limitsim import _sweep_registry

    monkeypatch.setattr(_sweep_registry, "_REGISTERED", {})


@pytest.fixture
def planted(tmp_path, monkeypatch):
    """An importable module ``planted_mod`` that writes the returned marker file when imported."""
    marker = tmp_path / "imported"
    (tmp_path / "planted_mod.py").write_text(IMPORTS_ON_LOAD.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("planted_mod", None)
    yield marker
    sys.modules.pop("planted_mod", None)


def test_the_subprocess_exploit_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.toml").write_text(EXPLOIT)
    for executor in ("inline", "processes"):
        assert cli("run", "evil.toml", "--store", "s", "--executor", executor) == 2
        err = capsys.readouterr().err
        assert "function 'subprocess:run' is not a registered point function" in err
        assert "--allow-code" in err and "runs code from this file" in err
    with pytest.raises(ValueError, match="not a registered point function"):
        load_spec(tmp_path / "evil.toml")
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ('function = "planted_mod:f"\n[axes]\nx = [1]\n', "function 'planted_mod:f'"),
        (
            'function = "limitsim.sweep_spec:demo_point"\nrequires = ["planted_mod.f"]\n'
            "[axes]\nx = [1]\n",
            "requires entry 'planted_mod.f' is outside limitsim",
        ),
    ],
)
def test_import_paths_and_requires_need_allow_code(tmp_path, planted, capsys, spec, field):
    path = tmp_path / "spec.toml"
    path.write_text(spec)
    with pytest.raises(ValueError, match=field):
        load_spec(path)
    assert cli("run", str(path), "--store", str(tmp_path / "s")) == 2
    assert field in capsys.readouterr().err
    assert not planted.exists() and not (tmp_path / "s").exists()
    # the opt-in imports the module the file names: its code runs
    load_spec(path, allow_code=True).check_requirements(allow_code=True)
    get_point_function("planted_mod:f", allow_code=True)
    assert planted.read_text() == "ran"


def test_allow_code_runs_an_importable_function(tmp_path, capsys):
    path = tmp_path / "spec.toml"
    path.write_text('function = "sweep_funcs:noisy"\n[axes]\nx = [0, 1]\n')
    args = ("run", str(path), "--store", str(tmp_path / "s"), "--executor", "inline")
    assert cli(*args) == 2 and not (tmp_path / "s").exists()
    assert cli(*args, "--allow-code") == 0
    assert "2 done, 0 diverged, 0 failed, 0 pending" in capsys.readouterr().out


def test_a_spec_built_in_python_is_checked_when_run(tmp_path):
    spec = SweepSpec(function="planted_mod:f", grid=Grid(axes={"x": [1]}))
    with pytest.raises(ValueError, match="not a registered point function"):
        spec.run(store=tmp_path / "s")
    with pytest.raises(ValueError, match="requires entries must be dotted names"):
        SweepSpec(function="f", grid=Grid(axes={"x": [1]}), requires=("a b",)).check_code()
    assert not (tmp_path / "s").exists()


def test_registered_functions_run_from_spec_files(tmp_path, registry, capsys):
    assert register_point_function("noisy", sweep_funcs.noisy) is sweep_funcs.noisy

    decorator = register_point_function("batch")  # the decorator form
    assert decorator(sweep_funcs.noisy_batch) is sweep_funcs.noisy_batch
    assert point_functions()["noisy"] == "sweep_funcs:noisy"
    # by its name or by its dotted name
    assert get_point_function("sweep_funcs:noisy") is sweep_funcs.noisy
    path = tmp_path / "spec.toml"
    path.write_text('function = "noisy"\n[axes]\nx = [0, 1, 2]\n')
    assert cli("run", str(path), "--store", str(tmp_path / "s"), "--executor", "inline") == 0
    assert "3 done" in capsys.readouterr().out
    assert cli("functions") == 0
    assert "noisy (sweep_funcs:noisy)" in capsys.readouterr().out.splitlines()


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
