"""The ``limitsim`` command line, one section per command.

Every test that drives the command line lives here: through :func:`limitsim.cli.main` (in
process), through a command's own parser (``sweep_command``: exceptions are not turned into
exit codes) or as ``python -m limitsim.cli`` in a child process (``run_limitsim``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import sweep_funcs
import xarray as xr

import limitsim.commands
import limitsim.figures
from limitsim import Grid, open_store, register_point_function, run_sweep
from limitsim.cli import COMMANDS, build_parser, main
from limitsim.commands import sweep as sweep_commands
from limitsim.commands._output import print_json
from limitsim.experiments import EXPERIMENTS
from limitsim.experiments.profiles import sizes_for
from limitsim.sweeps.spec import (
    PRESETS,
    SweepSpec,
    get_point_function,
    load_spec,
    point_functions,
)
from tests.helpers import flip_byte, ledger_offsets

ROOT = Path(__file__).resolve().parent.parent
SWEEP_GRID = Grid(
    axes={"x": list(range(6)), "z": [0.5, 2.0]}, filters=["x * z < 9"], fixed={"k": 1}
)
STORE_GRID = Grid(axes={"x": list(range(8))})  # the grid of the `pristine` store (conftest)


# ------------------------------------------------------------------------------ shared helpers
def run_limitsim(args, cwd, *, timeout=60):
    """``python -m limitsim.cli ARGS`` in a child process: (CompletedProcess, seconds)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), LIMITSIM_CACHE_DIR=str(cwd / "cache"))
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "limitsim.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return out, time.perf_counter() - started


def sweep(*argv: str) -> int:
    """``limitsim sweep ARGV`` through :func:`limitsim.cli.main`."""
    return main(["sweep", *argv])


def sweep_command(*argv: str) -> int:
    """``limitsim sweep ARGV`` through the command's own parser: errors raise."""
    parser = argparse.ArgumentParser()
    sweep_commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sweep", *argv])
    return int(args.func(args))


# ------------------------------------------------------------------------------ every command
def test_help_everywhere(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
    assert "classify" in capsys.readouterr().out


def test_console_script_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "limitsim.cli", "classify", "--alpha", "1", "--gamma", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "trivial" in out.stdout
    assert build_parser().prog == "limitsim"


def _forbid(monkeypatch, *targets):
    """Make the computation of a command fail the test if it starts."""

    def computed(*args, **kwargs):
        pytest.fail("the command computed before checking its output path")

    for module, name in targets:
        monkeypatch.setattr(module, name, computed)


@pytest.fixture
def no_computation(monkeypatch):
    module = importlib.import_module  # limitsim.linear_limit is also a function's name
    # limitsim.particles.depth binds simulate_limit when imported: imported first, it keeps
    # the real one
    module("limitsim.particles.depth")
    _forbid(
        monkeypatch,
        (module("limitsim.commands.train"), "train_finite"),
        (module("limitsim.commands.coordcheck"), "train_finite_batch"),
        (module("limitsim.finite.train"), "train_finite_batch"),
        (module("limitsim.particles.simulate"), "simulate_limit"),
        (module("limitsim.linear.limit"), "linear_limit"),
        (module("limitsim.figures"), "make_figures"),
    )


WRITERS = [  # (command and options, the option that names an output path, file name)
    (["train"], "--out", "run.nc"),
    (["simulate"], "--out", "run.nc"),
    (["coordcheck"], "--out", "check.png"),
    (["coordcheck"], "--data", "table.nc"),
    (["compare"], "--plot", "convergence.png"),
    (["figures"], "--out", "figures"),
]


@pytest.mark.parametrize(("command", "option", "name"), WRITERS)
@pytest.mark.parametrize("where", ["under a file", "read-only", "a directory"])
def test_unwritable_outputs_fail_before_any_work(
    command, option, name, where, tmp_path, capsys, no_computation
):
    blocker = tmp_path / "file"
    blocker.write_text("")
    if where == "under a file":
        path, reason = blocker / "new" / name, "is a file, not a directory"
    elif where == "read-only":  # root writes anywhere but in /proc
        path, reason = Path("/proc") / "limitsim-test" / name, "cannot write in directory"
        if not Path("/proc/self").exists():
            pytest.skip("no /proc on this system")
    elif command == ["figures"]:  # figures writes a directory: a file is refused
        path, reason = blocker, "is a file, not a directory"
    else:
        path, reason = tmp_path, "is a directory; give a file name"
    assert main([*command, option, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"limitsim {command[0]}: error: {option} '{path}'") and reason in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in a read-only directory")
def test_read_only_directory_is_refused(tmp_path, capsys, no_computation):
    tmp_path.chmod(0o500)
    try:
        assert main(["train", "--out", str(tmp_path / "run.nc")]) == 2
    finally:
        tmp_path.chmod(0o700)
    assert "cannot write in directory" in capsys.readouterr().err


def test_plot_formats_are_checked_before_any_work(tmp_path, capsys, no_computation):
    assert main(["compare", "--plot", str(tmp_path / "plot.xyz")]) == 2
    assert "matplotlib cannot write '.xyz' files; use one of" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--seed", "-1"], "--seed must be a non-negative integer, got -1"),
        (["figures", "--workers", "0"], "--workers must be a positive integer, got 0"),
        (["simulate", "--depth-limit", "8", "4", "16"], "depths must be >= 3 increasing"),
    ],
)
def test_bad_options_fail_before_any_work(argv, message, tmp_path, capsys, no_computation):
    assert main([*argv, *(["--out", str(tmp_path)] if argv[0] == "figures" else [])]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (ConnectionError("scheduler gone"), 2, "limitsim classify: error: scheduler gone"),
        (PermissionError(13, "Permission denied", "x.nc"), 2, "Permission denied: 'x.nc'"),
        (MemoryError("Unable to allocate 3 EiB"), 2, "out of memory (Unable to allocate 3 EiB)"),
        (KeyboardInterrupt(), 130, "limitsim classify: interrupted"),
    ],
)
def test_environment_errors_are_one_line(error, code, message, monkeypatch, capsys):
    import limitsim.commands.classify

    def fail(args):
        raise error

    monkeypatch.setattr(limitsim.commands.classify, "run", fail)
    assert main(["classify", "--alpha", "1", "--gamma", "1"]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bugs_keep_their_traceback(monkeypatch):
    import limitsim.commands.classify

    def bug(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(limitsim.commands.classify, "run", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["classify", "--alpha", "1", "--gamma", "1"])


# -------------------------------------------------------------------------------- strict JSON
def strict_json(text):
    """json.loads that refuses NaN and Infinity (as strict parsers do)."""

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_json_writes_null_for_nan_and_infinity(capsys):
    print_json({"a": np.array([1.0, np.nan, np.inf]), "b": (np.float32(-np.inf), 2), "c": None})
    assert strict_json(capsys.readouterr().out) == {
        "a": [1.0, None, None],
        "b": [None, 2],
        "c": None,
    }


def test_every_json_option_uses_the_strict_encoder():
    """No command prints JSON but through print_json."""
    commands = Path(limitsim.commands.__file__).parent
    for path in commands.glob("*.py"):
        if path.name != "_output.py":
            assert "json.dumps" not in path.read_text(), path.name


# ----------------------------------------------------------------------------------- classify
def test_classify(capsys):
    assert main(["classify", "--alpha", "0.5", "--gamma", "0.5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["region"] == "Depth-muP" and out["diversity_exponent"] == 0.5
    assert main(["classify", "--alpha", "1", "--gamma", "0"]) == 0
    assert "redundant" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ kernels
def test_kernels_json(capsys):
    assert main(["kernels", "--phi", "relu", "--depth", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["K_L"]) == 2 and "K_limit" in out


def test_bad_input_is_a_clear_error(capsys):
    assert main(["kernels", "--phi", "rellu", "--depth", "8"]) == 2
    assert "valid names" in capsys.readouterr().err
    assert main(["kernels", "--depth", "0"]) == 2
    assert "depth" in capsys.readouterr().err


def test_cli_huge_depth_is_refused_in_seconds(tmp_path):
    out, _ = run_limitsim(["kernels", "--depth", "100000000", "--json"], tmp_path)
    assert out.returncode == 2 and "more than 1000000 blocks" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "payload",
    [
        "__import__('os').system('touch pwned') + x",
        'x#"""; import os; os.system("touch pwned")#',
        "exp(x).__class__.__init__.__globals__['os'].system('touch pwned')",
    ],
    ids=["import", "docstring-escape", "attribute-chain"],
)
def test_cli_refuses_payloads(tmp_path, payload):
    out, _ = run_limitsim(["kernels", "--depth", "2", "--json", "--phi", payload], tmp_path)
    assert out.returncode == 2 and "limitsim kernels: error:" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("spec", ["log(x)", "exp(x**2)", "zoo*x", "oo*x", "1/x", "[x]"])
def test_cli_former_hangs_end_in_seconds(tmp_path, spec):
    out, elapsed = run_limitsim(["kernels", "--depth", "4", "--json", "--phi", spec], tmp_path)
    assert out.returncode == 2 and "limitsim kernels: error:" in out.stderr
    assert "Traceback" not in out.stderr
    assert elapsed < 30  # interpreter start and imports included


# -------------------------------------------------------------------------------------- train
def test_cli_train_json_and_netcdf(tmp_path, capsys):
    out = tmp_path / "run.nc"
    code = main(
        [
            "train",
            "--depth",
            "4",
            "--width",
            "16",
            "--phi",
            "abs",
            "--eta",
            "0.5",
            "--task",
            "digits",
            "--steps",
            "12",
            "--batch-size",
            "8",
            "--json",
            "--out",
            str(out),
            "--record",
            "0",
            "12",
        ]
    )
    assert code == 0
    info = json.loads(capsys.readouterr().out)
    assert info["config"]["phi"] == "abs" and info["steps"] == 12 and not info["diverged"]
    assert info["final_loss"] < info["initial_loss"] + 1.0
    ds = xr.open_dataset(out)
    assert ds.loss.shape == (12,) and ds.x_layers.shape == (2, 5, 5)
    assert ds.attrs["config_depth"] == 4
    ds.close()
    assert main(["train", "--task", "cifar10", "--steps", "2"]) == 2
    assert "--data-path" in capsys.readouterr().err


def test_missing_output_directories_are_created(tmp_path, capsys):
    out = tmp_path / "new" / "dir" / "run.nc"
    args = ["train", "--depth", "2", "--width", "8", "--steps", "3", "--batch-size", "4"]
    assert main([*args, "--task", "few_point", "--out", str(out), "--json"]) == 0
    assert out.exists() and strict_json(capsys.readouterr().out)["out"] == str(out)


def test_cross_entropy_on_regression_targets_is_refused(capsys):
    assert main(["train", "--task", "few_point", "--loss", "xent", "--steps", "3"]) == 2
    assert "regression targets" in capsys.readouterr().err


# --------------------------------------------------------------------------------- coordcheck
def test_cli_coordcheck_plot(tmp_path, capsys):
    png = tmp_path / "cc.png"
    code = main(
        [
            "coordcheck",
            "--widths",
            "16",
            "32",
            "--depths",
            "4",
            "8",
            "--steps",
            "3",
            "--record-steps",
            "1",
            "3",
            "--seeds",
            "2",
            "--task",
            "few_point",
            "--out",
            str(png),
            "--json",
        ]
    )
    assert code == 0 and png.stat().st_size > 10_000
    table = json.loads(capsys.readouterr().out)
    assert table["width"] == [16, 32] and table["step"] == [0, 1, 3]
    assert np.asarray(table["x_delta"], dtype=float).shape == (2, 2, 3)


def test_finite_networks_larger_than_memory_are_refused_before_any_work(capsys, no_computation):
    assert main(["coordcheck", "--widths", "64", "1000000", "--depths", "8"]) == 2
    assert "GiB of weights and activations, more than this machine" in capsys.readouterr().err


# ----------------------------------------------------------------------- simulate and compare
def test_cli_simulate_and_compare(capsys, tmp_path):
    small = ["--steps", "2", "--batch-size", "2", "--depth", "2", "--quiet"]
    assert main(["simulate", *small, "--n-particles", "512", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["route"] == "particles" and len(out["loss"]) == 2
    assert (
        main(
            [
                "simulate",
                *small[:4],
                "--depth-limit",
                "2",
                "4",
                "8",
                "--n-particles",
                "512",
                "--quiet",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["route"] == "depth_limit"
    assert main(["simulate", *small, "--n-particles", "16"]) == 2
    assert "n_particles ≥" in capsys.readouterr().err
    plot = tmp_path / "convergence.png"
    args = [
        "compare",
        *small[:-1],
        "--phi",
        "linear",
        "--widths",
        "32",
        "64",
        "--seeds",
        "2",
        "--plot",
        str(plot),
        "--json",
    ]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["route"] == "linear_limit" and len(out["rms_error"]) == 2 and plot.exists()


def test_json_of_a_diverged_run_is_strict(capsys):
    """The limit diverges after step 0: its losses are NaN, printed as null."""
    args = ["compare", "--phi", "linear", "--depth", "2", "--widths", "8", "16", "--seeds", "2"]
    assert main([*args, "--steps", "3", "--eta", "1e9", "--json"]) == 0
    out = strict_json(capsys.readouterr().out)
    assert out["limit_loss"][0] > 0 and out["limit_loss"][1:] == [None, None]


# ------------------------------------------------------------------------------------ figures
@pytest.fixture
def session_experiments(monkeypatch, tiny_experiment):
    """Each experiment's ``run`` at the tiny sizes and seed 0 returns the session's dataset
    (conftest ``tiny_experiment``), so ``limitsim figures --profile tiny`` writes, reuses and
    reports it without running the experiment a second time.  Other sizes or seeds run; their
    names are listed in the returned list."""
    ran = []

    def shared(name, run):
        def run_or_reuse(sizes, context=None):
            if sizes == sizes_for("tiny", name) and (context is None or context.seed == 0):
                return tiny_experiment(name)
            ran.append(name)
            return run(sizes, context)

        return run_or_reuse

    for name in EXPERIMENTS:
        tiny_experiment(name)  # run (once per session) before `run` is replaced
        module = importlib.import_module(f"limitsim.experiments.{name}")
        monkeypatch.setattr(module, "run", shared(name, module.run))
    return ran


def test_figures_tiny(tmp_path, capsys, session_experiments):
    assert main(["figures", "--profile", "tiny", "--out", str(tmp_path)]) == 0
    assert session_experiments == []  # every experiment's dataset is the session's
    assert (tmp_path / "report.md").exists()
    assert (tmp_path / "phase_diagram.png").exists() and (tmp_path / "init_kernels.pdf").exists()
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# limitsim claims report (profile `tiny`, seed 0)")
    assert report.splitlines()[2].startswith("Paper claims: ")
    # resumable: a second run reuses the stored dataset (of one experiment: drawing every
    # figure again is most of this test's time; tests/test_figures.py checks the reuse rules)
    assert (
        main(["figures", "--profile", "tiny", "--out", str(tmp_path), "--only", "multiplier"]) == 0
    )
    assert "multiplier: reusing" in capsys.readouterr().out


def test_figures_seed_is_recorded_and_not_reused(tmp_path, capsys, tiny_experiment):
    args = ["figures", "--profile", "tiny", "--out", str(tmp_path), "--only", "multiplier"]
    assert main([*args, "--seed", "0"]) == 0
    # a run through figures (sweep store, worker processes) at seed 0 gives the session's
    # in-process dataset: what `session_experiments` relies on
    with xr.open_dataset(tmp_path / "data" / "multiplier.nc") as ds:
        xr.testing.assert_equal(ds.load(), tiny_experiment("multiplier"))
    assert main([*args, "--seed", "1"]) == 0
    assert "reusing" not in capsys.readouterr().out  # another seed is another experiment
    assert "(profile `tiny`, seed 1)" in (tmp_path / "report.md").read_text()
    with xr.open_dataset(tmp_path / "data" / "multiplier.nc") as ds:
        assert ds.attrs["seed"] == 1 and list(ds.seed.values) == [1000, 1001]
    assert main([*args, "--seed", "-1"]) == 2
    assert "seed" in capsys.readouterr().err


def test_unreachable_scheduler_fails_fast_before_any_work(tmp_path, capsys, monkeypatch):
    import limitsim.commands.figures

    monkeypatch.setattr(limitsim.commands.figures, "CONNECT_TIMEOUT", 1.0)
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _forbid(monkeypatch, (limitsim.figures, "make_figures"))
    start = time.perf_counter()
    args = ["figures", "--out", str(tmp_path), "--scheduler", f"127.0.0.1:{port}"]
    assert main(args) == 2
    assert time.perf_counter() - start < 10
    err = capsys.readouterr().err
    assert err.startswith(
        f"limitsim figures: error: cannot connect to the dask scheduler at "
        f"'tcp://127.0.0.1:{port}' within 1 s"
    )
    assert main(["figures", "--out", str(tmp_path), "--scheduler", "tcp://[::1"]) == 2
    assert "is not a valid address" in capsys.readouterr().err


def test_reachable_scheduler_passes_the_check():
    from distributed import LocalCluster

    from limitsim.commands.figures import check_scheduler

    with LocalCluster(  # dashboard on a free port: 8787 may be another process's
        n_workers=0, processes=False, host="127.0.0.1", protocol="tcp", dashboard_address=":0"
    ) as cluster:
        assert check_scheduler(cluster.scheduler_address, 5.0) is None


# ---------------------------------------------- sweep run, status, export, presets, functions
SPEC = """
description = "test sweep"
function = "flaky"
batch_axes = []
filters = ["x != 6"]

[axes]
x = [0, 1, 2, 3, 4, 5, 6]

[fixed]
k = 1
"""


def test_spec_file_and_cli_run_status_export(tmp_path, capsys, registry):
    register_point_function("flaky", sweep_funcs.flaky)
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(SPEC)
    spec = load_spec(spec_path)
    assert spec.grid.points()[-1] == {"x": 5, "k": 1}
    store = tmp_path / "s"
    assert sweep_command("run", str(spec_path), "--store", str(store), "--executor", "inline") == 1
    assert "4 done, 1 diverged, 1 failed, 0 pending" in capsys.readouterr().out
    assert sweep_command("status", str(store)) == 0
    out = capsys.readouterr().out
    assert "4 done, 1 diverged, 1 failed, 0 pending" in out
    assert "integrity  ok: 6 rows, 0 missing" in out
    assert "{'x': 3, 'k': 1}: ValueError: bad point x=3" in out
    assert (
        sweep_command("export", str(store), "--format", "netcdf", "--out", str(tmp_path / "s.nc"))
        == 0
    )
    with open_store(store, readonly=True) as st:
        expected = st.to_dataset()
    with xr.open_dataset(tmp_path / "s.nc") as exported:
        xr.testing.assert_identical(exported.load(), expected)
    assert sweep_command("presets") == 0
    assert "demo" in capsys.readouterr().out


def test_export_refuses_the_store_and_checks_its_output_first(tmp_path, capsys):
    store = tmp_path / "s"
    run_sweep(sweep_funcs.noisy, SWEEP_GRID, store=store, executor="inline")
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    (tmp_path / "link").symlink_to(store)
    for out in (store / "ledger.sqlite", store, store / "points" / "x.nc", tmp_path / "link/a.nc"):
        assert main(["sweep", "export", str(store), "--out", str(out)]) == 2
        assert "is inside the store" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before
    # output paths are checked before the store is read: here there is no store at all
    for out, match in ((tmp_path / "nodir" / "a.nc", "does not exist"), (tmp_path, "directory")):
        assert main(["sweep", "export", str(tmp_path / "none"), "--out", str(out)]) == 2
        assert match in capsys.readouterr().err


def test_run_exits_nonzero_while_points_are_pending(tmp_path, capsys, monkeypatch, registry):
    from limitsim.sweeps.store import Store

    register_point_function("noisy", sweep_funcs.noisy)
    spec = tmp_path / "spec.toml"
    spec.write_text('function = "noisy"\n[axes]\nx = [0, 1, 2]\n')
    argv = ["sweep", "run", str(spec), "--store", str(tmp_path / "s"), "--executor", "inline"]
    record = Store.record
    with monkeypatch.context() as m:  # the result of x = 1 never reaches the ledger
        m.setattr(Store, "record", lambda st, r: r.config["x"] != 1 and record(st, r))
        assert main(argv) == 1
    assert "2 done, 0 diverged, 0 failed, 1 pending" in capsys.readouterr().out
    assert main(argv) == 0
    assert "3 done, 0 diverged, 0 failed, 0 pending" in capsys.readouterr().out


def test_cli_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="exactly one"):
        sweep_command("run", "--store", str(tmp_path / "s"))
    with pytest.raises(ValueError, match="unknown preset"):
        sweep_command("run", "--preset", "nope", "--store", str(tmp_path / "s"))
    assert sweep_command("status", str(tmp_path / "missing")) == 2
    assert "no sweep store" in capsys.readouterr().err


def test_demo_preset(tmp_path, capsys):
    spec = PRESETS["demo"]
    assert isinstance(spec, SweepSpec) and spec.batch_axes == ("log2_eta", "seed")
    store = tmp_path / "demo"
    try:
        spec.check_requirements()
    except ImportError:
        code = sweep_command(
            "run", "--preset", "demo", "--store", str(store), "--executor", "inline"
        )
        assert code == 2
        assert "needs limitsim.finite.train.train_finite_batch" in capsys.readouterr().err
        assert not store.exists()
        return
    ds = spec.run(store=store, executor="inline")
    assert set(np.unique(ds.status.values)) == {"done", "diverged"}  # large rates diverge
    assert ds.loss.sizes["loss_dim0"] == spec.grid.fixed["steps"]


# -------------------------------------------------------------- sweep: spec files run no code
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
        assert sweep("run", "evil.toml", "--store", "s", "--executor", executor) == 2
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
    assert sweep("run", str(path), "--store", str(tmp_path / "s")) == 2
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
    assert sweep(*args) == 2 and not (tmp_path / "s").exists()
    assert sweep(*args, "--allow-code") == 0
    assert "2 done, 0 diverged, 0 failed, 0 pending" in capsys.readouterr().out


def test_registered_functions_run_from_spec_files(tmp_path, registry, capsys):
    assert register_point_function("noisy", sweep_funcs.noisy) is sweep_funcs.noisy

    decorator = register_point_function("batch")  # the decorator form
    assert decorator(sweep_funcs.noisy_batch) is sweep_funcs.noisy_batch
    assert point_functions()["noisy"] == "sweep_funcs:noisy"
    # by its name or by its dotted name
    assert get_point_function("sweep_funcs:noisy") is sweep_funcs.noisy
    path = tmp_path / "spec.toml"
    path.write_text('function = "noisy"\n[axes]\nx = [0, 1, 2]\n')
    assert sweep("run", str(path), "--store", str(tmp_path / "s"), "--executor", "inline") == 0
    assert "3 done" in capsys.readouterr().out
    assert sweep("functions") == 0
    assert "noisy (sweep_funcs:noisy)" in capsys.readouterr().out.splitlines()


# ---------------------------------------------------------------------- sweep: damaged stores
def _damage(store: Path, how: str) -> set[str]:
    """Damage the result files of x = 1 (and x = 2 when swapped); return the damaged keys."""
    with open_store(store, readonly=True) as st:
        rows = {r["config"]["x"]: r for r in st.rows()}
    one, two = store / rows[1]["file"], store / rows[2]["file"]
    if how == "swapped":
        a, b = one.read_bytes(), two.read_bytes()
        one.write_bytes(b)
        two.write_bytes(a)
        return {rows[1]["key"], rows[2]["key"]}
    if how == "truncated":
        one.write_bytes(one.read_bytes()[: one.stat().st_size // 2])
    elif how == "bit-flipped":  # in the value of y = 2.0
        flip_byte(one, one.read_bytes().index(np.float64(2.0).tobytes()))
        with np.load(one) as npz, pytest.raises(zipfile.BadZipFile):
            npz["y"]  # what run and export crashed with before the checksum was verified
    else:
        one.unlink()
    return {rows[1]["key"]}


@pytest.mark.parametrize("how", ["swapped", "truncated", "bit-flipped", "missing"])
def test_damaged_result_files_are_refused_quarantined_and_recomputed(tmp_path, how, capsys):
    from limitsim.sweeps.store import DamagedResultError, DamagedResultWarning

    store = tmp_path / "s"
    reference = run_sweep(sweep_funcs.noisy, STORE_GRID, store=store, executor="inline")
    damaged = _damage(store, how)
    with open_store(store, readonly=True) as st:  # no load returns the damaged data
        for key in damaged:
            with pytest.raises(DamagedResultError, match="No damaged result was used"):
                st.load(key)
        with pytest.raises(DamagedResultError) as info:
            st.to_dataset()
        assert set(info.value.damaged) == damaged
    out = tmp_path / "export.nc"
    assert main(["sweep", "export", str(store), "--out", str(out)]) == 2
    assert f"{len(damaged)} damaged result file(s)" in capsys.readouterr().err
    assert not out.exists()
    assert main(["sweep", "status", str(store), "--deep"]) == 1
    assert "integrity  DAMAGED" in capsys.readouterr().out
    # the next run reports the damage, moves the files aside and recomputes the points
    with pytest.warns(DamagedResultWarning, match=f"{len(damaged)} damaged result file"):
        resumed = run_sweep(sweep_funcs.noisy, STORE_GRID, store=store, executor="inline")
    xr.testing.assert_identical(resumed, reference)
    with open_store(store, readonly=True) as st:
        report = st.check_integrity(deep=True)
        assert all(r["attempts"] == 1 for r in st.rows()) and report.rows == 8
    assert report.ok and len(report.quarantined) == (0 if how == "missing" else len(damaged))
    assert main(["sweep", "status", str(store)]) == 0
    if how != "missing":
        assert f"quarantine {len(damaged)} damaged result file(s)" in capsys.readouterr().out


def _cli_outcomes(store: Path, spec: Path, out: Path, capsys) -> dict[str, tuple[int, str]]:
    outcomes = {}
    for action, argv in (
        ("status", ["status", str(store)]),
        ("export", ["export", str(store), "--out", str(out)]),
        ("run", ["run", str(spec), "--store", str(store), "--executor", "inline", "--allow-code"]),
    ):
        code = main(["sweep", *argv])
        captured = capsys.readouterr()
        outcomes[action] = (code, captured.out + captured.err)
    return outcomes


def test_a_flipped_ledger_byte_is_a_clear_error_never_wrong_data(pristine, tmp_path, capsys):
    """Every flipped byte: a clear error naming the store and the recovery, or correct data."""
    root, reference = pristine
    ledger = (root / "s" / "ledger.sqlite").read_bytes()
    named = ledger_offsets(ledger)
    sampled = np.random.default_rng(7).choice(len(ledger), size=16, replace=False)
    offsets = {**named, **{f"random {int(o)}": int(o) for o in sampled}}
    for label, offset in offsets.items():
        store = tmp_path / label.replace(" ", "_") / "s"
        shutil.copytree(root / "s", store)
        flip_byte(store / "ledger.sqlite", offset)
        out = store.parent / "export.nc"
        outcomes = _cli_outcomes(store, root / "spec.toml", out, capsys)
        for action, (code, text) in outcomes.items():
            if code == 2:
                assert "Traceback" not in text
                if "ledger" in text:
                    assert f"store {store}" in text and "move the ledger aside" in text, label
            elif action == "export":
                assert code == 0, (label, text)
                with xr.open_dataset(out) as exported:
                    xr.testing.assert_identical(exported.load(), reference)
            elif action == "run":
                assert code == 0 and "8 done, 0 diverged, 0 failed, 0 pending" in text, label
        if label == "write version":
            assert outcomes["run"][0] == 2, outcomes
        if label in ("row key", "index key", "row status", "magic"):
            assert all(code == 2 for code, _ in outcomes.values()), (label, outcomes)
