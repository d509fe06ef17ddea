"""Sweep throughput and overheads (ratios measured in the same run).

- ``test_local_executor_throughput``: a 64-point grid of small finite networks
  (:func:`limitsim.finite.train.train_finite`, width 64, depth 16) through ``run_sweep`` with local
  processes (end to end: pool start-up, store writes, Dataset) against the baseline, a plain
  sequential loop over the same points in this process with one BLAS thread (the workers get
  ``cores // workers`` threads each; the finite-network kernels are serial numba code).
  Target: ratio >= 1.8 on 2 cores.  The workers are forked
  (:func:`limitsim.sweeps._exec.start_method`), so they start with the parent's compiled
  kernels, as in a sweep started from a script that ran one point first.  Also reported: the
  ratio against the same loop with the default thread counts (``ratio_vs_threaded_loop``),
  the wall time of a sweep of 2 trivial points after a first one (pool start-up and store),
  the ratio without it, and the CPU time that ``workers`` busy processes get relative to one
  (``available_parallelism``: below 2 on a shared 2-core machine, which caps the ratio).
- ``test_store_overhead``: per-point cost of the store (atomic ``.npz`` + ledger commit) with
  the inline executor and a trivial point function, as a fraction of a 1-second task.
- ``test_executor_overhead``: per-point cost of a local process pool and of dask (a
  pre-started loopback ``LocalCluster``, 1 worker process), from the slope of wall time over
  grids of 16 and 96 trivial points (start-up excluded), as a fraction of a 1-second task.
- ``test_dask_one_second_tasks``: 6 one-second tasks on 2 dask workers; overhead = wall time
  over the ideal 3 s.  Target for every overhead: under 5% of a 1-second task.

Run: ``python -m pytest benchmarks/bench_sweep.py --benchmark-only -q -s``.
"""

from __future__ import annotations

import contextlib
import os
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from limitsim import Grid, point_seed, run_sweep

N_POINTS = 64


def finite_point(point):
    """Train one small finite resnet (the benchmark's unit of work)."""
    from limitsim import Parametrization, Task
    from limitsim.finite.train import train_finite

    rng = np.random.default_rng(point_seed(point, keys=("data",)))
    X = rng.standard_normal((32, 16))
    task = Task.full_batch(X, np.tanh(X[:, :1]), point["steps"])
    param = Parametrization.depth_mup(eta=2.0 ** point["log2_eta"])
    run = train_finite(task, param, depth=16, width=64, seed=point_seed(point))
    return {"loss": run.loss, "diverged": run.diverged}


def trivial_point(point):
    """No work: what remains is the executor's and the store's overhead."""
    return {"y": float(point["i"]), "v": np.zeros(16)}


def sleep_point(point):
    """One second of (idle) work."""
    time.sleep(1.0)
    return {"y": float(point["i"])}


def spin(seconds):
    """Busy-wait ``seconds`` of wall time; return the CPU time this process obtained."""
    start, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        pass
    return time.process_time() - cpu


def available_parallelism(workers: int) -> float:
    """CPU time that ``workers`` busy processes obtain, relative to one (machine contention)."""
    import concurrent.futures as cf
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(workers, mp_context=context) as pool:
        list(pool.map(spin, [0.1] * workers))  # start the processes
        one = pool.submit(spin, 1.0).result()
        many = sum(pool.map(spin, [1.0] * workers))
    return many / one


def _grid(n: int) -> Grid:
    return Grid(axes={"i": list(range(n))})


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_local_executor_throughput(benchmark, tmp_path):
    grid = Grid(
        axes={"log2_eta": [float(e) for e in np.linspace(-4, 1, 16)], "seed": [0, 1, 2, 3]},
        fixed={"steps": 200, "data": 0},
    )
    points = grid.points()
    assert len(points) == N_POINTS
    finite_point(points[0])  # compile (or load from the numba cache) before timing
    threaded = _timed(lambda: [finite_point(p) for p in points])
    with threadpool_limits(limits=1):  # the finite-network kernels are serial numba code
        sequential = _timed(lambda: [finite_point(p) for p in points])
    workers = os.cpu_count()
    stores = iter(range(100))
    run_sweep(trivial_point, _grid(2), store=tmp_path / "warm", workers=workers)  # imports
    startup = _timed(
        lambda: run_sweep(trivial_point, _grid(2), store=tmp_path / "startup", workers=workers)
    )
    parallelism = available_parallelism(workers)
    benchmark.pedantic(
        lambda: run_sweep(finite_point, grid, store=tmp_path / f"s{next(stores)}", workers=workers),
        rounds=1,
        iterations=1,
    )
    local = benchmark.stats.stats.mean
    benchmark.extra_info.update(
        baseline="plain sequential loop in one process, one thread",
        sequential_s=sequential,
        threaded_loop_s=threaded,
        local_s=local,
        workers=workers,
        ratio=sequential / local,
        ratio_vs_threaded_loop=threaded / local,
        startup_s=startup,
        ratio_excluding_startup=sequential / (local - startup),
        available_parallelism=parallelism,
        load_average=os.getloadavg()[0],
    )
    print(
        f"\n64 finite nets: sequential {sequential:.2f} s (threaded loop {threaded:.2f} s), "
        f"local x{workers} {local:.2f} s, ratio {sequential / local:.2f} "
        f"({threaded / local:.2f} vs threaded loop; load {os.getloadavg()[0]:.1f}); "
        f"pool start-up {startup:.2f} s, ratio without it {sequential / (local - startup):.2f}; "
        f"{workers} busy processes get {parallelism:.2f}x the CPU of one"
    )


def test_store_overhead(benchmark, tmp_path):
    n = 300
    bare = _timed(lambda: [trivial_point(p) for p in _grid(n).points()])
    stores = iter(range(100))
    benchmark.pedantic(
        lambda: run_sweep(
            trivial_point, _grid(n), store=tmp_path / f"s{next(stores)}", executor="inline"
        ),
        rounds=3,
        iterations=1,
    )
    per_point = (benchmark.stats.stats.mean - bare) / n
    benchmark.extra_info.update(
        baseline="calling the point function in a loop (no store)",
        per_point_ms=1e3 * per_point,
        fraction_of_1s_task=per_point,
    )
    print(f"\nstore: {1e3 * per_point:.2f} ms per point = {100 * per_point:.2f}% of a 1 s task")


def _cluster(n_workers):
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )


@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_executor_overhead(benchmark, tmp_path, executor):
    cluster = _cluster(1) if executor == "dask" else contextlib.nullcontext()
    with cluster:
        options = {"workers": 1} if executor == "processes" else {}
        if executor == "dask":
            options["scheduler"] = cluster.scheduler_address
        _executor_overhead(benchmark, tmp_path, executor, options)


def _executor_overhead(benchmark, tmp_path, executor, options):
    stores = iter(range(100))

    def sweep(n):
        return _timed(
            lambda: run_sweep(
                trivial_point, _grid(n), store=tmp_path / f"s{next(stores)}", **options
            )
        )

    sweep(4)  # warm up (imports in the workers)
    small = sweep(16)
    benchmark.pedantic(lambda: sweep(96), rounds=1, iterations=1)
    per_point = (benchmark.stats.stats.mean - small) / 80
    benchmark.extra_info.update(
        baseline="slope of wall time between 16 and 96 trivial points (1 worker)",
        per_point_ms=1e3 * per_point,
        fraction_of_1s_task=per_point,
    )
    print(f"\n{executor}: {1e3 * per_point:.2f} ms per point = {100 * per_point:.2f}% of 1 s")


def test_dask_one_second_tasks(benchmark, tmp_path):
    with _cluster(2) as cluster:
        address = cluster.scheduler_address
        run_sweep(trivial_point, _grid(2), store=tmp_path / "warm", scheduler=address)
        benchmark.pedantic(
            lambda: run_sweep(sleep_point, _grid(6), store=tmp_path / "s", scheduler=address),
            rounds=1,
            iterations=1,
        )
    overhead = (benchmark.stats.stats.mean - 3.0) / 3.0
    benchmark.extra_info.update(
        baseline="ideal wall time 3 s (6 x 1 s on 2 workers)", overhead_fraction=overhead
    )
    print(
        f"\ndask 1 s tasks: wall {benchmark.stats.stats.mean:.3f} s, "
        f"overhead {100 * overhead:.2f}% of the ideal 3 s"
    )
