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
from pathlib import Path
from types import ModuleType
from typing import cast

import xarray as xr

from limitsim._store_files import remove_stale_temp_files, temp_name, write_atomic
from limitsim.experiments import EXPERIMENTS
from limitsim.experiments._common import Context
from limitsim.experiments.profiles import PROFILES, sizes_for
from limitsim.report import Claim, render_report

__all__ = ["make_figures"]


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
    start = time.perf_counter()
    ds = cast(xr.Dataset, module.run(sizes_for(profile, module.NAME), context))
    ds.attrs["profile"] = profile
    ds.attrs["seed"] = context.seed
    ds.attrs["seconds"] = time.perf_counter() - start
    tmp = data_dir / temp_name(path.name)
    try:
        ds.to_netcdf(tmp)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    checksum = f"{digest}  {path.name}\n".encode()  # the format of `sha256sum -c`
    write_atomic(path.with_name(f"{path.name}.sha256"), checksum, data_dir)
    log(f"  {module.NAME}: computed in {ds.attrs['seconds']:.1f} s")
    return ds


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
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {list(PROFILES)}")
    names = list(EXPERIMENTS if only is None else only)
    unknown = sorted(set(names) - set(EXPERIMENTS))
    if unknown:
        raise ValueError(f"unknown experiment(s) {unknown}; valid names: {list(EXPERIMENTS)}")
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
    for name in names:
        module = importlib.import_module(f"limitsim.experiments.{name}")
        log(f"{name}: {module.TITLE}")
        ds = _load_or_run(module, profile, data_dir, context, log)
        for path in module.plot(ds, out):
            log(f"  wrote {path}")
        claims.extend(module.claims(ds))
        notes.append(f"`{name}` ({module.TITLE}): {ds.attrs.get('seconds', 0):.1f} s")
    report = out / "report.md"
    report.write_text(render_report(claims, profile=profile, seed=seed, notes=notes))
    log(f"wrote {report}")
    return report
