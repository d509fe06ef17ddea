"""The result store of a sweep: a SQLite ledger plus one ``.npz`` file per finished point.

Layout of a store directory::

    STORE/store.json                 identity: format, schema, limitsim version, point function
    STORE/ledger.sqlite              table ``points`` (key, config, status, error, seconds,
                                     attempts, file, sha256, finished) and table ``meta`` (grid)
    STORE/points/ab/<key>-<sha>.npz  the arrays of a done or diverged point (content-addressed)
    STORE/tmp/                       temporary files of writes in progress

Crash safety (a kill at any moment leaves no half-written result): the arrays are written
atomically first (:mod:`limitsim._store_files`: temporary file, ``fsync``, ``os.replace``,
directory ``fsync``); only then is the ledger row committed, in one SQLite transaction (WAL
journal, 60 s busy timeout).  A point is finished exactly when its row is committed.  A kill
before the commit leaves an *orphan* file (reported by :meth:`Store.check_integrity`, never
counted, rewritten identically when the point is re-run) or a temporary file (deleted when a
writer next opens the store).  ``synchronous=NORMAL`` makes commits survive a killed process;
a power cut may lose the last commits (never corrupt the ledger): those points are re-run.

Writers: :func:`limitsim.run_sweep` writes only from the calling (parent) process; workers
return results in memory, so the store needs no shared file system on a cluster.  Several
processes may still write the same store at once: each row is an upsert in a ``BEGIN
IMMEDIATE`` transaction that replaces only a *failed* row (the first finished result of a point
wins), and file names are content-addressed, so concurrent writers never corrupt the store.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from limitsim._store_files import file_intact, npz_bytes, remove_stale_temp_files, write_atomic
from limitsim.grid import SCHEMA, Grid, canonical_json

__all__ = [
    "STATUSES",
    "IncompatibleStoreError",
    "IntegrityReport",
    "PointResult",
    "Store",
    "StoreError",
    "open_store",
]

FORMAT = "limitsim-sweep-store"
#: Ledger statuses: ``done`` and ``diverged`` points are finished (have a file); ``failed`` ones
#: are re-run only on request.
STATUSES = ("done", "diverged", "failed")
_LEDGER = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'diverged', 'failed')),
    error TEXT NOT NULL,
    seconds REAL NOT NULL,
    attempts INTEGER NOT NULL,
    file TEXT,
    sha256 TEXT,
    finished REAL NOT NULL
);
"""
_UPSERT = """
INSERT INTO points (key, config, status, error, seconds, attempts, file, sha256, finished)
VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    status = excluded.status, error = excluded.error, seconds = excluded.seconds,
    attempts = points.attempts + 1, file = excluded.file, sha256 = excluded.sha256,
    finished = excluded.finished
WHERE points.status = 'failed'
"""


def limitsim_version() -> str:
    """The installed limitsim version (as in ``limitsim.__version__``)."""
    try:
        return version("limitsim")
    except PackageNotFoundError:  # pragma: no cover - source tree without installation
        return "0.0.0+unknown"


class StoreError(RuntimeError):
    """The store cannot be used or written (the message says why and what is intact)."""


class IncompatibleStoreError(StoreError):
    """The store was written by another schema, limitsim version or point function."""


@dataclass(frozen=True, kw_only=True)
class PointResult:
    """Outcome of one grid point, as returned by a worker and recorded by :meth:`Store.record`.

    Attributes
    ----------
    key : str
        :func:`limitsim.grid.point_key` of ``config``.
    config : Mapping
        The point (axis values and fixed parameters).
    status : {"done", "diverged", "failed"}
    arrays : Mapping[str, ndarray]
        Named results (empty when failed).
    error : str
        Error text of a failed point ("" otherwise).
    seconds : float
        Wall time of the point function (a batch's time is split evenly over its points).
    """

    key: str
    config: Mapping[str, Any]
    status: str
    arrays: Mapping[str, NDArray[Any]] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0


@dataclass(frozen=True, kw_only=True)
class IntegrityReport:
    """Result of :meth:`Store.check_integrity`; ``ok`` when no finished result is damaged.

    Attributes
    ----------
    rows : int
        Ledger rows.
    missing : tuple of str
        Keys of done/diverged rows whose file is absent (damage).
    corrupt : tuple of str
        Keys whose file does not match its SHA-256 or does not load (damage; deep check only).
    orphans : tuple of str
        Result files no row refers to (left by a kill before the commit; not counted).
    temp_files : tuple of str
        Partial temporary files (left by a kill during a write; not counted).
    sqlite : str
        ``PRAGMA quick_check`` of the ledger ("ok" when sound).
    """

    rows: int
    missing: tuple[str, ...]
    corrupt: tuple[str, ...]
    orphans: tuple[str, ...]
    temp_files: tuple[str, ...]
    sqlite: str

    @property
    def ok(self) -> bool:
        """True when the ledger is sound and every finished row has its intact file."""
        return self.sqlite == "ok" and not self.missing and not self.corrupt


class Store:
    """An open result store (use :func:`open_store`; a context manager that closes it).

    Attributes
    ----------
    path : Path
    function : str
        Dotted name of the point function whose results the store holds.
    version : str
        limitsim version that wrote the store (part of every point key).
    readonly : bool
    """

    def __init__(self, path: Path, info: Mapping[str, Any], *, readonly: bool) -> None:
        self.path = path
        self.function: str = info["function"]
        self.version: str = info["limitsim_version"]
        self.readonly = readonly
        self._tmp = path / "tmp"
        db = path / "ledger.sqlite"
        try:
            if readonly:
                self._db = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
            else:
                for sub in ("points", "tmp"):
                    (path / sub).mkdir(exist_ok=True)
                self._db = sqlite3.connect(db, timeout=60, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_LEDGER)
                remove_stale_temp_files(self._tmp)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the ledger of store {path}: {exc}") from exc

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the ledger connection."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reading
    @property
    def grid(self) -> Grid | None:
        """The grid of the latest sweep run on this store (None before the first)."""
        row = self._db.execute("SELECT value FROM meta WHERE name = 'grid'").fetchone()
        return None if row is None else Grid.from_dict(json.loads(row[0]))

    def entries(self) -> dict[str, tuple[str, str, float]]:
        """Key → (status, error text, seconds) of every ledger row."""
        rows = self._db.execute("SELECT key, status, error, seconds FROM points")
        return {key: (status, error, seconds) for key, status, error, seconds in rows}

    def rows(self) -> list[dict[str, Any]]:
        """Every ledger row as a dict (``config`` parsed), in order of completion."""
        cursor = self._db.execute("SELECT * FROM points ORDER BY finished")
        names = [c[0] for c in cursor.description]
        rows = [dict(zip(names, values, strict=True)) for values in cursor]
        for row in rows:
            row["config"] = json.loads(row["config"])
        return rows

    def load(self, key: str) -> dict[str, NDArray[Any]]:
        """The arrays of a done or diverged point (KeyError if it has none)."""
        row = self._db.execute("SELECT file FROM points WHERE key = ?", (key,)).fetchone()
        if row is None or row[0] is None:
            raise KeyError(f"no stored arrays for point {key}")
        with np.load(self.path / row[0], allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}

    # ------------------------------------------------------------------ writing
    def set_grid(self, grid: Grid) -> None:
        """Record ``grid`` as the store's current grid (used by ``export`` and ``status``)."""
        self._execute_write(
            "INSERT OR REPLACE INTO meta (name, value) VALUES ('grid', ?)",
            (canonical_json(grid.to_dict()),),
            what="the grid",
        )

    def record(self, result: PointResult) -> bool:
        """Store one point: arrays first (atomically), then the ledger row.

        Returns
        -------
        bool
            False when the point was already finished (another writer won; nothing changed).

        Raises
        ------
        StoreError
            On a write failure (full disk, read-only file system): the ledger is unchanged.
        """
        if result.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {result.status!r}")
        file = sha = None
        if result.status != "failed":
            data = npz_bytes(result.arrays)
            sha = hashlib.sha256(data).hexdigest()
            file = f"points/{result.key[:2]}/{result.key}-{sha[:16]}.npz"
            try:
                write_atomic(self.path / file, data, self._tmp)
            except OSError as exc:
                raise StoreError(
                    f"cannot write the result of point {dict(result.config)} to store "
                    f"{self.path}: {exc}. Finished points are intact; fix the cause "
                    "(free space, permissions) and run the sweep again to resume."
                ) from exc
        params = (
            result.key,
            canonical_json(dict(result.config)),
            result.status,
            result.error,
            float(result.seconds),
            file,
            sha,
            time.time(),
        )
        return self._execute_write(_UPSERT, params, what=f"point {result.key}") > 0

    def _execute_write(self, sql: str, params: tuple[Any, ...], *, what: str) -> int:
        if self.readonly:
            raise StoreError(f"store {self.path} is open read-only")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                count = self._db.execute(sql, params).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot record {what} in the ledger of store {self.path}: {exc}. "
                "Finished points are intact; fix the cause and run the sweep again to resume."
            ) from exc
        return int(count)

    # ------------------------------------------------------------------ maintenance
    def check_integrity(self, *, deep: bool = False) -> IntegrityReport:
        """Check that every finished row has its file, and list orphans and temporary files.

        Parameters
        ----------
        deep : bool
            Also re-hash every file against the ledger's SHA-256 and load it.
        """
        rows = self._db.execute("SELECT key, status, file, sha256 FROM points").fetchall()
        missing, corrupt, referenced = [], [], set()
        for key, status, file, sha in rows:
            if status == "failed":
                continue
            referenced.add(file)
            path = self.path / file
            if not path.is_file():
                missing.append(key)
            elif deep and not file_intact(path, sha):
                corrupt.append(key)
        files = {p.relative_to(self.path).as_posix() for p in self.path.glob("points/*/*.npz")}
        (quick,) = self._db.execute("PRAGMA quick_check").fetchone()
        return IntegrityReport(
            rows=len(rows),
            missing=tuple(missing),
            corrupt=tuple(corrupt),
            orphans=tuple(sorted(files - referenced)),
            temp_files=tuple(sorted(p.name for p in self._tmp.glob("*"))),
            sqlite=quick,
        )

    def clean(self) -> int:
        """Delete orphan files and stale temporary files; return how many were deleted."""
        remove_stale_temp_files(self._tmp)
        orphans = self.check_integrity().orphans
        for name in orphans:
            (self.path / name).unlink(missing_ok=True)
        return len(orphans)

    def to_dataset(self, grid: Grid | None = None) -> Any:
        """The results of ``grid`` (default: the store's grid) as an ``xarray.Dataset``.

        See :func:`limitsim.sweep_dataset.build_dataset` for the layout.
        """
        from limitsim.sweep_dataset import build_dataset

        grid = grid if grid is not None else self.grid
        if grid is None:
            raise StoreError(f"store {self.path} has no grid yet: run a sweep on it first")
        return build_dataset(self, grid)


def open_store(
    path: str | os.PathLike[str],
    *,
    function: str | None = None,
    readonly: bool = False,
) -> Store:
    """Open the sweep store at ``path``, creating it when ``function`` is given and it is new.

    Parameters
    ----------
    path : path-like
        Store directory (new, empty, or an existing store).
    function : str, optional
        Dotted name of the point function: required to create a store; checked against an
        existing one.
    readonly : bool
        Open for reading only (``status``, ``export``); a store of another limitsim version
        with the same schema can be read.

    Raises
    ------
    IncompatibleStoreError
        Other schema or point function, or (unless ``readonly``) other limitsim version; the
        store is not modified (only ``store.json`` is read).
    StoreError
        ``path`` is not a store, or cannot be created.
    FileNotFoundError
        ``readonly`` and there is no store at ``path``.
    """
    path = Path(path)
    current = limitsim_version()
    identity = path / "store.json"
    if identity.is_file():
        try:
            info = json.loads(identity.read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {identity}: {exc}") from exc
        if info.get("format") != FORMAT or info.get("schema") != SCHEMA:
            raise IncompatibleStoreError(
                f"store {path} has format {info.get('format')!r} schema {info.get('schema')!r}; "
                f"this limitsim {current} reads {FORMAT!r} schema {SCHEMA}. "
                "Nothing was changed; use a new store path."
            )
        if not readonly and info.get("limitsim_version") != current:
            raise IncompatibleStoreError(
                f"store {path} was written by limitsim {info.get('limitsim_version')}, this is "
                f"limitsim {current}: results (keyed by version) cannot be mixed. Nothing was "
                "changed; export it with this version's `sweep export`, or use a new store path."
            )
        if function is not None and info.get("function") != function:
            raise IncompatibleStoreError(
                f"store {path} holds results of {info.get('function')!r}, not {function!r}. "
                "Nothing was changed; use a new store path."
            )
        return Store(path, info, readonly=readonly)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise StoreError(
            f"{path} exists and is not a limitsim sweep store (no store.json); "
            "give a new or empty directory"
        )
    if readonly:
        raise FileNotFoundError(f"no sweep store at {path}")
    if function is None:
        raise ValueError("function is required to create a new store")
    info = {
        "format": FORMAT,
        "schema": SCHEMA,
        "limitsim_version": current,
        "function": function,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        (path / "tmp").mkdir(parents=True, exist_ok=True)
        write_atomic(identity, json.dumps(info, indent=1).encode(), path / "tmp")
    except OSError as exc:
        raise StoreError(f"cannot create a sweep store at {path}: {exc}") from exc
    return Store(path, info, readonly=False)
