"""The sweep runner: :func:`run_sweep` drives an executor over the unfinished points of a grid.

The point-function contract, the executors and the store are described in
:mod:`limitsim.sweeps.sweep`, which re-exports :func:`run_sweep`.  This module submits tasks (one
point, or a batch of points that differ only along ``batch_axes``) to a backend of
:mod:`limitsim.sweeps._exec`, records every result in the store as it arrives, isolates a task
that kills its worker (:func:`_drive`), and returns the grid's results as an ``xarray.Dataset``.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

from limitsim._progress import Bar
from limitsim.sweeps._exec import (
    DaskBackend,
    InlineBackend,
    LocalBackend,
    Task,
    WorkerLost,
    failed_results,
)
from limitsim.sweeps._registry import function_name, get_point_function
from limitsim.sweeps.grid import Grid, canonical_json, point_key
from limitsim.sweeps.store import (
    DamagedResultError,
    DamagedResultWarning,
    Store,
    StoreError,
    open_store,
)

__all__ = ["EXECUTORS", "resolve_function", "run_sweep"]

EXECUTORS = ("processes", "dask", "inline")
_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")


def resolve_function(function: str | Callable[..., Any]) -> tuple[Callable[..., Any], str]:
    """The point function and its dotted name ``"module:qualname"``.

    Parameters
    ----------
    function : str or callable
        A top-level function object, or a name: a registered point function
        (:func:`limitsim.sweeps.spec.point_functions`), else an import path
        ``"package.module:function"`` (``"package.module.function"``), which is imported.
        Spec files never reach this import: :class:`~limitsim.sweeps.spec.SweepSpec` refuses
        unregistered names unless ``allow_code``.

    Raises
    ------
    TypeError
        For lambdas, nested functions and other objects that workers cannot import by name.
    ValueError
        For a name that does not import.
    """
    if isinstance(function, str):
        function = get_point_function(function, allow_code=True)  # the caller's own code
    return function, function_name(function)


def _check_address(address: str) -> str:
    if not isinstance(address, str):
        raise TypeError(f"scheduler must be an address string, got {type(address).__name__}")
    full = address if "://" in address else f"tcp://{address}"
    scheme, _, rest = full.partition("://")
    if scheme not in _SCHEMES or not rest or rest.startswith(":"):
        raise ValueError(
            f"scheduler must be an address like tcp://HOST:PORT (schemes {_SCHEMES}), "
            f"got {address!r}"
        )
    return full


def _positive_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return value


def _make_tasks(
    todo: list[tuple[str, dict[str, Any]]], batch_axes: tuple[str, ...], batch_size: int | None
) -> list[Task]:
    """One task per point, or per group of points equal outside ``batch_axes``."""
    if not batch_axes:
        return [Task(points=(p,), keys=(k,)) for k, p in todo]
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for key, point in todo:
        shared = {k: v for k, v in point.items() if k not in batch_axes}
        groups.setdefault(canonical_json(shared), []).append((key, point))
    tasks = []
    for members in groups.values():
        step = batch_size or len(members)
        for start in range(0, len(members), step):
            chunk = members[start : start + step]
            tasks.append(Task(points=tuple(p for _, p in chunk), keys=tuple(k for k, _ in chunk)))
    return tasks


def _check_executor(executor: str, scheduler: str | None) -> tuple[str, str | None]:
    """``(executor, scheduler)`` checked; a scheduler address implies ``executor="dask"``."""
    if scheduler is not None:
        scheduler = _check_address(scheduler)
        executor = "dask" if executor == "processes" else executor
        if executor != "dask":
            raise ValueError(f"scheduler requires executor='dask', got executor={executor!r}")
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    return executor, scheduler


def _pending(
    store: Store, points: list[dict[str, Any]], name: str, retry_failed: bool
) -> tuple[list[tuple[str, dict[str, Any]]], Counter[str]]:
    """``(key, point)`` of the points to run, and the statuses of the others."""
    entries = store.entries()
    counts: Counter[str] = Counter()
    todo = []
    for point in points:
        key = point_key(point, name, store.version)
        status = entries[key][0] if key in entries else None
        if status is None or (status == "failed" and retry_failed):
            todo.append((key, point))
        else:
            counts[status] += 1
    return todo, counts


def _backend(
    executor: str, scheduler: str | None, workers: int | None, connect_timeout: float, n_tasks: int
) -> Any:
    """A started backend of ``executor`` for ``n_tasks`` tasks (no idle local processes)."""
    if executor == "dask":
        return DaskBackend(scheduler, workers, connect_timeout)
    if executor == "inline":
        return InlineBackend()
    backend = LocalBackend(min(workers or os.cpu_count() or 1, n_tasks))
    backend.start()
    return backend


def run_sweep(
    function: str | Callable[..., Any],
    grid: Grid,
    *,
    store: str | os.PathLike[str],
    batch_axes: Sequence[str] = (),
    batch_size: int | None = None,
    executor: str = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    connect_timeout: float = 10.0,
    retry_failed: bool = False,
    max_attempts: int = 3,
    progress: bool | None = None,
) -> Any:
    """Run ``function`` on every point of ``grid`` not yet finished in ``store``.

    Parameters
    ----------
    function : str or callable
        Point function (module docstring), or its dotted name.
    grid : Grid
        The points.
    store : path-like
        Store directory: created if new, resumed if it exists (finished points are skipped).
    batch_axes : sequence of str
        Axes along which points are batched into one call ``function(list_of_points)``.
    batch_size : int, optional
        At most this many points per batch (default: a whole group).
    executor : {"processes", "dask", "inline"}
        Local processes; dask.distributed (on ``scheduler``, or a loopback ``LocalCluster``
        of ``workers`` processes); or the calling process.
    workers : int, optional
        Local processes or LocalCluster workers (default: all cores).
    scheduler : str, optional
        Address ``tcp://HOST:PORT`` of a dask scheduler (implies ``executor="dask"``).
    connect_timeout : float
        Seconds to wait for the scheduler before a ``ConnectionError``.
    retry_failed : bool
        Also re-run points recorded as failed.
    max_attempts : int
        Times a task may kill its local worker process, when run alone, before its points are
        recorded failed (dask retries on its own: ``distributed.scheduler.allowed-failures``).
    progress : bool, optional
        Show a tqdm bar (points, ETA, failures); default only on a terminal.

    Returns
    -------
    xarray.Dataset
        The grid's results (layout in :mod:`limitsim.sweeps.dataset`), each loaded file
        verified against its recorded SHA-256.

    Warns
    -----
    limitsim.sweeps.store.DamagedResultWarning
        Result files of finished points were missing or damaged: they were moved to the
        store's ``quarantine/`` and their points recomputed.

    Raises
    ------
    ValueError, TypeError
        Bad arguments (unknown axis, executor, ...).
    limitsim.sweeps.store.IncompatibleStoreError
        The store belongs to another limitsim version or point function (it is not modified).
    limitsim.sweeps.store.StoreError
        The store cannot be written (full disk, read-only): finished points stay intact; or
        its ledger is damaged (the message says how to recover).
    ConnectionError
        The scheduler cannot be reached within ``connect_timeout``.
    """
    fn, name = resolve_function(function)
    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be a limitsim.Grid, got {type(grid).__name__}")
    batch_axes = grid.check_axes(batch_axes, "batch_axes")
    batch_size = _positive_int(batch_size, "batch_size")
    workers = _positive_int(workers, "workers")
    _positive_int(max_attempts, "max_attempts")
    executor, scheduler = _check_executor(executor, scheduler)
    with open_store(store, function=name) as st:
        st.set_grid(grid)
        points = grid.points()
        damaged: DamagedResultError | None = None
        while True:  # a second pass recomputes the damaged results the first one found
            todo, counts = _pending(st, points, name, retry_failed)
            tasks = _make_tasks(todo, batch_axes, batch_size)
            if tasks:
                backend = _backend(executor, scheduler, workers, connect_timeout, len(tasks))
                bar = Bar(
                    total=len(points),
                    initial=len(points) - len(todo),
                    unit="pt",
                    desc="sweep",
                    disable=None if progress is None else not progress,
                )
                bar.set_postfix(failed=counts["failed"], diverged=counts["diverged"])
                cancel = True
                try:
                    _drive(backend, fn, tasks, bool(batch_axes), st, counts, bar, max_attempts)
                    cancel = False
                finally:
                    bar.close()
                    backend.close(cancel)
            try:
                return st.to_dataset(grid)
            except DamagedResultError as exc:
                if damaged is not None:
                    raise StoreError(
                        f"results written to store {st.path} were damaged again right after "
                        f"they were recomputed ({exc.summary}); check the disk"
                    ) from exc
                damaged = exc
                st.quarantine(exc.damaged)
                message = f"{exc.summary}; moved to {st.path / 'quarantine'}, recomputing"
                warnings.warn(message, DamagedResultWarning, stacklevel=2)


def _drive(
    backend: Any,
    fn: Callable[..., Any],
    tasks: list[Task],
    batched: bool,
    store: Store,
    counts: Counter[str],
    bar: Any,
    max_attempts: int,
) -> None:
    """Keep ``backend.window`` tasks in flight; record every result as it arrives.

    When a local worker dies, every task in flight with it fails, so the culprit is unknown:
    those tasks become *suspects*, re-run one at a time, alone in the pool, once the tasks in
    flight have drained.  A suspect that kills its worker when alone is certainly the culprit;
    after ``max_attempts`` such deaths its points are recorded failed.  Innocent tasks are
    therefore never recorded failed for another task's crash.
    """
    queue, suspects = deque(tasks), deque[Task]()
    inflight: dict[Any, tuple[Task, bool]] = {}
    while queue or suspects or inflight:
        if suspects and not inflight:
            task = suspects.popleft()
            inflight[backend.submit(fn, task, batched)] = (task, True)
        while queue and not suspects and len(inflight) < backend.window:
            task = queue.popleft()
            inflight[backend.submit(fn, task, batched)] = (task, False)
        for future in backend.wait(list(inflight)):
            task, alone = inflight.pop(future)
            try:
                results = backend.result(future)
            except WorkerLost as exc:
                task.tries += alone
                if exc.retry and task.tries < max_attempts:
                    suspects.append(task)
                    continue
                results = failed_results(task, f"WorkerLost: {exc} ({task.tries} attempts)")
            except Exception as exc:
                raise RuntimeError(
                    f"sweep aborted: a task failed outside the point function "
                    f"({type(exc).__name__}: {exc}); finished points are in the store "
                    f"{store.path}, run the sweep again to resume"
                ) from exc
            for result in results:
                store.record(result)
                counts[result.status] += 1
            bar.set_postfix(failed=counts["failed"], diverged=counts["diverged"], refresh=False)
            bar.update(len(results))
