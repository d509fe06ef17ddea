"""Point functions for tests/test_sweep.py and tests/test_store.py.

They live in a module of their own so that worker processes (local workers started by
spawn, dask workers, subprocesses of the kill test) import them by name.  Each is
deterministic given the point: randomness comes from ``limitsim.point_seed``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from limitsim import point_seed


def noisy(point):
    """Scalar, fixed-shape and depth-dependent-shape results, seeded by the point."""
    time.sleep(float(os.environ.get("LIMITSIM_TEST_SLEEP", "0.002")))
    rng = np.random.default_rng(point_seed(point))
    return {
        "y": point["x"] * 2.0,
        "noise": rng.standard_normal(3),
        "curve": np.arange(point["x"] % 4 + 1.0),
    }


def noisy_batch(points):
    """Batched version of :func:`noisy`, also reporting each call's batch size."""
    return [{**noisy(p), "batch_len": len(points)} for p in points]


def flaky(point):
    """Fails at x == 3, diverges at x == 5, otherwise :func:`noisy`."""
    if point["x"] == 3:
        raise ValueError(f"bad point x={point['x']}")
    return {**noisy(point), "diverged": point["x"] == 5}


def fails_once(point):
    """Fails at x == 1 until a marker file in ``point["marker_dir"]`` exists."""
    marker = Path(point["marker_dir"]) / "failed-once"
    if point["x"] == 1 and not marker.exists():
        marker.write_text("x")
        raise RuntimeError("transient failure")
    return noisy(point)


def dies_once(point):
    """Kills its own process (os._exit) at x == die_at on the first attempt (every attempt
    when ``point["always"]``)."""
    marker = Path(point["marker_dir"]) / f"died-{point['x']}"
    if point["x"] == point["die_at"] and (point.get("always") or not marker.exists()):
        marker.write_text(str(os.getpid()))
        os._exit(3)
    return noisy(point)


def bad_output(point):
    """Returns results the store cannot hold (a string, a reserved name)."""
    if point["x"] == 0:
        return {"y": "text"}
    if point["x"] == 1:
        return {"status": 1.0}
    return [1.0]


def hangs(point):
    """Writes its process id to ``point["marker_dir"]``, then sleeps for a minute."""
    (Path(point["marker_dir"]) / f"pid-{os.getpid()}").write_text("")
    time.sleep(60)
    return {"y": 0.0}
