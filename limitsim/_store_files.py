"""Crash-safe files of the result store: deterministic ``.npz`` bytes, atomic writes.

A write goes to ``tmp_dir/<stem>.<host>.<pid>.<random>.tmp``, is ``fsync``-ed, moved into place
with ``os.replace`` (atomic on POSIX) and the target directory is ``fsync``-ed, so a reader
sees either no file or the whole file.  The host and pid in the temporary name let a later
writer delete what a killed writer left behind (:func:`remove_stale_temp_files`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
import socket
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["file_intact", "npz_bytes", "remove_stale_temp_files", "write_atomic"]

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
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, tmp_dir: Path) -> None:
    """Write ``data`` to ``path`` via a fsync-ed temporary file and ``os.replace``."""
    tmp = tmp_dir / f"{path.stem}.{_HOST}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
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


def remove_stale_temp_files(tmp_dir: Path) -> None:
    """Delete the temporary files in ``tmp_dir`` of writers (on this host) that are dead."""
    for tmp in tmp_dir.glob("*.tmp"):
        parts = tmp.name.rsplit(".", 3)
        host = parts[0].split(".", 1)[-1]
        if host == _HOST and parts[1].isdigit() and not pid_alive(int(parts[1])):
            with contextlib.suppress(OSError):
                tmp.unlink()


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
