"""The ledger of a result store: one SQLite row per finished or failed point, and the grid.

Table ``points`` (key, config, status, error, seconds, attempts, file, sha256, finished) and
table ``meta`` (name → value; the grid as JSON), in ``STORE/ledger.sqlite``: WAL journal,
``synchronous=NORMAL``, 60 s busy timeout, each write one ``BEGIN IMMEDIATE`` transaction.

A ledger that lies is worse than none, so opening it runs ``PRAGMA integrity_check`` (a
flipped byte in a key leaves the table and its index disagreeing, which would hide a finished
point from its writers forever), every read checks the values it returns, and every SQLite error
becomes a :class:`StoreError` naming the store and how to recover: move the ledger aside and run
the sweep again, which recomputes the points and rewrites their content-addressed files
identically.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from limitsim.sweeps._errors import StoreError

__all__ = ["STATUSES", "Ledger", "StoreError", "create_ledger"]

#: Ledger statuses: ``done`` and ``diverged`` points are finished (have a file); ``failed`` ones
#: are re-run only on request.
STATUSES = ("done", "diverged", "failed")
_SCHEMA = """
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


def create_ledger(path: Path) -> None:
    """Create an empty ledger file at ``path`` (WAL journal, both tables)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
    finally:
        db.close()


class Ledger:
    """The open ledger of the store at ``store`` (checked on opening; see the module doc)."""

    def __init__(self, store: Path, *, readonly: bool) -> None:
        self.store = store
        self.readonly = readonly
        self._path = store / "ledger.sqlite"
        if readonly and not self._path.is_file():
            raise StoreError(f"store {store} has no ledger ({self._path} is missing)")
        try:
            if readonly:
                uri = f"{self._path.resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, timeout=60)
            else:
                self._db = sqlite3.connect(self._path, timeout=60, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        try:
            with self._reading():
                if not readonly:
                    self._db.execute("PRAGMA journal_mode=WAL")
                    self._db.execute("PRAGMA synchronous=NORMAL")
                    self._db.executescript(_SCHEMA)
                problems = [row[0] for row in self._db.execute("PRAGMA integrity_check(5)")]
            if problems != ["ok"]:
                raise self._damaged(f"SQLite integrity check: {'; '.join(problems)}")
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    # ------------------------------------------------------------------ errors
    def _damaged(self, what: str) -> StoreError:
        return StoreError(
            f"the ledger of store {self.store} is damaged ({what}). To recover, move the ledger "
            f"aside (`mv {self._path} {self._path}.damaged`, with any ledger.sqlite-wal and "
            "-shm files) and run the sweep again: its points are recomputed and their result "
            "files rewritten identically."
        )

    def _error(self, exc: sqlite3.Error) -> StoreError:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return StoreError(
                f"the ledger of store {self.store} is locked by another process ({exc}); "
                "try again when it has finished"
            )
        return self._damaged(f"{type(exc).__name__}: {exc}")

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Turn the SQLite errors of a read into a :class:`StoreError` saying how to recover."""
        try:
            yield
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    # ------------------------------------------------------------------ reading
    def grid(self) -> dict[str, Any] | None:
        """The stored grid as a dict (``Grid.to_dict``), None before the first sweep."""
        with self._reading():
            row = self._db.execute("SELECT value FROM meta WHERE name = 'grid'").fetchone()
        if row is None:
            return None
        try:
            grid = json.loads(row[0])
        except (TypeError, ValueError) as exc:
            raise self._damaged(f"unreadable grid: {exc}") from None
        if not isinstance(grid, dict):
            raise self._damaged("the grid is not a JSON object")
        return grid

    def entries(self) -> dict[str, tuple[str, str, float]]:
        """Key → (status, error text, seconds) of every row."""
        with self._reading():
            rows = self._db.execute("SELECT key, status, error, seconds FROM points").fetchall()
        out = {}
        for key, status, error, seconds in rows:
            if not (isinstance(key, str) and len(key) == 64 and status in STATUSES):
                raise self._damaged(f"row {key!r}: invalid key or status {status!r}")
            if not isinstance(error, str) or not isinstance(seconds, int | float):
                raise self._damaged(f"row {key!r}: invalid error text or time")
            out[key] = (status, error, float(seconds))
        return out

    def rows(self) -> list[dict[str, Any]]:
        """Every row as a dict (``config`` parsed), in order of completion."""
        with self._reading():
            cursor = self._db.execute("SELECT * FROM points ORDER BY finished")
            names = [c[0] for c in cursor.description]
            rows = [dict(zip(names, values, strict=True)) for values in cursor]
        for row in rows:
            try:
                row["config"] = json.loads(row["config"])
            except (TypeError, ValueError) as exc:
                raise self._damaged(f"row {row['key']!r}: unreadable config: {exc}") from None
        return rows

    def file(self, key: str) -> tuple[str | None, str | None] | None:
        """(file, sha256) of the row of ``key``, None without a row."""
        with self._reading():
            row = self._db.execute(
                "SELECT file, sha256 FROM points WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else (row[0], row[1])

    def files(self) -> list[tuple[str, str, str | None, str | None]]:
        """(key, status, file, sha256) of every row."""
        with self._reading():
            return self._db.execute("SELECT key, status, file, sha256 FROM points").fetchall()

    def quick_check(self) -> str:
        """``PRAGMA quick_check`` ("ok" when sound)."""
        with self._reading():
            return str(self._db.execute("PRAGMA quick_check").fetchone()[0])

    # ------------------------------------------------------------------ writing
    def set_grid(self, text: str) -> None:
        """Record the grid (canonical JSON)."""
        sql = "INSERT OR REPLACE INTO meta (name, value) VALUES ('grid', ?)"
        self.write(sql, (text,), what="the grid")

    def upsert(self, row: tuple[Any, ...], *, what: str) -> bool:
        """Insert a point's row, or replace its *failed* row; False when it was finished."""
        return self.write(_UPSERT, row, what=what) > 0

    def delete(self, key: str, file: str | None) -> int:
        """Delete the row of ``key`` if it still refers to ``file``; the number deleted."""
        sql = "DELETE FROM points WHERE key = ? AND file IS ?"
        return self.write(sql, (key, file), what=f"point {key}")

    def write(self, sql: str, params: tuple[Any, ...], *, what: str) -> int:
        """Run one statement in its own ``BEGIN IMMEDIATE`` transaction; the rows changed."""
        if self.readonly:
            raise StoreError(f"store {self.store} is open read-only")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                count = self._db.execute(sql, params).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            if not isinstance(exc, sqlite3.OperationalError) or (
                "readonly" in str(exc) and os.access(self._path, os.W_OK)
            ):  # malformed, or a damaged header's version byte that makes SQLite refuse writes
                raise self._error(exc) from None
            raise StoreError(
                f"cannot record {what} in the ledger of store {self.store}: {exc}. "
                "Finished points are intact; fix the cause and run the sweep again to resume."
            ) from exc
        return int(count)
