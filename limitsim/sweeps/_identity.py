"""The identity of a result store: ``store.json``, its compatibility checks, and atomic creation.

``STORE/store.json`` holds the store's format, schema, the limitsim version that wrote it
(part of every point key) and the point function.  :func:`identify` reads it, creates a new
store when asked to, and refuses a store this limitsim cannot use, naming the cause, before
anything is modified.

Creation is atomic: the store is built in a hidden sibling directory and renamed into place
(:func:`limitsim.sweeps._files.create_dir_atomic`), so a kill leaves no store or a complete one,
and of two processes creating it at once one creates it and the other opens it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from limitsim.sweeps._errors import IncompatibleStoreError, StoreError
from limitsim.sweeps._files import create_dir_atomic, write_atomic
from limitsim.sweeps._ledger import create_ledger
from limitsim.sweeps.grid import SCHEMA

__all__ = ["FORMAT", "identify", "limitsim_version"]

FORMAT = "limitsim-sweep-store"


def limitsim_version() -> str:
    """The installed limitsim version (as in ``limitsim.__version__``)."""
    try:
        return version("limitsim")
    except PackageNotFoundError:  # pragma: no cover - source tree without installation
        return "0.0.0+unknown"


def _read_identity(path: Path) -> dict[str, Any] | None:
    identity = path / "store.json"
    if not identity.is_file():
        return None
    try:
        info = json.loads(identity.read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {identity}: {exc}") from exc
    if not isinstance(info, dict) or not all(
        isinstance(info.get(name), str) for name in ("format", "function", "limitsim_version")
    ):
        raise StoreError(
            f"cannot read {identity}: it must be a JSON object with the strings 'format', "
            "'function' and 'limitsim_version' (it was written by limitsim when the store was "
            "created; restore it from a copy or use a new store path)"
        )
    return info


def _is_empty(path: Path) -> bool:
    """Whether ``path`` is absent, an empty directory, or the ``tmp/`` an older limitsim left.

    limitsim 0.1.0 created ``tmp/`` before ``store.json``; a kill in between left a directory
    holding only ``tmp/`` (with at most a partial ``store.json`` temporary file), which is
    cleared here so that the store can be created.
    """
    if not path.exists():
        return True
    if not path.is_dir():
        return False
    entries = list(path.iterdir())
    if [e.name for e in entries] == ["tmp"] and entries[0].is_dir():
        if all(f.name.startswith("store.") and f.suffix == ".tmp" for f in entries[0].iterdir()):
            shutil.rmtree(entries[0], ignore_errors=True)
            entries = list(path.iterdir())
    return not entries


def _create(path: Path, function: str) -> None:
    """Create a complete store at ``path`` atomically (or find one a concurrent caller made)."""
    info = {
        "format": FORMAT,
        "schema": SCHEMA,
        "limitsim_version": limitsim_version(),
        "function": function,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }

    def populate(staging: Path) -> None:
        for sub in ("points", "tmp"):
            (staging / sub).mkdir()
        create_ledger(staging / "ledger.sqlite")
        write_atomic(staging / "store.json", json.dumps(info, indent=1).encode(), staging / "tmp")

    try:
        if not _is_empty(path):
            if (path / "store.json").is_file():
                return  # a concurrent caller created the store after this one looked
            raise StoreError(
                f"{path} exists and is not a limitsim sweep store (no store.json); "
                "give a new or empty directory"
            )
        if not create_dir_atomic(path, populate) and not (path / "store.json").is_file():
            raise StoreError(
                f"{path} was filled by another process while this one created a store there, "
                "and it is not a limitsim sweep store; give a new or empty directory"
            )
    except (OSError, sqlite3.Error) as exc:  # sqlite3: creating the ledger
        raise StoreError(f"cannot create a sweep store at {path}: {exc}") from exc


def identify(path: Path, *, function: str | None, readonly: bool) -> dict[str, Any]:
    """The parsed ``store.json`` of the store at ``path``, created first when new and writable.

    Parameters and errors as :func:`limitsim.sweeps.store.open_store`; nothing is modified unless a
    new store is created.
    """
    current = limitsim_version()
    info = _read_identity(path)
    if info is None:
        if readonly:
            if path.exists() and (not path.is_dir() or any(path.iterdir())):
                raise StoreError(f"{path} is not a limitsim sweep store (no store.json)")
            raise FileNotFoundError(f"no sweep store at {path}")
        if function is None:
            raise ValueError("function is required to create a new store")
        _create(path, function)
        info = _read_identity(path)
        assert info is not None  # _create leaves a store.json or raises
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
    return info
