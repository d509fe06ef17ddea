"""Executors of :func:`limitsim.run_sweep`: local processes, dask.distributed, inline.

Every backend runs :func:`execute_task` (one task = one point, or a batch of points for a
batched point function) and hands back :class:`~limitsim.sweeps.store.PointResult` objects; the
parent process alone writes the store.  The interface is ``submit(fn, task, batched)`` →
future, ``wait(futures)`` → the finished ones, ``result(future)`` → results or
:class:`WorkerLost`, ``close(cancel)``, and ``window`` (how many tasks to keep in flight).

- :class:`LocalBackend`: ``concurrent.futures.ProcessPoolExecutor`` with ``workers``
  processes (default: all cores), each limited to ``cores // workers`` BLAS and numba threads.
  Workers die with the parent process (:func:`die_with_parent`), so a killed sweep leaves no
  process behind.
  The start method is ``fork`` where it is safe (see :func:`start_method`): the workers
  inherit the parent's imports and compiled kernels and start in milliseconds instead of about
  a second each (spawn re-imports numpy, numba and limitsim and reloads the kernels), which
  matters for sweeps of a few seconds.  Elsewhere it is ``spawn``.  A worker that dies breaks
  the pool: the pool is replaced and the tasks in flight are re-submitted.
- :class:`DaskBackend`: a ``distributed.Client`` on a scheduler address, or on a
  ``LocalCluster`` bound to 127.0.0.1.  The scheduler re-runs the task of a worker that dies;
  after ``distributed.scheduler.allowed-failures`` deaths (default 3) the future raises
  ``KilledWorker`` and the task's points are recorded failed (no further re-submission).
- :class:`InlineBackend`: runs tasks in the calling process (debugging, benchmarks).
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np

from limitsim.sweeps.store import PointResult

__all__ = [
    "DaskBackend",
    "InlineBackend",
    "LocalBackend",
    "Task",
    "WorkerLost",
    "die_with_parent",
    "execute_task",
]

#: Result names a point function may not use (Dataset variables of their own).
RESERVED = ("status", "error")
_THREAD_LIMITS: list[Any] = []  # keeps the worker's threadpoolctl limiter alive
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class WorkerLost(RuntimeError):
    """The process running a task died; ``retry``: whether the task may be re-submitted."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(kw_only=True, slots=True)
class Task:
    """Points run together: one point, or a batch for a batched point function."""

    points: tuple[dict[str, Any], ...]
    keys: tuple[str, ...]
    tries: int = 0


def _error_text(exc: BaseException) -> str:
    """``Type: message`` on the first line, then the traceback (at most 4000 characters)."""
    head = f"{type(exc).__name__}: {exc}"
    tail = "".join(traceback.format_exception(exc))[-4000:]
    return f"{head}\n{tail}"


def _point_result(out: Any, point: dict[str, Any], key: str, seconds: float) -> PointResult:
    """Validate a point function's output and wrap it (raises on a malformed output)."""
    if not isinstance(out, Mapping):
        raise TypeError(f"the point function must return a dict, got {type(out).__name__}")
    out = dict(out)
    diverged = bool(out.pop("diverged", False))
    arrays = {}
    for name, value in out.items():
        if not isinstance(name, str) or not name.isidentifier() or name in RESERVED:
            raise ValueError(f"result names must be identifiers other than {RESERVED}: {name!r}")
        if name in point:
            raise ValueError(f"result name {name!r} is also an axis or fixed parameter")
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"result {name!r} must be a number or numeric array, got {value!r}")
        arrays[name] = array
    status = "diverged" if diverged else "done"
    return PointResult(key=key, config=point, status=status, arrays=arrays, seconds=seconds)


def execute_task(fn: Callable[..., Any], task: Task, batched: bool) -> list[PointResult]:
    """Run ``fn`` on a task's points (in a worker); exceptions become failed results.

    ``fn(point) -> dict`` per point, or, when ``batched``, ``fn(points) -> list[dict]``
    (one dict per point, in order).  An exception, or a malformed output, marks every point
    of the task failed with the error text; the time of a batch is split evenly.
    """
    start = time.perf_counter()
    try:
        if batched:
            outs = list(fn([dict(p) for p in task.points]))
            if len(outs) != len(task.points):
                raise ValueError(
                    f"a batched point function must return {len(task.points)} dicts "
                    f"(one per point), got {len(outs)}"
                )
        else:
            outs = [fn(dict(task.points[0]))]
        seconds = (time.perf_counter() - start) / len(task.points)
        return [
            _point_result(out, point, key, seconds)
            for out, point, key in zip(outs, task.points, task.keys, strict=True)
        ]
    except Exception as exc:
        return failed_results(task, _error_text(exc), time.perf_counter() - start)


def failed_results(task: Task, error: str, seconds: float = 0.0) -> list[PointResult]:
    """Every point of ``task`` recorded as failed with ``error``."""
    each = seconds / len(task.points)
    return [
        PointResult(key=k, config=p, status="failed", error=error, seconds=each)
        for p, k in zip(task.points, task.keys, strict=True)
    ]


def _watch_parent(parent: int, interval: float) -> None:
    """Exit this process as soon as ``parent`` is no longer its parent (checked every interval)."""
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)


def die_with_parent(parent: int) -> None:
    """Make this (worker) process exit when its parent ``parent`` dies, even by SIGKILL.

    On Linux the kernel sends SIGKILL to the worker when the parent dies
    (``prctl(PR_SET_PDEATHSIG)``); elsewhere, or if that call fails, a daemon thread polls the
    parent pid every second.  A parent that died before this call is noticed at once.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
            armed = False
        if armed:
            if os.getppid() != parent:  # died before the call: no signal will come
                os._exit(1)
            return
    watchdog = threading.Thread(
        target=_watch_parent, args=(parent, 1.0), daemon=True, name="limitsim-parent-watch"
    )
    watchdog.start()


def _init_worker(threads: int, parent: int) -> None:
    """Tie a local worker to its parent and limit its numba and BLAS threads.

    Limiting the threads avoids oversubscribing the cores; threadpoolctl acts on the BLAS
    libraries already loaded, so it runs after importing limitsim (numpy, scipy).
    """
    from limitsim._numba import get_num_threads, set_num_threads

    die_with_parent(parent)

    set_num_threads(min(threads, get_num_threads()))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return
    _THREAD_LIMITS.append(threadpool_limits(limits=threads))


def start_method() -> str:
    """``"fork"`` where forking is safe and available, else ``"spawn"``.

    Forking is safe when the parent runs no other Python thread (a thread holding a lock at
    the fork leaves it locked forever in the child; Python 3.12+ warns) and numba's threading
    layer is either not loaded yet or fork-safe (``tbb``, ``workqueue``; GNU OpenMP, numba's
    ``omp`` layer on Linux, aborts a child that runs a parallel kernel).  limitsim's own
    kernels load the layer only in the parallel particle Adam kernels.  macOS is excluded
    (system libraries are not fork-safe there), and Windows has no fork.
    """
    if sys.platform == "darwin" or "fork" not in multiprocessing.get_all_start_methods():
        return "spawn"
    if threading.active_count() > 1:
        return "spawn"
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    if parallel is not None and getattr(parallel, "_is_initialized", True):
        if parallel.threading_layer() not in ("tbb", "workqueue"):
            return "spawn"
    return "fork"


class LocalBackend:
    """Local worker processes (``fork`` where safe, else ``spawn``); see the module docstring."""

    def __init__(self, workers: int | None) -> None:
        cores = os.cpu_count() or 1
        self.workers = workers or cores
        self.window = 2 * self.workers
        self._threads = max(1, cores // self.workers)
        self._pool: cf.ProcessPoolExecutor | None = None
        self._owner: dict[cf.Future[Any], cf.ProcessPoolExecutor] = {}

    def start(self) -> None:
        """Start the worker processes now (before the caller starts threads such as tqdm's)."""
        if self._pool is None:
            method = start_method()
            self._pool = cf.ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context(method),
                initializer=_init_worker,
                initargs=(self._threads, os.getpid()),
            )
            if method == "fork":  # a fork pool launches every process at its first submit
                self._pool.submit(int).result()

    def submit(self, fn: Callable[..., Any], task: Task, batched: bool) -> cf.Future[Any]:
        self.start()
        assert self._pool is not None
        try:
            future = self._pool.submit(execute_task, fn, task, batched)
        except BrokenProcessPool:  # broke before one of its futures told us: replace it
            self._pool.shutdown(wait=True)
            self._pool = None
            return self.submit(fn, task, batched)
        self._owner[future] = self._pool
        return future

    def wait(self, futures: Sequence[cf.Future[Any]]) -> set[cf.Future[Any]]:
        return cf.wait(futures, return_when=cf.FIRST_COMPLETED).done

    def result(self, future: cf.Future[Any]) -> list[PointResult]:
        pool = self._owner.pop(future)
        try:
            return list(future.result())
        except BrokenProcessPool as exc:
            if pool is self._pool:  # replace the broken pool once
                pool.shutdown(wait=True)
                self._pool = None
            raise WorkerLost(f"a local worker process died ({exc})", retry=True) from exc

    def close(self, cancel: bool) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=cancel)
            self._pool = None


class DaskBackend:
    """A ``distributed.Client`` on ``scheduler`` or on a loopback ``LocalCluster``."""

    def __init__(self, scheduler: str | None, workers: int | None, connect_timeout: float) -> None:
        from distributed import Client, LocalCluster

        self._cluster: Any = None
        if scheduler is None:
            self._cluster = LocalCluster(
                n_workers=workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            )
            scheduler = self._cluster.scheduler_address
        try:
            self._client: Any = Client(scheduler, timeout=connect_timeout, set_as_default=False)
        except Exception as exc:
            if self._cluster is not None:
                self._cluster.close()
            raise ConnectionError(
                f"cannot connect to the dask scheduler at {scheduler!r} within "
                f"{connect_timeout:g} s ({type(exc).__name__}: {exc}). Is it running and "
                "reachable? Start one with `dask scheduler` and workers with `dask worker ADDRESS`."
            ) from None
        self.window = max(8, 2 * sum(self._client.nthreads().values()))
        self._finished: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def submit(self, fn: Callable[..., Any], task: Task, batched: bool) -> Any:
        future = self._client.submit(execute_task, fn, task, batched, pure=False)
        future.add_done_callback(self._finished.put)
        return future

    def wait(self, futures: Sequence[Any]) -> set[Any]:
        done = {self._finished.get()}  # every submitted future arrives here exactly once
        while not self._finished.empty():
            done.add(self._finished.get())
        return done

    def result(self, future: Any) -> list[PointResult]:
        from distributed import KilledWorker

        try:
            return list(future.result())
        except KilledWorker as exc:
            # the scheduler already re-ran it on `distributed.scheduler.allowed-failures` workers
            message = f"dask workers running this task died repeatedly ({exc})"
            raise WorkerLost(message, retry=False) from exc
        finally:
            future.release()

    def close(self, cancel: bool) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


class InlineBackend:
    """Run each task in the calling process, at submission."""

    window = 1

    def submit(self, fn: Callable[..., Any], task: Task, batched: bool) -> cf.Future[Any]:
        future: cf.Future[Any] = cf.Future()
        future.set_result(execute_task(fn, task, batched))
        return future

    def wait(self, futures: Sequence[cf.Future[Any]]) -> set[cf.Future[Any]]:
        return set(futures)

    def result(self, future: cf.Future[Any]) -> list[PointResult]:
        return list(future.result())

    def close(self, cancel: bool) -> None:
        """Nothing to release."""
