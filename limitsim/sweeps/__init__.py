"""Sweeps: grids of points, their executors, the verified resumable store and datasets."""

from __future__ import annotations

from limitsim.sweeps.dataset import ResultStore, build_dataset, summarize
from limitsim.sweeps.grid import Grid, canonical_json, point_key, point_seed
from limitsim.sweeps.spec import (
    PRESETS,
    SweepSpec,
    demo_point,
    function_name,
    get_point_function,
    get_preset,
    load_spec,
    point_functions,
    register_point_function,
)
from limitsim.sweeps.store import (
    STATUSES,
    DamagedResultError,
    DamagedResultWarning,
    IncompatibleStoreError,
    IntegrityReport,
    PointResult,
    Store,
    StoreError,
    open_store,
)
from limitsim.sweeps.sweep import EXECUTORS, resolve_function, run_sweep

__all__ = [
    "EXECUTORS",
    "PRESETS",
    "STATUSES",
    "DamagedResultError",
    "DamagedResultWarning",
    "Grid",
    "IncompatibleStoreError",
    "IntegrityReport",
    "PointResult",
    "ResultStore",
    "Store",
    "StoreError",
    "SweepSpec",
    "build_dataset",
    "canonical_json",
    "demo_point",
    "function_name",
    "get_point_function",
    "get_preset",
    "load_spec",
    "open_store",
    "point_functions",
    "point_key",
    "point_seed",
    "register_point_function",
    "resolve_function",
    "run_sweep",
    "summarize",
]
