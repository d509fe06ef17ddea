"""Assemble the results of a sweep store into one ``xarray.Dataset`` indexed by the grid axes.

Layout (``build_dataset``):

- dimensions: the grid axes, in order, with their values as coordinates; a result array of
  shape ``s`` adds dimensions ``<name>_dim0, <name>_dim1, ...``;
- one float64 variable per result name, NaN where the point is not ``done``: pending
  (not run yet), filtered, failed or diverged (the arrays a diverged point returned stay in
  the store, :meth:`limitsim.sweeps.store.Store.load`).  Arrays of one name with different shapes at
  different points are NaN-padded to the largest shape (e.g. per-layer values across depths);
- ``status`` (str): ``done``, ``diverged``, ``failed``, ``pending`` or ``filtered``;
- ``error`` (str): the error text of failed points, "" elsewhere;
- ``attrs``: point function, limitsim version, store schema, grid (JSON).

Timings are not part of the Dataset (they are in the ledger and ``limitsim sweep status``), so
the Dataset is identical whichever executor, worker count or batching produced it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from limitsim.sweeps._errors import DamagedResultError
from limitsim.sweeps.grid import SCHEMA, Grid, canonical_json, point_key

__all__ = ["ResultStore", "build_dataset", "summarize"]


class ResultStore(Protocol):
    """What the Dataset is built from: the read side of :class:`limitsim.sweeps.store.Store`."""

    path: Path
    function: str
    version: str

    def entries(self) -> dict[str, tuple[str, str, float]]:
        """Key → (status, error text, seconds) of every ledger row."""
        ...

    def load(self, key: str) -> dict[str, NDArray[Any]]:
        """The arrays of a finished point, verified (DamagedResultError if not intact)."""
        ...

    def verify(self, key: str) -> None:
        """Check a finished point's file (DamagedResultError if not intact)."""
        ...


def build_dataset(store: ResultStore, grid: Grid) -> Any:
    """The results of ``grid`` in ``store`` as an :class:`xarray.Dataset` (see module doc).

    Every finished point's file is verified against its SHA-256 (done points' files when
    loaded, diverged points' files by hash alone).

    Raises
    ------
    ValueError
        When one result name has arrays of different numbers of dimensions.
    limitsim.sweeps.store.DamagedResultError
        Listing every point of the grid whose file is missing or damaged (none is used).
    """
    import xarray as xr

    entries = store.entries()
    damaged: dict[str, str] = {}
    status = np.full(grid.shape, "pending", dtype=object)
    error = np.full(grid.shape, "", dtype=object)
    found: dict[str, list[tuple[tuple[int, ...], np.ndarray]]] = {}
    for index, point, kept in grid.cells():
        key = point_key(point, store.function, store.version)
        entry = entries.get(key)
        if not kept:
            status[index] = "filtered"
        elif entry is not None:
            status[index], error[index] = entry[0], entry[1]
            try:
                if entry[0] == "done":
                    for name, array in store.load(key).items():
                        found.setdefault(name, []).append((index, array))
                elif entry[0] == "diverged":
                    store.verify(key)
            except DamagedResultError as exc:
                damaged.update(exc.damaged)
    if damaged:
        raise DamagedResultError(store.path, damaged)
    data: dict[str, Any] = {}
    for name in sorted(found):
        items = found[name]
        ndims = {a.ndim for _, a in items}
        if len(ndims) > 1:
            raise ValueError(f"result {name!r} has arrays of different ndim {sorted(ndims)}")
        extra = tuple(int(n) for n in np.max([a.shape for _, a in items], axis=0, initial=0))
        out = np.full(grid.shape + extra, np.nan)
        for index, array in items:
            out[index + tuple(slice(0, n) for n in array.shape)] = array
        dims = grid.names + tuple(f"{name}_dim{k}" for k in range(len(extra)))
        data[name] = (dims, out)
    data["status"] = (grid.names, status.astype(str))
    data["error"] = (grid.names, error.astype(str))
    coords = {name: np.asarray(values) for name, values in grid.axes.items()}
    attrs = {
        "function": store.function,
        "limitsim_version": store.version,
        "store_schema": SCHEMA,
        "grid": canonical_json(grid.to_dict()),
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def summarize(store: ResultStore, grid: Grid) -> dict[str, Any]:
    """Counts, timings and failures of ``grid`` in ``store``, without loading any arrays.

    Returns
    -------
    dict
        ``points`` (kept grid points), ``counts`` (status → number, statuses of
        :mod:`limitsim.sweeps.dataset`), ``seconds`` (total point-function time of finished
        and failed points), ``mean_seconds``, ``failures`` (list of ``{"point", "error"}``
        with the first line of each error), ``function``, ``limitsim_version``.
    """
    entries = store.entries()
    counts = dict.fromkeys(("done", "diverged", "failed", "pending", "filtered"), 0)
    seconds, failures = 0.0, []
    for _, point, kept in grid.cells():
        entry = entries.get(point_key(point, store.function, store.version))
        status = "filtered" if not kept else "pending" if entry is None else entry[0]
        counts[status] += 1
        if kept and entry is not None:
            seconds += entry[2]
            if status == "failed":
                failures.append({"point": point, "error": entry[1].partition("\n")[0]})
    ran = counts["done"] + counts["diverged"] + counts["failed"]
    return {
        "function": store.function,
        "limitsim_version": store.version,
        "points": sum(counts.values()) - counts["filtered"],
        "counts": counts,
        "seconds": seconds,
        "mean_seconds": seconds / ran if ran else float("nan"),
        "failures": failures,
    }
