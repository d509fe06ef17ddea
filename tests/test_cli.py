"""The ``limitsim`` command line (in process, through ``limitsim.cli.main``)."""

import importlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import limitsim.commands
import limitsim.figures
from limitsim.cli import COMMANDS, build_parser, main
from limitsim.commands._output import print_json


def test_help_everywhere(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
    assert "classify" in capsys.readouterr().out


def test_classify(capsys):
    assert main(["classify", "--alpha", "0.5", "--gamma", "0.5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["region"] == "Depth-muP" and out["diversity_exponent"] == 0.5
    assert main(["classify", "--alpha", "1", "--gamma", "0"]) == 0
    assert "redundant" in capsys.readouterr().out


def test_kernels_json(capsys):
    assert main(["kernels", "--phi", "relu", "--depth", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["K_L"]) == 2 and "K_limit" in out


def test_bad_input_is_a_clear_error(capsys):
    assert main(["kernels", "--phi", "rellu", "--depth", "8"]) == 2
    assert "valid names" in capsys.readouterr().err
    assert main(["kernels", "--depth", "0"]) == 2
    assert "depth" in capsys.readouterr().err


def test_figures_tiny(tmp_path, capsys):
    assert main(["figures", "--profile", "tiny", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report.md").exists()
    assert (tmp_path / "phase_diagram.png").exists() and (tmp_path / "init_kernels.pdf").exists()
    # resumable: a second run reuses the stored datasets
    assert main(["figures", "--profile", "tiny", "--out", str(tmp_path)]) == 0
    assert "reusing" in capsys.readouterr().out
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# limitsim claims report (profile `tiny`, seed 0)")
    assert report.splitlines()[2].startswith("Paper claims: ")


def test_figures_seed_is_recorded_and_not_reused(tmp_path, capsys):
    args = ["figures", "--profile", "tiny", "--out", str(tmp_path), "--only", "multiplier"]
    assert main([*args, "--seed", "0"]) == 0
    assert main([*args, "--seed", "1"]) == 0
    assert "reusing" not in capsys.readouterr().out  # another seed is another experiment
    assert "(profile `tiny`, seed 1)" in (tmp_path / "report.md").read_text()
    with xr.open_dataset(tmp_path / "data" / "multiplier.nc") as ds:
        assert ds.attrs["seed"] == 1 and list(ds.seed.values) == [1000, 1001]
    assert main([*args, "--seed", "-1"]) == 2
    assert "seed" in capsys.readouterr().err


def test_console_script_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "limitsim.cli", "classify", "--alpha", "1", "--gamma", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "trivial" in out.stdout
    assert build_parser().prog == "limitsim"


# ------------------------------------------------------------ outputs checked before the work
def _forbid(monkeypatch, *targets):
    """Make the computation of a command fail the test if it starts."""

    def computed(*args, **kwargs):
        pytest.fail("the command computed before checking its output path")

    for module, name in targets:
        monkeypatch.setattr(module, name, computed)


@pytest.fixture
def no_computation(monkeypatch):
    module = importlib.import_module  # limitsim.linear_limit is also a function's name
    _forbid(
        monkeypatch,
        (module("limitsim.commands.train"), "train_finite"),
        (module("limitsim.commands.coordcheck"), "train_finite_batch"),
        (module("limitsim.finite"), "train_finite_batch"),
        (module("limitsim.particles"), "simulate_limit"),
        (module("limitsim.linear_limit"), "linear_limit"),
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


def test_missing_output_directories_are_created(tmp_path, capsys):
    out = tmp_path / "new" / "dir" / "run.nc"
    args = ["train", "--depth", "2", "--width", "8", "--steps", "3", "--batch-size", "4"]
    assert main([*args, "--task", "few_point", "--out", str(out), "--json"]) == 0
    assert out.exists() and strict_json(capsys.readouterr().out)["out"] == str(out)


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


def test_json_of_a_diverged_run_is_strict(capsys):
    """The limit diverges after step 0: its losses are NaN, printed as null."""
    args = ["compare", "--phi", "linear", "--depth", "2", "--widths", "8", "16", "--seeds", "2"]
    assert main([*args, "--steps", "3", "--eta", "1e9", "--json"]) == 0
    out = strict_json(capsys.readouterr().out)
    assert out["limit_loss"][0] > 0 and out["limit_loss"][1:] == [None, None]


def test_every_json_option_uses_the_strict_encoder():
    """No command prints JSON but through print_json."""
    commands = Path(limitsim.commands.__file__).parent
    for path in commands.glob("*.py"):
        if path.name != "_output.py":
            assert "json.dumps" not in path.read_text(), path.name


# ------------------------------------------------------------------- errors, not tracebacks
def test_cross_entropy_on_regression_targets_is_refused(capsys):
    assert main(["train", "--task", "few_point", "--loss", "xent", "--steps", "3"]) == 2
    assert "regression targets" in capsys.readouterr().err


def test_finite_networks_larger_than_memory_are_refused_before_any_work(capsys, no_computation):
    assert main(["coordcheck", "--widths", "64", "1000000", "--depths", "8"]) == 2
    assert "GiB of weights and activations, more than this machine" in capsys.readouterr().err


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


# ------------------------------------------------------------------------ figures --scheduler
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

    with LocalCluster(
        n_workers=0, processes=False, host="127.0.0.1", protocol="tcp", dashboard_address=":0"
    ) as cluster:
        assert check_scheduler(cluster.scheduler_address, 5.0) is None
