"""Sweeps: grids, executors (local processes, dask, inline), batching, kill/resume, CLI."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sweep_funcs
import xarray as xr

from limitsim import Grid, open_store, point_seed, run_sweep
from limitsim.sweeps.grid import point_key
from limitsim.sweeps.spec import get_preset, load_spec
from limitsim.sweeps.store import limitsim_version

TESTS = Path(__file__).parent
GRID = Grid(axes={"x": list(range(6)), "z": [0.5, 2.0]}, filters=["x * z < 9"], fixed={"k": 1})


# ----------------------------------------------------------------------------- grids and seeds
def test_grid_points_filters_and_round_trip():
    assert GRID.shape == (6, 2)
    points = GRID.points()
    assert len(points) == 11  # x * z < 9 filters out (5, 2.0)
    assert points[0] == {"x": 0, "z": 0.5, "k": 1}
    assert Grid.from_dict(GRID.to_dict()) == GRID
    assert Grid(axes={"eta": [1, 0.5]}).axes["eta"] == (1.0, 0.5)  # mixed int/float -> float


def test_point_seed_depends_on_configuration_only():
    a = {"x": 1, "z": 0.5, "k": 1}
    assert point_seed(a) == point_seed(dict(reversed(list(a.items()))))
    assert point_seed(a) != point_seed({**a, "x": 2})
    assert point_seed(a, keys=("k",)) == point_seed({**a, "x": 2}, keys=("k",))
    assert 0 <= point_seed(a) < 2**63
    with pytest.raises(ValueError, match="not in the point"):
        point_seed(a, keys=("seed",))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"axes": {"x": [1]}, "filters": ["y > 1"]}, "unknown axis 'y'"),
        ({"axes": {"x": [1]}, "filters": ["__import__('os')"]}, "only the functions"),
        ({"axes": {"x": [1]}, "filters": ["x.real > 0"]}, "unsupported syntax"),
        ({"axes": {"x": []}}, "at least one value"),
        ({"axes": {"x": [1, 1]}}, "repeated"),
        ({"axes": {"x": [1]}, "fixed": {"x": 2}}, "both axes and fixed"),
        ({"axes": {}}, "non-empty"),
    ],
)
def test_grid_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Grid(**kwargs)


@pytest.mark.parametrize(
    ("expression", "match"),
    [
        ("x ** 10 ** 10", r"2 \*\* 10000000000 has more than 1024 bits"),
        ("x / 0", "ZeroDivisionError"),
        ("x // (x - x) > 0", "ZeroDivisionError"),
        ("2.0 ** (x * 10000) > 0", "OverflowError"),
        ("log(x - 1) > 0", "math domain error"),
        ("(-x) ** 0.5 > 1", "is not real"),
        ("round(x, -10 ** 7) > 0", "ndigits must lie in"),
        ("x * 'ab' * 10 ** 9 == ''", "repetition of 2000000000 items"),
        ("'%099999999d' % x == ''", "string formatting"),
        ("x < 'a'", "TypeError"),
        ("min(x) > 0", "TypeError"),
    ],
)
def test_filters_are_evaluated_when_the_grid_is_built(expression, match):
    """Every filter runs on every cell at construction, within bounds: failures are fast
    ValueErrors naming the filter and the cell, before any store or sweep exists."""
    start = time.perf_counter()
    with pytest.raises(ValueError, match=match) as error:
        Grid(axes={"x": [1, 2, 3], "z": [0.5]}, filters=["z > 0", expression])
    assert time.perf_counter() - start < 1.0
    assert f"filter {expression!r} cannot be evaluated at {{'x': " in str(error.value)


@pytest.mark.parametrize(
    ("expression", "match"),
    [
        ("+".join(["x"] * 120), "syntax nodes; at most 200"),
        ("x" + " + x" * 300, "characters; at most 1000"),
        ("(" * 300 + "x" + ")" * 300, "not a valid expression: too many nested parentheses"),
    ],
)
def test_filters_are_bounded_in_size(expression, match):
    with pytest.raises(ValueError, match=match):
        Grid(axes={"x": [1, 2, 3]}, filters=[expression])


def test_filters_within_the_bounds_are_exact():
    # 3 ** 640 (1015 bits) > 2 ** 1000: big integers stay exact up to MAX_INT_BITS
    grid = Grid(axes={"x": [1, 2, 3]}, filters=["x ** 640 < 2 ** 1000 and round(x / 3, 2) < 1"])
    assert [p["x"] for p in grid.points()] == [1, 2]
    assert Grid(axes={"x": [2]}, filters=["(-x) ** 3 == -8"]).points() == [{"x": 2}]


def test_bad_arguments(tmp_path):
    store = tmp_path / "s"
    with pytest.raises(ValueError, match="unknown axis"):
        run_sweep(sweep_funcs.noisy, GRID, store=store, batch_axes=["eta"])
    with pytest.raises(TypeError, match="top-level"):
        run_sweep(lambda p: {}, GRID, store=store)
    with pytest.raises(ValueError, match="cannot be imported"):
        run_sweep("sweep_funcs:nope", GRID, store=store)
    with pytest.raises(ValueError, match="executor"):
        run_sweep(sweep_funcs.noisy, GRID, store=store, executor="threads")
    with pytest.raises(ValueError, match="workers"):
        run_sweep(sweep_funcs.noisy, GRID, store=store, workers=0)
    with pytest.raises(ValueError, match="tcp://HOST:PORT"):
        run_sweep(sweep_funcs.noisy, GRID, store=store, scheduler="http://x:1")
    with pytest.raises(ValueError, match="unknown preset 'nope'; presets: \\['demo'\\]"):
        get_preset("nope")
    assert not store.exists()  # nothing was created by a rejected call


# ----------------------------------------------------------------------------- executors
def test_inline_results_layout_and_resume(tmp_path):
    ds = run_sweep(sweep_funcs.noisy, GRID, store=tmp_path / "s", executor="inline")
    assert ds.sizes == {"x": 6, "z": 2, "noise_dim0": 3, "curve_dim0": 4}
    assert ds.status.sel(x=5, z=2.0) == "filtered"
    assert np.isnan(ds.y.sel(x=5, z=2.0))
    assert ds.y.sel(x=3, z=0.5) == 6.0
    # a curve of length x % 4 + 1 is NaN-padded to the longest (4)
    np.testing.assert_array_equal(ds.curve.sel(x=1, z=0.5), [0, 1, np.nan, np.nan])
    rng = np.random.default_rng(point_seed({"x": 2, "z": 2.0, "k": 1}))
    np.testing.assert_array_equal(ds.noise.sel(x=2, z=2.0), rng.standard_normal(3))
    # resuming a finished sweep runs nothing and returns the same Dataset
    again = run_sweep("sweep_funcs:noisy", GRID, store=tmp_path / "s", executor="processes")
    xr.testing.assert_identical(ds, again)


def test_extending_a_grid_runs_only_the_new_points(tmp_path):
    small = Grid(axes={"x": [0, 1], "z": [0.5, 2.0]}, fixed={"k": 1})
    run_sweep(sweep_funcs.noisy, small, store=tmp_path / "s", executor="inline")
    ds = run_sweep(sweep_funcs.noisy, GRID, store=tmp_path / "s", executor="inline")
    with open_store(tmp_path / "s") as store:
        rows = store.rows()
        assert store.grid == GRID  # the latest grid is what `sweep export` writes
    assert len(rows) == 11 and all(r["attempts"] == 1 for r in rows)
    reference = run_sweep(sweep_funcs.noisy, GRID, store=tmp_path / "r", executor="inline")
    xr.testing.assert_identical(ds, reference)


def test_local_processes_and_dask_give_identical_datasets(tmp_path):
    from distributed import LocalCluster

    local = run_sweep(sweep_funcs.noisy, GRID, store=tmp_path / "local", workers=2)
    inline = run_sweep(sweep_funcs.noisy, GRID, store=tmp_path / "inline", executor="inline")
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        host="127.0.0.1",
        protocol="tcp",
        dashboard_address=":0",
    ) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        dask = run_sweep(
            sweep_funcs.noisy, GRID, store=tmp_path / "dask", scheduler=cluster.scheduler_address
        )
    assert (local.status == "done").sum() == 11
    xr.testing.assert_identical(local, dask)
    xr.testing.assert_identical(local, inline)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_forked_and_spawned_workers_give_identical_datasets(tmp_path, monkeypatch, method):
    import limitsim.sweeps._exec as sweep_exec

    monkeypatch.setattr(sweep_exec, "start_method", lambda: method)
    local = run_sweep(sweep_funcs.noisy, GRID, store=tmp_path / "local", workers=2)
    inline = run_sweep(sweep_funcs.noisy, GRID, store=tmp_path / "inline", executor="inline")
    xr.testing.assert_identical(local, inline)


START_METHOD = """
import sys, threading
import numba, numpy as np
from limitsim.sweeps._exec import start_method
print(start_method())
stop = threading.Event()
thread = threading.Thread(target=stop.wait)
thread.start()
print(start_method())
stop.set()
thread.join()
@numba.njit(parallel=True)
def total(x):
    s = 0.0
    for i in numba.prange(x.size):
        s += x[i]
    return s
total(np.ones(8))
print(numba.threading_layer(), start_method())
"""


NO_THREAD_LEFT = """
import threading
import numpy as np
from limitsim import Parametrization, Task, simulate_limit, train_finite
task = Task.full_batch(np.eye(2, 3), np.ones((2, 1)), 2)
for progress in (False, True):
    simulate_limit(task, Parametrization.depth_mup(), depth=2, n_particles=256, progress=progress)
    train_finite(task, Parametrization.depth_mup(), depth=2, width=8, progress=progress)
print(threading.active_count())
"""


def test_progress_bars_leave_no_thread_behind():
    """tqdm's monitor thread would make every later sweep spawn its workers."""
    out = subprocess.run(
        [sys.executable, "-c", NO_THREAD_LEFT], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["1"]


@pytest.mark.skipif(sys.platform != "linux", reason="fork is used on Linux only")
def test_start_method_forks_only_where_safe():
    """fork in a clean process; spawn with a second thread or with numba's GNU OpenMP layer."""
    out = subprocess.run(
        [sys.executable, "-c", START_METHOD], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[:2] == ["fork", "spawn"]
    layer, method = out[2:]
    assert method == ("fork" if layer in ("tbb", "workqueue") else "spawn")


def test_batch_axes_group_points_and_give_the_same_numbers(tmp_path):
    grid = Grid(axes={"x": [0, 1, 2], "z": [0.5, 1.0, 2.0, 4.0]})
    single = run_sweep(sweep_funcs.noisy, grid, store=tmp_path / "a", executor="inline")
    batched = run_sweep(
        sweep_funcs.noisy_batch,
        grid,
        store=tmp_path / "b",
        executor="inline",
        batch_axes=["z"],
        batch_size=3,
    )
    # groups of equal x (4 points each) split into batches of at most 3: sizes 3 and 1
    np.testing.assert_array_equal(batched.batch_len.sel(x=0), [3, 3, 3, 1])
    for name in ("y", "noise", "curve", "status"):
        xr.testing.assert_identical(single[name], batched[name])


def test_failing_and_diverging_points_are_recorded_and_the_rest_completes(tmp_path, capsys):
    grid = Grid(axes={"x": list(range(7))})
    ds = run_sweep(sweep_funcs.flaky, grid, store=tmp_path / "s", executor="inline", progress=True)
    bar = capsys.readouterr().err.split("\r")[-1]  # the progress bar's last state
    assert "7/7" in bar and "diverged=1" in bar and "failed=1" in bar
    status = dict(zip(ds.x.values.tolist(), ds.status.values.tolist(), strict=True))
    assert status == {
        0: "done",
        1: "done",
        2: "done",
        3: "failed",
        4: "done",
        5: "diverged",
        6: "done",
    }
    assert str(ds.error.sel(x=3).item()).startswith("ValueError: bad point x=3")
    assert np.isnan(ds.y.sel(x=3)) and np.isnan(ds.y.sel(x=5))  # failed and diverged: NaN
    assert ds.y.sel(x=6) == 12.0
    with open_store(tmp_path / "s", readonly=True) as store:  # diverged arrays stay stored
        key = point_key({"x": 5}, "sweep_funcs:flaky", limitsim_version())
        assert store.load(key)["y"] == 10.0
    # malformed outputs are failures with a clear message, not crashes
    bad = run_sweep(
        sweep_funcs.bad_output, Grid(axes={"x": [0, 1, 2]}), store=tmp_path / "b", executor="inline"
    )
    errors = [e.partition("\n")[0] for e in bad.error.values]
    assert errors[0] == "TypeError: result 'y' must be a number or numeric array, got 'text'"
    assert "ValueError: result names must be identifiers other than" in errors[1]
    assert errors[2] == "TypeError: the point function must return a dict, got list"


def test_failed_points_are_retried_only_on_request(tmp_path):
    grid = Grid(axes={"x": [0, 1, 2]}, fixed={"marker_dir": str(tmp_path)})
    run = lambda **kw: run_sweep(  # noqa: E731
        sweep_funcs.fails_once, grid, store=tmp_path / "s", executor="inline", **kw
    )
    assert run().status.values.tolist() == ["done", "failed", "done"]
    assert run().status.values.tolist() == ["done", "failed", "done"]  # not retried
    assert run(retry_failed=True).status.values.tolist() == ["done", "done", "done"]
    with open_store(tmp_path / "s") as store:
        attempts = {r["config"]["x"]: r["attempts"] for r in store.rows()}
    assert attempts == {0: 1, 1: 2, 2: 1}


def test_local_worker_that_dies_is_replaced_and_its_point_retried(tmp_path):
    grid = Grid(axes={"x": list(range(6))}, fixed={"marker_dir": str(tmp_path), "die_at": 2})
    ds = run_sweep(sweep_funcs.dies_once, grid, store=tmp_path / "s", workers=2)
    assert (tmp_path / "died-2").exists()  # the worker really died
    assert ds.status.values.tolist() == ["done"] * 6
    reference = run_sweep(sweep_funcs.dies_once, grid, store=tmp_path / "r", executor="inline")
    xr.testing.assert_identical(ds, reference)
    with open_store(tmp_path / "s") as store:
        assert store.check_integrity(deep=True).ok


def test_a_point_that_always_kills_its_worker_is_recorded_failed(tmp_path):
    fixed = {"marker_dir": str(tmp_path), "die_at": 1, "always": True}
    grid = Grid(axes={"x": [0, 1, 2, 3]}, fixed=fixed)
    ds = run_sweep(sweep_funcs.dies_once, grid, store=tmp_path / "s", workers=2, max_attempts=2)
    assert ds.status.values.tolist() == ["done", "failed", "done", "done"]
    assert str(ds.error.sel(x=1).item()).startswith("WorkerLost: a local worker process died")


def test_dask_worker_that_dies_mid_task_loses_nothing(tmp_path):
    grid = Grid(axes={"x": list(range(8))}, fixed={"marker_dir": str(tmp_path), "die_at": 3})
    ds = run_sweep(sweep_funcs.dies_once, grid, store=tmp_path / "s", executor="dask", workers=2)
    assert (tmp_path / "died-3").exists()
    reference = run_sweep(sweep_funcs.dies_once, grid, store=tmp_path / "r", executor="inline")
    xr.testing.assert_identical(ds, reference)
    with open_store(tmp_path / "s") as store:
        report = store.check_integrity(deep=True)
        assert report.ok and report.rows == 8 and not report.orphans and not report.temp_files


def test_unreachable_scheduler_fails_fast_with_a_clear_error(tmp_path):
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match=f"tcp://127.0.0.1:{port}.*within 2 s"):
        run_sweep(
            sweep_funcs.noisy,
            GRID,
            store=tmp_path / "s",
            scheduler=f"127.0.0.1:{port}",
            connect_timeout=2,
        )
    assert time.perf_counter() - start < 10


# ----------------------------------------------------------------------------- kill and resume
KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import sweep_funcs
from limitsim import Grid, run_sweep
if __name__ == "__main__":
    run_sweep(sweep_funcs.noisy, Grid(axes={{"x": list(range(40))}}), store={store!r}, workers=2)
"""


def _ledger_rows(store: Path) -> int:
    if not (store / "store.json").exists() or not (store / "ledger.sqlite").exists():
        return 0
    try:
        with sqlite3.connect(f"file:{store / 'ledger.sqlite'}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT COUNT(*) FROM points").fetchone()[0])
    except sqlite3.OperationalError:  # table not created yet
        return 0


def test_sigkill_mid_sweep_then_resume_equals_an_uninterrupted_run(tmp_path):
    store = tmp_path / "s"
    env = {**os.environ, "LIMITSIM_TEST_SLEEP": "0.08"}
    script = KILL_SCRIPT.format(tests=str(TESTS), store=str(store))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while _ledger_rows(store) < 6 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # the parent: the only writer of the store
        proc.wait()
    finally:
        with __import__("contextlib").suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its orphaned workers
    killed_at = _ledger_rows(store)
    assert 0 < killed_at < 40, killed_at

    grid = Grid(axes={"x": list(range(40))})
    resumed = run_sweep(sweep_funcs.noisy, grid, store=store, workers=2)
    reference = run_sweep(sweep_funcs.noisy, grid, store=tmp_path / "ref", executor="inline")
    xr.testing.assert_identical(resumed, reference)
    with open_store(store) as st:
        rows = st.rows()
        report = st.check_integrity(deep=True)
    keys = {point_key(p, "sweep_funcs:noisy", limitsim_version()) for p in grid.points()}
    assert {r["key"] for r in rows} == keys and len(rows) == 40  # nothing lost or duplicated
    assert all(r["attempts"] == 1 and r["status"] == "done" for r in rows)
    assert report.ok and not report.orphans and not report.temp_files


ORPHAN_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import sweep_funcs
import limitsim.sweeps._exec
from limitsim import Grid, run_sweep
if __name__ == "__main__":
    limitsim.sweeps._exec.start_method = lambda: {method!r}
    grid = Grid(axes={{"x": [0, 1]}}, fixed={{"marker_dir": {marker!r}}})
    run_sweep(sweep_funcs.hangs, grid, store={store!r}, workers=2)
"""

WATCHED_SCRIPT = """
import multiprocessing, os, threading, time
from limitsim.sweeps._exec import _watch_parent
def child(parent):
    threading.Thread(target=_watch_parent, args=(parent, 0.05), daemon=True).start()
    time.sleep(60)
if __name__ == "__main__":
    process = multiprocessing.get_context("fork").Process(target=child, args=(os.getpid(),))
    process.start()
    print(process.pid, flush=True)
    time.sleep(60)
"""


def _dead(pid: int) -> bool:
    """No such process, or a zombie (its parent is gone and nobody reaped it yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def _wait_dead(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not all(_dead(pid) for pid in pids):
        time.sleep(0.05)
    return [pid for pid in pids if not _dead(pid)]


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_local_workers_die_with_a_killed_parent(tmp_path, method):
    marker = tmp_path / "pids"
    marker.mkdir()
    script = ORPHAN_SCRIPT.format(
        tests=str(TESTS), marker=str(marker), store=str(tmp_path / "s"), method=method
    )
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(list(marker.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = [int(p.name.removeprefix("pid-")) for p in marker.iterdir()]
        assert len(workers) == 2 and proc.poll() is None  # both workers run a point
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert _wait_dead(workers, 5.0) == []
    finally:
        with __import__("contextlib").suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_parent_watchdog_ends_a_child_whose_parent_was_killed():
    """The fallback where prctl(PR_SET_PDEATHSIG) is unavailable (a child without it)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WATCHED_SCRIPT], stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        child = int(proc.stdout.readline())
        time.sleep(0.3)
        assert not _dead(child)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert _wait_dead([child], 3.0) == []
    finally:
        proc.stdout.close()
        with __import__("contextlib").suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('function = "f"\nbogus = 1\n[axes]\nx = [1]\n', "unknown spec keys \\['bogus'\\]"),
        ('function = "f"\n', "needs 'axes'"),
        ('function = "f"\nbatch_axes = ["y"]\n[axes]\nx = [1]\n', "unknown axis \\['y'\\]"),
        ("function = \n", "invalid TOML"),
    ],
)
def test_bad_spec_files(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_spec(path)
