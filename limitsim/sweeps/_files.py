"""Crash-safe files of the result store: deterministic ``.npz`` bytes, atomic writes and creation.

A write goes to ``tmp_dir/<stem>.<host>.<pid>.<random>.tmp``, is ``fsync``-ed, moved into place
with ``os.replace`` (atomic on POSIX) and the target directory is ``fsync``-ed, so a reader
sees either no file or the whole file.  The host and pid in the temporary name let a later
writer delete what a killed writer left behind (:func:`remove_stale_temp_files`).

A directory is created the same way (:func:`create_dir_atomic`): filled in a hidden sibling
``.<name>.<host>.<pid>.<random>.creating``, then renamed into place, so it appears complete or
not at all, and of two processes creating it at once exactly one rename succeeds.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import io
import os
import secrets
import shutil
import socket
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "create_dir_atomic",
    "file_intact",
    "fsync_dir",
    "npz_bytes",
    "remove_stale_temp_files",
    "temp_name",
    "write_atomic",
]

_HOST = socket.gethostname()


def npz_bytes(arrays: Mapping[str, NDArray[Any]]) -> bytes:
    """Deterministic ``.npz`` bytes (sorted names, fixed timestamps, no pickles)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w", force_zip64=True) as fh:
                array = np.asarray(arrays[name], order="C")
                np.lib.format.write_array(fh, array, allow_pickle=False)
    return buffer.getvalue()


def fsync_dir(path: Path) -> None:
    """``fsync`` a directory (makes a rename or a new entry in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(stem: str, suffix: str = ".tmp") -> str:
    """``<stem>.<host>.<pid>.<random><suffix>``: a temporary name owned by this process."""
    return f"{stem}.{_HOST}.{os.getpid()}.{secrets.token_hex(4)}{suffix}"


def _stale(name: str, suffix: str) -> bool:
    """Whether ``name`` is a :func:`temp_name` of a dead process on this host."""
    if not name.endswith(suffix):
        return False
    head = name[: -len(suffix)].rpartition(".")[0]
    head, _, pid = head.rpartition(".")
    return head.endswith(f".{_HOST}") and pid.isdigit() and not pid_alive(int(pid))


def write_atomic(path: Path, data: bytes, tmp_dir: Path) -> None:
    """Write ``data`` to ``path`` via a fsync-ed temporary file and ``os.replace``."""
    tmp = tmp_dir / temp_name(path.stem)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        path.parent.mkdir(exist_ok=True)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(tmp_dir: Path, suffix: str = ".tmp") -> None:
    """Delete the temporary files in ``tmp_dir`` of writers (on this host) that are dead.

    Parameters
    ----------
    tmp_dir : Path
        Directory holding :func:`temp_name` files.
    suffix : str
        Their suffix.
    """
    for tmp in tmp_dir.glob(f"*{glob.escape(suffix)}"):
        if _stale(tmp.name, suffix):
            with contextlib.suppress(OSError):
                tmp.unlink()


def create_dir_atomic(path: Path, populate: Callable[[Path], None]) -> bool:
    """Create the directory ``path``, filled by ``populate``, in one atomic rename.

    ``populate(staging)`` fills a hidden sibling directory, which is ``fsync``-ed and renamed
    to ``path``; a kill at any moment leaves either no ``path`` or a complete one (a staging
    directory of a dead process is deleted by the next call).  An empty directory at ``path``
    is replaced.

    Returns
    -------
    bool
        True when this call created ``path``; False when ``path`` became non-empty meanwhile
        (another process created it first): the caller then checks what is there.

    Raises
    ------
    OSError
        ``path`` cannot be created (no permission, read-only or full file system).
    """
    parent = path.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}"
    for old in parent.glob(f"{glob.escape(prefix)}.*.creating"):
        if _stale(old.name, ".creating"):
            shutil.rmtree(old, ignore_errors=True)
    staging = parent / temp_name(prefix, ".creating")
    staging.mkdir()
    try:
        populate(staging)
        fsync_dir(staging)
        try:
            os.rename(staging, path)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                return False
            raise
        fsync_dir(parent)
        return True
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def file_intact(path: Path, sha: str) -> bool:
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha:
        return False
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            for name in npz.files:
                npz[name]
    except (OSError, ValueError, zipfile.BadZipFile):
        return False
    return True
