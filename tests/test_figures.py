"""Datasets of `limitsim figures`: reused when intact, recomputed when damaged."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import types

import numpy as np
import pytest
import xarray as xr

from limitsim import figures
from limitsim.experiments._common import Context


class Experiment(types.ModuleType):
    """A stand-in experiment module whose ``run`` counts its calls."""

    NAME = "fake"

    def __init__(self) -> None:
        super().__init__("fake")
        self.calls = 0

    def run(self, sizes, context):
        self.calls += 1
        return xr.Dataset({"y": ("x", np.arange(500.0))}, coords={"x": np.arange(500)})


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "sizes_for", lambda profile, name: {})
    experiment, logs = Experiment(), []
    data = tmp_path / "data"
    data.mkdir()

    def load():
        context = Context(tmp_path / "stores")
        return figures._load_or_run(experiment, "tiny", data, context, logs.append)

    return experiment, data, load, logs


def test_a_dataset_is_written_with_its_checksum_and_reused(setup):
    experiment, data, load, logs = setup
    first = load()
    nc = data / "fake.nc"
    digest = hashlib.sha256(nc.read_bytes()).hexdigest()
    assert (data / "fake.nc.sha256").read_text() == f"{digest}  fake.nc\n"  # sha256sum -c
    xr.testing.assert_identical(load(), first)
    assert experiment.calls == 1 and "reusing" in logs[-1]
    assert sorted(p.name for p in data.iterdir()) == ["fake.nc", "fake.nc.sha256"]


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped", "emptied"])
@pytest.mark.parametrize("checksum", [True, False])
def test_a_damaged_dataset_is_recomputed(setup, damage, checksum):
    """With its checksum file, or without one (written by limitsim 0.1.0)."""
    experiment, data, load, logs = setup
    first = load()
    nc = data / "fake.nc"
    if not checksum:
        (data / "fake.nc.sha256").unlink()
    raw = bytearray(nc.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    elif damage == "bit-flipped":
        raw[raw.index(np.float64(250.0).tobytes())] ^= 0x01  # y[250]: still a valid file
    else:
        raw = bytearray()
    nc.write_bytes(bytes(raw))
    again = load()
    if damage == "bit-flipped" and not checksum:
        # without a recorded checksum a flip in the data is not detectable: the old file loads
        assert experiment.calls == 1 and again.y[250] != 250.0
        return
    assert experiment.calls == 2 and "recomputing" in " ".join(logs)
    xr.testing.assert_equal(again, first)  # attrs differ: the run's time
    assert load() is not None and experiment.calls == 2  # the rewritten file is reused


def test_an_intact_dataset_without_checksum_is_adopted(setup):
    experiment, data, load, _ = setup
    load()
    (data / "fake.nc.sha256").unlink()
    load()
    assert experiment.calls == 1 and (data / "fake.nc.sha256").exists()


def test_temporary_files_of_killed_runs_are_deleted(setup):
    _, data, load, _ = setup
    host = socket.gethostname()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    stale = data / f"fake.nc.{host}.{dead}.beef.tmp"
    legacy = data / "tmpab12cd34.nc.tmp"  # limitsim 0.1.0's names
    live = data / f"other.nc.{host}.{os.getpid()}.beef.tmp"  # a writer still running
    for path in (stale, legacy, live):
        path.write_bytes(b"partial")
    load()
    assert not stale.exists() and not legacy.exists() and live.exists()


# ------------------------------------------------------------ failed sweep points
def test_failed_points_raise_after_the_sweep_and_are_retried_on_the_next_run(tmp_path):
    """An experiment's sweep with a raising point: every other point is stored, then
    PointsFailed; the next run retries only the failed point (here it succeeds)."""
    from limitsim.experiments._common import sweep
    from limitsim.sweeps._errors import PointsFailed
    from limitsim.sweeps.grid import Grid
    from tests import sweep_funcs

    context = Context(tmp_path / "stores", workers=1, progress=False)
    grid = Grid(axes={"x": [0, 1, 2]}, fixed={"marker_dir": str(tmp_path)})
    with pytest.raises(PointsFailed, match=r"sweep 'once': 1 point\(s\) failed; first error: "
                       r"RuntimeError: transient failure"):  # fmt: skip
        sweep(context, "once", sweep_funcs.fails_once, grid)
    ds = sweep(context, "once", sweep_funcs.fails_once, grid)
    assert list(ds.status.values) == ["done"] * 3


def test_an_experiment_with_failed_points_has_no_rows_and_the_others_run(tmp_path, monkeypatch):
    """make_figures: the failing experiment is logged and named in the report's notes, the
    next experiment still runs and the report is written, then ExperimentsFailed."""
    from limitsim.sweeps._errors import ExperimentsFailed, PointsFailed

    def module(name, fails):
        experiment = types.ModuleType(name)
        experiment.TITLE = experiment.NAME = name

        def run(sizes, context):
            if fails:
                raise PointsFailed(name, 2, "ZeroDivisionError: boom")
            return xr.Dataset({"y": ("x", np.arange(3.0))})

        experiment.run = run
        experiment.plot = lambda ds, out: []
        experiment.claims = lambda ds: []
        return experiment

    modules = {"bad": module("bad", True), "good": module("good", False)}
    monkeypatch.setattr(figures, "_check_names", lambda profile, only: list(modules))
    monkeypatch.setattr(figures, "sizes_for", lambda profile, name: {})
    monkeypatch.setattr(figures.importlib, "import_module", lambda path: modules[path[21:]])
    logs = []
    with pytest.raises(ExperimentsFailed, match=r"1 experiment\(s\) failed .*`bad`: sweep 'bad'"):
        figures.make_figures("tiny", tmp_path, log=logs.append)
    report = (tmp_path / "report.md").read_text()
    assert "FAILED, no rows: `bad`: sweep 'bad': 2 point(s) failed" in report
    assert "`good` (good)" in report and (tmp_path / "data" / "good.nc").exists()
    assert any(line.startswith("  FAILED: sweep 'bad'") for line in logs)


def test_the_command_line_reports_failed_experiments_in_one_line(monkeypatch, capsys):
    from limitsim.cli import main
    from limitsim.sweeps._errors import ExperimentsFailed

    def make_figures(*args, **kwargs):
        raise ExperimentsFailed("1 experiment(s) failed and have no rows in R: `bad`: ...")

    monkeypatch.setattr(figures, "make_figures", make_figures)
    assert main(["figures", "--profile", "tiny", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert (
        err == "limitsim figures: error: 1 experiment(s) failed and have no rows in R: `bad`: ...\n"
    )
