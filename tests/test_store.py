"""The result store: atomic writes, integrity checks, versions, full/read-only disks, writers."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sweep_funcs
import xarray as xr

from limitsim import Grid, open_store, run_sweep
from limitsim.sweeps.store import (
    IncompatibleStoreError,
    PointResult,
    StoreError,
    limitsim_version,
)
from tests.helpers import flip_byte, ledger_offsets

TESTS = Path(__file__).parent
FUNCTION = "sweep_funcs:noisy"
GRID = Grid(axes={"x": list(range(8))})


def result(x: int, status: str = "done", **arrays) -> PointResult:
    arrays = arrays or {"y": np.float64(x), "v": np.arange(3.0) * x}
    return PointResult(key=f"{x:064x}", config={"x": x}, status=status, arrays=arrays)


def tree_digest(path: Path) -> dict[str, str]:
    """Name -> SHA-256 of every file below ``path``."""
    return {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_layout_wal_and_round_trip(tmp_path):
    with open_store(tmp_path / "s", function=FUNCTION) as store:
        assert store.record(result(1))
        assert store._ledger._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        loaded = store.load(result(1).key)
        assert loaded["y"].shape == () and loaded["y"] == 1.0  # 0-d arrays stay 0-d
        np.testing.assert_array_equal(loaded["v"], [0.0, 1.0, 2.0])
        row = store.rows()[0]
        assert row["status"] == "done" and row["attempts"] == 1 and row["config"] == {"x": 1}
        assert row["file"] == f"points/00/{result(1).key}-{row['sha256'][:16]}.npz"
    info = json.loads((tmp_path / "s" / "store.json").read_text())
    assert info["function"] == FUNCTION and info["limitsim_version"] == limitsim_version()


def test_files_are_deterministic_and_first_finished_result_wins(tmp_path):
    with open_store(tmp_path / "s", function=FUNCTION) as store:
        store.record(result(2))
        first = tree_digest(tmp_path / "s" / "points")
        assert not store.record(result(2, v=np.ones(2)))  # a second writer's result is ignored
        np.testing.assert_array_equal(store.load(result(2).key)["v"], [0.0, 2.0, 4.0])
        report = store.check_integrity(deep=True)
        assert report.ok and len(report.orphans) == 1  # the loser's file: reported, not counted
        assert store.clean() == 1
    assert tree_digest(tmp_path / "s" / "points") == first


def test_integrity_check_finds_missing_corrupt_orphan_and_temp_files(tmp_path):
    with open_store(tmp_path / "s", function=FUNCTION) as store:
        for x in range(4):
            store.record(result(x))
        store.record(result(9, status="failed"))
        assert store.check_integrity(deep=True).ok
        rows = {r["config"]["x"]: r for r in store.rows()}
        (tmp_path / "s" / rows[0]["file"]).unlink()
        corrupt = tmp_path / "s" / rows[1]["file"]
        corrupt.write_bytes(corrupt.read_bytes()[:-7])
        (tmp_path / "s" / "points" / "00" / "stray.npz").write_bytes(b"")
        (tmp_path / "s" / "tmp" / "partial.tmp").write_bytes(b"x")
        quick, deep = store.check_integrity(), store.check_integrity(deep=True)
    assert quick.missing == deep.missing == (result(0).key,)
    assert quick.corrupt == () and deep.corrupt == (result(1).key,)
    assert deep.orphans == ("points/00/stray.npz",) and deep.temp_files == ("partial.tmp",)
    assert deep.rows == 5 and deep.sqlite == "ok" and not quick.ok and not deep.ok


def test_stale_temp_files_of_dead_writers_are_removed_on_open(tmp_path):
    with open_store(tmp_path / "s", function=FUNCTION):
        pass
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    host = __import__("socket").gethostname()
    stale = tmp_path / "s" / "tmp" / f"{'a' * 64}-0123.{host}.{dead.stdout.strip()}.beef.tmp"
    live = tmp_path / "s" / "tmp" / f"{'b' * 64}-0123.{host}.{os.getpid()}.beef.tmp"
    stale.write_bytes(b"half")
    live.write_bytes(b"in progress")
    with open_store(tmp_path / "s", function=FUNCTION) as store:
        assert store.check_integrity().temp_files == (live.name,)


def test_kill_between_file_and_commit_leaves_an_orphan_that_resume_adopts(tmp_path, monkeypatch):
    from limitsim.sweeps._ledger import Ledger

    def killed(self, *args, **kwargs):
        raise KeyboardInterrupt  # the process dies right after the file is in place

    with monkeypatch.context() as m:
        m.setattr(Ledger, "upsert", killed)
        with (
            open_store(tmp_path / "s", function=FUNCTION) as store,
            pytest.raises(KeyboardInterrupt),
        ):
            store.record(result(3))
    with open_store(tmp_path / "s", function=FUNCTION) as store:
        report = store.check_integrity()
        assert report.ok and report.rows == 0 and len(report.orphans) == 1
        assert store.record(result(3))  # re-running the point writes the identical file
        report = store.check_integrity(deep=True)
        assert report.ok and report.rows == 1 and not report.orphans


@pytest.mark.parametrize("target", ["fsync", "open"])
def test_full_or_read_only_disk_mid_sweep_fails_cleanly_and_resumes(tmp_path, monkeypatch, target):
    code = errno.ENOSPC if target == "fsync" else errno.EROFS
    real = getattr(os, target)
    calls = {"n": 0}
    store = tmp_path / "s"

    def failing(*args, **kwargs):
        if str(args[0]).startswith(str(store / "tmp")) or target == "fsync":
            calls["n"] += 1
            if calls["n"] > 6:  # the store file, then a few points succeed
                raise OSError(code, os.strerror(code))
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(os, target, failing)
        with pytest.raises(StoreError, match=os.strerror(code)) as info:
            run_sweep(sweep_funcs.noisy, GRID, store=store, executor="inline")
    assert "Finished points are intact" in str(info.value)
    with open_store(store, function=FUNCTION) as st:
        report = st.check_integrity(deep=True)
        assert report.ok and 0 < report.rows < 8 and not report.temp_files and not report.orphans
    resumed = run_sweep(sweep_funcs.noisy, GRID, store=store, executor="inline")
    reference = run_sweep(sweep_funcs.noisy, GRID, store=tmp_path / "ref", executor="inline")
    xr.testing.assert_identical(resumed, reference)


def test_unwritable_location_gives_a_clear_error(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(args[0]))

    monkeypatch.setattr(os, "mkdir", read_only)
    with pytest.raises(StoreError, match=r"cannot create a sweep store at .*Read-only file system"):
        run_sweep(sweep_funcs.noisy, GRID, store=tmp_path / "s", executor="inline")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="cannot create a sweep store"):
            run_sweep(sweep_funcs.noisy, GRID, store=tmp_path / "s", executor="inline")
    finally:
        tmp_path.chmod(0o700)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("limitsim_version", "0.0.1", "written by limitsim 0.0.1, this is limitsim"),
        ("schema", 999, "schema 999"),
        ("function", "other:fn", "holds results of 'other:fn'"),
    ],
)
def test_incompatible_store_is_refused_and_left_untouched(tmp_path, field, value, match):
    store = tmp_path / "s"
    run_sweep(sweep_funcs.noisy, GRID, store=store, executor="inline")
    info = json.loads((store / "store.json").read_text())
    (store / "store.json").write_text(json.dumps({**info, field: value}))
    before = tree_digest(store)
    with pytest.raises(IncompatibleStoreError, match=match) as error:
        run_sweep(sweep_funcs.noisy, GRID, store=store, executor="inline")
    assert "Nothing was changed" in str(error.value)
    assert tree_digest(store) == before
    if field == "function":  # an old version's store with this schema can still be read
        return
    if field == "limitsim_version":
        with open_store(store, readonly=True) as st:
            assert st.version == "0.0.1" and st.check_integrity().rows == 8


def test_not_a_store(tmp_path):
    (tmp_path / "data.txt").write_text("mine")
    with pytest.raises(StoreError, match="not a limitsim sweep store"):
        run_sweep(sweep_funcs.noisy, GRID, store=tmp_path, executor="inline")
    assert os.listdir(tmp_path) == ["data.txt"]
    with pytest.raises(FileNotFoundError, match="no sweep store"):
        open_store(tmp_path / "missing", readonly=True)


WRITER = """
import sys
sys.path.insert(0, {tests!r})
import sweep_funcs
from limitsim import Grid, run_sweep
run_sweep(sweep_funcs.noisy, Grid(axes={{"x": list(range(30))}}), store={store!r},
          executor="inline")
"""


def test_concurrent_writers_never_corrupt_the_store(tmp_path):
    store = tmp_path / "s"
    run_sweep(sweep_funcs.noisy, Grid(axes={"x": [0]}), store=store, executor="inline")
    script = WRITER.format(tests=str(TESTS), store=str(store))
    env = {**os.environ, "LIMITSIM_TEST_SLEEP": "0.01"}  # long enough for the two to overlap
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with open_store(store, function=FUNCTION) as st:
        rows = st.rows()
        report = st.check_integrity(deep=True)
    assert len(rows) == 30 and len({r["key"] for r in rows}) == 30
    assert all(r["attempts"] == 1 for r in rows)
    assert report.ok and not report.orphans and not report.temp_files
    with sqlite3.connect(store / "ledger.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    reference = run_sweep(
        sweep_funcs.noisy,
        Grid(axes={"x": list(range(30))}),
        store=tmp_path / "r",
        executor="inline",
    )
    with open_store(store, readonly=True) as st:
        xr.testing.assert_identical(st.to_dataset(), reference)


# ----------------------------------------------------------------------------- damaged ledger


def test_following_the_recovery_advice_restores_the_store(pristine, tmp_path):
    import shutil

    root, reference = pristine
    store = tmp_path / "s"
    shutil.copytree(root / "s", store)
    ledger = store / "ledger.sqlite"
    flip_byte(ledger, ledger_offsets(ledger.read_bytes())["row key"])
    with pytest.raises(StoreError, match="move the ledger aside") as info:
        run_sweep(sweep_funcs.noisy, GRID, store=store, executor="inline")
    assert f"`mv {ledger} {ledger}.damaged`" in str(info.value)
    ledger.rename(store / "ledger.sqlite.damaged")
    xr.testing.assert_identical(
        run_sweep(sweep_funcs.noisy, GRID, store=store, executor="inline"), reference
    )
    with open_store(store) as st:
        report = st.check_integrity(deep=True)
    assert report.ok and report.rows == 8 and not report.orphans


# ----------------------------------------------------------------------------- store creation
def _create_killed_at(store: Path, kill_at: int) -> int:
    """Create ``store`` in a forked child that SIGKILLs itself before its ``kill_at``-th call
    of a file-system function; return the child's exit code (-9 when killed)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns to pytest
        try:
            calls = 0

            def dying(real):
                def call(*args, **kwargs):
                    nonlocal calls
                    calls += 1
                    if calls == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return real(*args, **kwargs)

                return call

            for name in ("mkdir", "open", "fsync", "replace", "rename"):
                setattr(os, name, dying(getattr(os, name)))
            open_store(store, function=FUNCTION).close()
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_kill_at_any_moment_of_creation_leaves_a_store_that_resumes(tmp_path):
    """SIGKILL before each file-system call made while creating a store, then resume."""
    reference = run_sweep(sweep_funcs.noisy, GRID, store=tmp_path / "ref", executor="inline")
    kill_at = 1
    while (code := _create_killed_at(tmp_path / f"s{kill_at}", kill_at)) != 0:
        assert code == -signal.SIGKILL
        resumed = run_sweep(
            sweep_funcs.noisy, GRID, store=tmp_path / f"s{kill_at}", executor="inline"
        )
        xr.testing.assert_identical(resumed, reference)
        kill_at += 1
    assert kill_at > 8  # killed in the staging directory, ledger, store.json, fsyncs, rename
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # cleaned up


def test_a_half_created_store_of_an_older_version_is_adopted(tmp_path):
    """limitsim 0.1.0 made tmp/ first: a kill then left only tmp/ (and a partial store.json)."""
    store = tmp_path / "s"
    (store / "tmp").mkdir(parents=True)
    (store / "tmp" / "store.host.123.beef.tmp").write_text('{"form')
    ds = run_sweep(sweep_funcs.noisy, GRID, store=store, executor="inline")
    assert (ds.status == "done").all()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "tmp").mkdir()
    (tmp_path / "mine" / "tmp" / "notes.txt").write_text("not limitsim's")
    with pytest.raises(StoreError, match="not a limitsim sweep store"):
        run_sweep(sweep_funcs.noisy, GRID, store=tmp_path / "mine", executor="inline")
    assert (tmp_path / "mine" / "tmp" / "notes.txt").exists()


RACE = """
import sys, time
sys.path.insert(0, {tests!r})
import numpy as np
from limitsim.sweeps.store import PointResult, open_store
start, me = float(sys.argv[1]), int(sys.argv[2])
for trial in range({trials}):
    while time.time() < start + 0.2 * trial:
        pass
    with open_store(f"{root}/{{trial}}", function="sweep_funcs:noisy") as store:
        store.record(PointResult(key=f"{{me:064x}}", config={{"x": me}}, status="done",
                                 arrays={{"y": np.float64(me)}}))
"""


def test_concurrent_first_opens_of_a_new_store_are_safe(tmp_path):
    """Two processes open each of 10 new stores at the same moment; both succeed every time."""
    trials = 10
    script = RACE.format(tests=str(TESTS), root=str(tmp_path), trials=trials)
    start = str(time.time() + 3.0)  # after both have imported limitsim
    procs = [
        subprocess.Popen([sys.executable, "-c", script, start, str(me)], stderr=subprocess.PIPE)
        for me in (1, 2)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    for trial in range(trials):
        with open_store(tmp_path / str(trial), readonly=True) as store:
            assert sorted(store.entries()) == [f"{1:064x}", f"{2:064x}"]
            assert store.check_integrity(deep=True).ok
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(str(t) for t in range(trials))


def test_a_store_created_between_look_and_create_is_accepted(tmp_path, monkeypatch):
    """The race window of the concurrent test, made deterministic: another process creates
    the store after this one found no ``store.json`` and before it creates one."""
    from limitsim.sweeps import _identity as _store_identity

    path = tmp_path / "s"
    real_read = _store_identity._read_identity
    seen = []

    def read_then_lose_the_race(p):
        if not seen:  # first look: nothing there yet; the other process creates it now
            seen.append(p)
            with open_store(p, function=FUNCTION):
                pass
            return None
        return real_read(p)

    monkeypatch.setattr(_store_identity, "_read_identity", read_then_lose_the_race)
    with open_store(path, function=FUNCTION) as store:
        assert not list(store.entries())
    monkeypatch.undo()
    with pytest.raises(StoreError, match="not a limitsim sweep store"):
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "junk").write_text("x")
        open_store(tmp_path / "other", function=FUNCTION)
