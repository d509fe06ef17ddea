"""Run the experiments of a profile, write their figures, datasets and the claims report.

Experiments with grids run them through the sweep engine into ``OUT/stores/<name>`` (every
finished grid point is on disk at once), and each experiment's dataset is written to
``OUT/data/<name>.nc`` when it is complete (atomically: temporary file, then rename), so an
interrupted ``limitsim figures`` resumes where it stopped, down to the grid point; figures
and ``report.md`` are always redrawn from the stored datasets.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import cast

import xarray as xr

from limitsim.experiments import EXPERIMENTS
from limitsim.experiments._common import Context
from limitsim.experiments.costs import BASELINE_BYTES, experiment_work, wall_seconds
from limitsim.experiments.profiles import PROFILES, sizes_for
from limitsim.report import Claim, render_report
from limitsim.sweeps._errors import ExperimentsFailed, PointsFailed
from limitsim.sweeps._files import remove_stale_temp_files, temp_name, write_atomic

__all__ = [
    "ExperimentEstimate",
    "ExperimentsFailed",
    "ProfileEstimate",
    "estimate",
    "make_figures",
]


def _stored_dataset(
    path: Path, profile: str, seed: int, log: Callable[[str], object]
) -> xr.Dataset | None:
    """The dataset at ``path`` when it is intact and of ``profile`` and ``seed``, else None.

    Intact: it matches the SHA-256 recorded beside it in ``<name>.nc.sha256`` (written with
    it); without that file (written by limitsim 0.1.0, or a kill before it was written) the
    dataset is intact when it loads, and its checksum is recorded now.
    """
    if not path.exists():
        return None
    checksum = path.with_name(f"{path.name}.sha256")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    recorded = checksum.read_text().partition(" ")[0] if checksum.exists() else None
    if recorded is not None and recorded != digest:
        log(f"  {path} does not match its SHA-256 ({checksum}): recomputing it")
        return None
    try:
        with xr.open_dataset(path) as ds:
            if ds.attrs.get("profile") != profile or ds.attrs.get("seed") != seed:
                return None
            loaded = ds.load()
    except (OSError, ValueError) as exc:  # truncated or not a netCDF file
        log(f"  {path} is damaged ({type(exc).__name__}: {exc}): recomputing it")
        return None
    if recorded is None:
        write_atomic(checksum, f"{digest}  {path.name}\n".encode(), path.parent)
    return loaded


def _load_or_run(
    module: ModuleType,
    profile: str,
    data_dir: Path,
    context: Context,
    log: Callable[[str], object],
) -> xr.Dataset:
    """The experiment's dataset ``data_dir/<NAME>.nc``: reused when intact, else computed.

    A computed dataset is written atomically (temporary file, then rename) with its SHA-256
    in ``<NAME>.nc.sha256``; a damaged or partial one is recomputed (:func:`_stored_dataset`),
    and temporary files left by killed runs are deleted.
    """
    path = data_dir / f"{module.NAME}.nc"
    remove_stale_temp_files(data_dir)  # of killed writers (this host)
    for old in data_dir.glob("tmp*.nc.tmp"):  # limitsim 0.1.0's mkstemp names, without owner
        old.unlink(missing_ok=True)
    stored = _stored_dataset(path, profile, context.seed, log)
    if stored is not None:
        log(f"  {module.NAME}: reusing {path}")
        return stored
    start, cpu = time.perf_counter(), cpu_seconds()
    ds = cast(xr.Dataset, module.run(sizes_for(profile, module.NAME), context))
    ds.attrs["profile"] = profile
    ds.attrs["seed"] = context.seed
    ds.attrs["seconds"] = time.perf_counter() - start
    ds.attrs["cpu_seconds"] = cpu_seconds() - cpu
    tmp = data_dir / temp_name(path.name)
    try:
        ds.to_netcdf(tmp)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    checksum = f"{digest}  {path.name}\n".encode()  # the format of `sha256sum -c`
    write_atomic(path.with_name(f"{path.name}.sha256"), checksum, data_dir)
    log(f"  {module.NAME}: computed in {_spent(ds)}")
    return ds


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished child processes.

    The children are the local sweep workers, counted once their pool has shut down (at the end
    of each sweep); dask workers are other processes and are not counted.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows: this process only
        return time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _spent(ds: xr.Dataset) -> str:
    """``"W s, C CPU s"`` of a computed dataset (datasets of older runs have no CPU seconds)."""
    cpu = ds.attrs.get("cpu_seconds")
    return f"{ds.attrs.get('seconds', 0):.1f} s" + ("" if cpu is None else f", {cpu:.1f} CPU s")


@dataclass(frozen=True, slots=True)
class ExperimentEstimate:
    """Predicted cost of one experiment's ``run`` (:mod:`limitsim.experiments.costs`).

    Attributes
    ----------
    name : str
    core_hours : float or None
        CPU core-hours (None: the experiment has no cost model).
    peak_gib : float or None
        Peak memory of one worker process in GiB: its largest piece of work plus the process's
        baseline.
    wall_hours : float or None
        Wall hours on the estimate's workers.
    """

    name: str
    core_hours: float | None
    peak_gib: float | None
    wall_hours: float | None


@dataclass(frozen=True, slots=True)
class ProfileEstimate:
    """Predicted cost of running a profile (:func:`estimate`), per experiment and in total."""

    profile: str
    workers: int
    experiments: tuple[ExperimentEstimate, ...]

    @property
    def missing(self) -> list[str]:
        """Experiments without a cost model (left out of the totals)."""
        return [e.name for e in self.experiments if e.core_hours is None]

    @property
    def core_hours(self) -> float:
        """Total CPU core-hours of the experiments with a cost model."""
        return sum(e.core_hours or 0.0 for e in self.experiments)

    @property
    def peak_gib(self) -> float:
        """Largest peak memory of one worker process, GiB."""
        return max((e.peak_gib or 0.0 for e in self.experiments), default=0.0)

    @property
    def wall_hours(self) -> float:
        """Total wall hours on ``workers`` workers (experiments run one after another)."""
        return sum(e.wall_hours or 0.0 for e in self.experiments)

    def lines(self) -> list[str]:
        """The printed estimate: one line per experiment, the wall time, then the total."""
        out = [
            f"profile {self.profile!r}: predicted CPU time, peak memory of one process (a sweep "
            f"worker, or the calling process for work outside sweeps) and wall time on "
            f"{self.workers} worker(s)"
        ]
        width = max(len(e.name) for e in self.experiments)
        for e in self.experiments:
            if e.core_hours is None or e.peak_gib is None or e.wall_hours is None:
                out.append(f"{e.name:<{width}}  no cost model (limitsim/experiments/costs.py)")
                continue
            out.append(
                f"{e.name:<{width}}  {e.core_hours:10.4f} core-hours  peak memory "
                f"{e.peak_gib:7.2f} GiB  wall {_duration(e.wall_hours)}"
            )
        if self.missing:
            out.append(f"the total leaves out {', '.join(self.missing)} (no cost model)")
        out.append(f"wall: {_duration(self.wall_hours)} on {self.workers} worker(s)")
        out.append(f"total: {self.core_hours:.3g} core-hours, peak memory {self.peak_gib:.2f} GiB")
        return out


def _duration(hours: float) -> str:
    """``"12.3 min"`` below two hours, else ``"4.5 h"``."""
    return f"{60 * hours:.1f} min" if hours < 2 else f"{hours:.1f} h"


def estimate(
    profile: str = "quick", *, only: Sequence[str] | None = None, workers: int | None = None
) -> ProfileEstimate:
    """Predict the CPU time, peak memory and wall time of ``make_figures(profile, ...)``.

    Runs nothing: each experiment's cost function (:data:`limitsim.experiments.costs.COSTS`)
    turns its sizes into work with measured per-unit costs.  Only the experiments' ``run`` is
    predicted (not figures, report or numba compilation), for a machine like the one the
    constants were measured on (the cost module's docstring says how to re-measure them).

    Parameters
    ----------
    profile : {"tiny", "quick", "standard", "paper"}
    only : sequence of str, optional
        Experiment names (default: all of :data:`limitsim.experiments.EXPERIMENTS`).
    workers : int, optional
        Workers of one core each for the wall time (default: this machine's cores).
    """
    names = _check_names(profile, only)
    workers = _positive(workers, "workers") or os.cpu_count() or 1
    rows = []
    for name in names:
        work = experiment_work(name, sizes_for(profile, name))
        if work is None:
            rows.append(ExperimentEstimate(name, None, None, None))
            continue
        peak = BASELINE_BYTES + max((w.bytes for w in work), default=0)
        rows.append(
            ExperimentEstimate(
                name,
                core_hours=sum(w.seconds for w in work) / 3600,
                peak_gib=peak / 2**30,
                wall_hours=wall_seconds(work, workers) / 3600,
            )
        )
    return ProfileEstimate(profile, workers, tuple(rows))


def _check_names(profile: str, only: Sequence[str] | None) -> list[str]:
    """The experiment names to run (ValueError for an unknown profile or name)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {list(PROFILES)}")
    names = list(EXPERIMENTS if only is None else only)
    unknown = sorted(set(names) - set(EXPERIMENTS))
    if unknown:
        raise ValueError(f"unknown experiment(s) {unknown}; valid names: {list(EXPERIMENTS)}")
    return names


def _positive(value: int | None, name: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def make_figures(
    profile: str = "quick",
    out: str | Path = "figures",
    *,
    only: Sequence[str] | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    seed: int = 0,
    log: Callable[[str], object] = print,
) -> Path:
    """Run the experiments of ``profile`` and write ``OUT/*.png|pdf``, data and ``report.md``.

    Parameters
    ----------
    profile : {"tiny", "quick", "standard", "paper"}
    out : path
        Output directory.
    only : sequence of str, optional
        Experiment names to run (default: all of :data:`limitsim.experiments.EXPERIMENTS`).
    scheduler : str, optional
        dask.distributed scheduler address for the sweeps (default: local processes).
    workers : int, optional
        Local worker processes (default: all cores).
    progress : bool
        Progress bars over each sweep's points.
    seed : int
        Base seed of every experiment (:func:`limitsim.experiments._common.seed_axis`): the
        seeds of different base seeds are disjoint, so reports with different ``seed`` are
        independent replications.  Recorded in the report's header and each dataset's attrs.

    Returns
    -------
    Path
        The report's path.

    Raises
    ------
    ExperimentsFailed
        After every experiment has run and the report is written, if points of some
        experiments' sweeps raised: those experiments have no rows (the report's notes name
        them); running again retries the failed points and keeps the rest.
    """
    names = _check_names(profile, only)
    out = Path(out)
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    context = Context(
        out / "stores", scheduler=scheduler, workers=workers, progress=progress, seed=seed
    )
    claims: list[Claim] = []
    notes = []
    failures = []
    for name in names:
        module = importlib.import_module(f"limitsim.experiments.{name}")
        log(f"{name}: {module.TITLE}")
        try:
            ds = _load_or_run(module, profile, data_dir, context, log)
        except PointsFailed as exc:  # the other experiments still run; reported at the end
            log(f"  FAILED: {exc}")
            failures.append(f"`{name}`: {exc}")
            continue
        for path in module.plot(ds, out):
            log(f"  wrote {path}")
        claims.extend(module.claims(ds))
        notes.append(f"`{name}` ({module.TITLE}): {_spent(ds)}")
    notes += [f"FAILED, no rows: {failure}" for failure in failures]
    report = out / "report.md"
    report.write_text(render_report(claims, profile=profile, seed=seed, notes=notes))
    log(f"wrote {report}")
    if failures:
        raise ExperimentsFailed(
            f"{len(failures)} experiment(s) failed and have no rows in {report}: "
            + "; ".join(failures)
        )
    return report
