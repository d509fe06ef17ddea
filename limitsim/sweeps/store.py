"""The result store of a sweep: a SQLite ledger plus one ``.npz`` file per finished point.

Layout of a store directory::

    STORE/store.json                 identity: format, schema, limitsim version, point function
    STORE/ledger.sqlite              table ``points`` (key, config, status, error, seconds,
                                     attempts, file, sha256, finished) and table ``meta`` (grid)
    STORE/points/ab/<key>-<sha>.npz  the arrays of a done or diverged point (content-addressed)
    STORE/tmp/                       temporary files of writes in progress
    STORE/quarantine/                damaged result files, moved aside (kept for inspection)

Creation is atomic, and a store this limitsim cannot use is refused before anything is modified
(:mod:`limitsim.sweeps._identity`).

Crash safety (a kill at any moment leaves no half-written result): the arrays are written
atomically first (:mod:`limitsim.sweeps._files`: temporary file, ``fsync``, ``os.replace``,
directory ``fsync``); only then is the ledger row committed, in one SQLite transaction (WAL
journal, 60 s busy timeout).  A point is finished exactly when its row is committed.  A kill
before the commit leaves an *orphan* file (reported by :meth:`Store.check_integrity`, never
counted, rewritten identically when the point is re-run) or a temporary file (deleted when a
writer next opens the store).  ``synchronous=NORMAL`` makes commits survive a killed process;
a power cut may lose the last commits (never corrupt the ledger): those points are re-run.

Verification (the store never returns wrong data): every :meth:`Store.load` checks the file
against the SHA-256 its row records; a missing, changed, truncated or swapped file raises
:class:`DamagedResultError`, and :meth:`Store.quarantine` moves it to ``quarantine/`` and
deletes its row, so the next sweep run recomputes the point.  The ledger is checked when opened
and on every read (:mod:`limitsim.sweeps._ledger`): a damaged ledger raises :class:`StoreError`
naming the store and how to recover.

Writers: :func:`limitsim.run_sweep` writes only from the calling (parent) process; workers
return results in memory, so the store needs no shared file system on a cluster.  Several
processes may still write the same store at once: each row is an upsert in a ``BEGIN
IMMEDIATE`` transaction that replaces only a *failed* row (the first finished result of a point
wins), and file names are content-addressed, so concurrent writers never corrupt the store.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from limitsim.sweeps._errors import (
    DamagedResultError,
    DamagedResultWarning,
    IncompatibleStoreError,
    StoreError,
)
from limitsim.sweeps._files import (
    file_intact,
    npz_bytes,
    remove_stale_temp_files,
    write_atomic,
)
from limitsim.sweeps._identity import FORMAT as FORMAT
from limitsim.sweeps._identity import identify
from limitsim.sweeps._identity import limitsim_version as limitsim_version
from limitsim.sweeps._ledger import STATUSES, Ledger
from limitsim.sweeps.dataset import build_dataset
from limitsim.sweeps.grid import Grid, canonical_json

__all__ = [
    "STATUSES",
    "DamagedResultError",
    "DamagedResultWarning",
    "IncompatibleStoreError",
    "IntegrityReport",
    "PointResult",
    "Store",
    "StoreError",
    "open_store",
]


@dataclass(frozen=True, kw_only=True)
class PointResult:
    """Outcome of one grid point, as returned by a worker and recorded by :meth:`Store.record`.

    Attributes
    ----------
    key : str
        :func:`limitsim.sweeps.grid.point_key` of ``config``.
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
    quarantined : tuple of str
        Damaged files moved to ``quarantine/`` (their points were or will be recomputed).
    """

    rows: int
    missing: tuple[str, ...]
    corrupt: tuple[str, ...]
    orphans: tuple[str, ...]
    temp_files: tuple[str, ...]
    sqlite: str
    quarantined: tuple[str, ...] = ()

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
        if not readonly:
            try:
                for sub in ("points", "tmp"):
                    (path / sub).mkdir(exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot open store {path} for writing: {exc}") from exc
        self._ledger = Ledger(path, readonly=readonly)
        if not readonly:
            remove_stale_temp_files(self._tmp)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the ledger connection."""
        self._ledger.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reading
    @property
    def grid(self) -> Grid | None:
        """The grid of the latest sweep run on this store (None before the first)."""
        data = self._ledger.grid()
        if data is None:
            return None
        try:
            return Grid.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"store {self.path} holds an invalid grid: {exc}") from None

    def entries(self) -> dict[str, tuple[str, str, float]]:
        """Key → (status, error text, seconds) of every ledger row."""
        return self._ledger.entries()

    def rows(self) -> list[dict[str, Any]]:
        """Every ledger row as a dict (``config`` parsed), in order of completion."""
        return self._ledger.rows()

    def _verified_bytes(self, key: str) -> bytes:
        """The bytes of a finished point's file, checked against its SHA-256."""
        row = self._ledger.file(key)
        if row is None or row[0] is None:
            raise KeyError(f"no stored arrays for point {key}")
        file, sha = row[0], row[1]
        try:
            data = (self.path / file).read_bytes()
        except FileNotFoundError:
            raise DamagedResultError(self.path, {key: f"file {file} is missing"}) from None
        except OSError as exc:
            raise DamagedResultError(self.path, {key: f"cannot read {file}: {exc}"}) from None
        if hashlib.sha256(data).hexdigest() != sha:
            why = f"file {file} does not match its SHA-256 (changed, truncated or swapped)"
            raise DamagedResultError(self.path, {key: why})
        return data

    def load(self, key: str) -> dict[str, NDArray[Any]]:
        """The arrays of a done or diverged point, verified against the recorded SHA-256.

        Raises
        ------
        KeyError
            The point has no arrays (not finished, or failed).
        DamagedResultError
            Its file is missing or damaged (:meth:`quarantine` it; the point is then re-run).
        """
        data = self._verified_bytes(key)
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                return {name: npz[name] for name in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:  # written damaged
            raise DamagedResultError(self.path, {key: f"does not load: {exc}"}) from None

    def verify(self, key: str) -> None:
        """Check a finished point's file against its SHA-256 (DamagedResultError if not)."""
        self._verified_bytes(key)

    # ------------------------------------------------------------------ writing
    def set_grid(self, grid: Grid) -> None:
        """Record ``grid`` as the store's current grid (used by ``export`` and ``status``)."""
        self._ledger.set_grid(canonical_json(grid.to_dict()))

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
        return self._ledger.upsert(params, what=f"point {result.key}")

    def quarantine(self, keys: Iterable[str]) -> int:
        """Move the files of ``keys`` to ``quarantine/`` and delete their rows.

        The points become pending, so the next sweep run recomputes them.  Used for the keys of
        a :class:`DamagedResultError`.

        Returns
        -------
        int
            Number of rows deleted.
        """
        if self.readonly:
            raise StoreError(f"store {self.path} is open read-only")
        deleted = 0
        for key in keys:
            row = self._ledger.file(key)
            if row is None:
                continue
            file = row[0]
            if file is not None and (self.path / file).exists():
                target = self.path / "quarantine" / Path(file).name
                try:
                    target.parent.mkdir(exist_ok=True)
                    os.replace(self.path / file, target)
                except OSError as exc:
                    raise StoreError(
                        f"cannot move the damaged file {file} of store {self.path} to "
                        f"quarantine/: {exc}"
                    ) from exc
            deleted += self._ledger.delete(key, file)
        return deleted

    # ------------------------------------------------------------------ maintenance
    def check_integrity(self, *, deep: bool = False) -> IntegrityReport:
        """Check that every finished row has its file, and list orphans and temporary files.

        Parameters
        ----------
        deep : bool
            Also re-hash every file against the ledger's SHA-256 and load it.
        """
        rows = self._ledger.files()
        quick = self._ledger.quick_check()
        missing, corrupt, referenced = [], [], set()
        for key, status, file, sha in rows:
            if status == "failed":
                continue
            referenced.add(file)
            path = self.path / str(file)
            if not path.is_file():
                missing.append(key)
            elif deep and not file_intact(path, str(sha)):
                corrupt.append(key)
        files = {p.relative_to(self.path).as_posix() for p in self.path.glob("points/*/*.npz")}
        return IntegrityReport(
            rows=len(rows),
            missing=tuple(missing),
            corrupt=tuple(corrupt),
            orphans=tuple(sorted(files - referenced)),
            temp_files=tuple(sorted(p.name for p in self._tmp.glob("*"))),
            sqlite=quick,
            quarantined=tuple(sorted(p.name for p in self.path.glob("quarantine/*"))),
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

        See :func:`limitsim.sweeps.dataset.build_dataset` for the layout.

        Raises
        ------
        DamagedResultError
            Some result files of the grid are missing or damaged (none is used).
        """
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
        ``path`` is not a store, cannot be created, or its ledger is damaged (the message says
        how to recover).
    FileNotFoundError
        ``readonly`` and there is no store at ``path``.
    """
    path = Path(path)
    return Store(path, identify(path, function=function, readonly=readonly), readonly=readonly)
