"""What the commands write: output paths checked before any work, and strict JSON.

Every command that writes a file calls :func:`output_file` (or :func:`output_directory`) on
its path options before computing, so an unwritable path is a ``limitsim CMD: error: ...``
at once rather than an OSError after the work has finished; every ``--json`` goes through
:func:`print_json`, which writes strict JSON (NaN and ±inf become ``null``).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["jsonable", "output_directory", "output_file", "print_json"]


def output_file(path: str | os.PathLike[str], option: str, *, plot: bool = False) -> Path:
    """Check, before any work, that a file can be written at ``path``; return it as a Path.

    Missing parent directories are created (as the write would need them), and a temporary
    file is created and removed in the parent, so the check holds whoever runs it (root
    included) and on any file system.

    Parameters
    ----------
    path : path-like
        The file to be written (it may exist: it is then overwritten).
    option : str
        The command-line option that named it (``"--out"``), for the messages.
    plot : bool
        The file is a matplotlib figure: its suffix, if any, must be a format matplotlib
        can write.

    Raises
    ------
    ValueError
        The path is a directory, lies under a file, its directory cannot be created or is not
        writable, or (``plot``) its suffix is not a figure format.
    """
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{option} {str(path)!r} is a directory; give a file name")
    if plot and target.suffix:
        from matplotlib.backend_bases import FigureCanvasBase

        formats = FigureCanvasBase.get_supported_filetypes()
        if target.suffix[1:].lower() not in formats:
            raise ValueError(
                f"{option} {str(path)!r}: matplotlib cannot write {target.suffix!r} files; "
                f"use one of {sorted(formats)}"
            )
    output_directory(target.parent, option, named=str(path))
    if target.exists() and not os.access(target, os.W_OK):
        raise ValueError(f"{option} {str(path)!r} exists and is not writable")
    return target


def output_directory(
    path: str | os.PathLike[str], option: str, *, named: str | None = None
) -> Path:
    """Check, before any work, that files can be written in directory ``path`` (created).

    ``named`` is the path the user gave when ``path`` is its parent (for the messages).

    Raises
    ------
    ValueError
        ``path`` lies under a file, cannot be created, or is not writable.
    """
    directory = Path(path)
    given = str(path) if named is None else named
    for parent in (directory, *directory.parents):
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"{option} {given!r}: {str(parent)!r} is a file, not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".limitsim-write-check-")
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(
            f"{option} {given!r}: cannot write in directory {str(directory)!r} ({reason})"
        ) from None
    return directory


def jsonable(value: Any) -> Any:
    """``value`` with only JSON types: NaN and ±inf as None, arrays and tuples as lists.

    Mappings become dicts (keys as str), sequences and arrays lists, numpy scalars Python
    scalars; any other object becomes its ``str``.
    """
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def print_json(value: Any, *, indent: int | None = None) -> None:
    """Print ``value`` as strict JSON (:func:`jsonable`; never NaN or Infinity).

    One line by default; ``indent`` as in :func:`json.dumps`.
    """
    print(json.dumps(jsonable(value), allow_nan=False, indent=indent))
