"""Sweeps at scale: run a point function over a :class:`~limitsim.sweeps.grid.Grid`, into a store.

The point function is a top-level (importable, picklable) function of one grid point,
``fn(point: dict) -> dict[str, scalar | ndarray]``.  It derives its randomness from
:func:`~limitsim.sweeps.grid.point_seed` (never from the execution order) and may return
``diverged=True`` (the point is recorded as diverged).  An exception marks the point failed,
with its error text; the sweep always completes.

With ``batch_axes``, points that differ only along those axes (e.g. ``eta``, ``a`` and
``seed`` for one network shape) are grouped into one task (at most ``batch_size`` points) and
the function is called with the *list* of points, returning one dict per point: this is how a
batched trainer such as :func:`limitsim.finite.train.train_finite_batch` trains them in one array
computation.

Executors (:mod:`limitsim.sweeps._exec`): local processes by default (all cores, nothing to set
up); ``executor="dask"`` with ``scheduler="tcp://HOST:PORT"`` for a running dask.distributed
cluster, or without a scheduler for a ``LocalCluster`` on 127.0.0.1; ``executor="inline"`` runs
in the calling process.  Results go to a resumable store (:mod:`limitsim.sweeps.store`) written by
the calling process only, and come back as an ``xarray.Dataset`` (:mod:`limitsim.sweeps.dataset`):
the same grid gives identical Datasets whichever executor, worker count or batching ran it.

The runner is :mod:`limitsim.sweeps._run`; this module gathers the public names.  Sweeps are
also described as data (:class:`limitsim.sweeps.spec.SweepSpec`, TOML files, the
:data:`PRESETS`) for ``limitsim sweep run``; a spec names its point function from a registry
(:func:`register_point_function`), never an arbitrary import path unless the user opts in
(``SECURITY.md``).
"""

from __future__ import annotations

from limitsim.sweeps._registry import register_point_function
from limitsim.sweeps._run import EXECUTORS, resolve_function, run_sweep
from limitsim.sweeps._run import _check_address as _check_address  # limitsim.commands.figures
from limitsim.sweeps.grid import Grid, point_seed
from limitsim.sweeps.spec import PRESETS, SweepSpec, get_preset, load_spec

__all__ = [
    "EXECUTORS",
    "PRESETS",
    "Grid",
    "SweepSpec",
    "get_preset",
    "load_spec",
    "point_seed",
    "register_point_function",
    "resolve_function",
    "run_sweep",
]
