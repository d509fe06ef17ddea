"""The ``limitsim`` command line (in process, through ``limitsim.cli.main``)."""

import json
import subprocess
import sys

import pytest
import xarray as xr

from limitsim.cli import COMMANDS, build_parser, main


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
