"""``limitsim sweep``: run a sweep into a resumable store, summarize it, export it.

::

    limitsim sweep run SPEC.toml|--preset NAME --store PATH [--scheduler ADDRESS]
                       [--executor {processes,dask,inline}] [--workers N] [--retry-failed]
                       [--allow-code]
    limitsim sweep status STORE [--json] [--deep]
    limitsim sweep export STORE --format netcdf --out FILE
    limitsim sweep presets
    limitsim sweep functions

``run`` resumes when the store exists (finished points are skipped; damaged result files are
moved to the store's ``quarantine/`` and recomputed) and exits 0 when every point finished
(done or diverged), 1 when some failed or are still pending (see ``status``; re-run failed ones
with ``--retry-failed``), 2 on errors (bad spec, unreachable scheduler, incompatible,
unwritable or damaged store: the message says what is intact and how to recover).  A spec
names a registered point function (``functions`` lists them); ``--allow-code`` lets it name
any importable function instead, which runs code from the spec file (``SECURITY.md``).
``export`` writes outside the store only, and checks ``--out`` before reading the store.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from limitsim.commands._output import print_json

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``sweep`` subcommand and its actions."""
    parser = subparsers.add_parser(
        "sweep",
        help="run grids of experiments into a resumable store",
        description=__doc__.split("::")[0].strip(),
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    run_p = actions.add_parser("run", help="run (or resume) a sweep")
    run_p.add_argument("spec", nargs="?", help="TOML sweep spec (or use --preset)")
    run_p.add_argument("--preset", help="a named sweep (see `limitsim sweep presets`)")
    run_p.add_argument("--store", required=True, help="store directory (created or resumed)")
    run_p.add_argument("--executor", choices=("processes", "dask", "inline"), default=None)
    run_p.add_argument("--scheduler", help="dask scheduler address tcp://HOST:PORT")
    run_p.add_argument("--workers", type=int, help="local processes or dask workers")
    run_p.add_argument("--retry-failed", action="store_true", help="re-run failed points")
    run_p.add_argument("--connect-timeout", type=float, default=10.0, help="seconds (dask)")
    run_p.add_argument("--no-progress", action="store_true", help="no progress bar")
    run_p.add_argument(
        "--allow-code",
        action="store_true",
        help="runs code from this file: let the spec name any importable function and "
        "`requires` modules (only for a spec you trust as code; see SECURITY.md)",
    )
    status_p = actions.add_parser("status", help="summarize a store")
    status_p.add_argument("store")
    status_p.add_argument("--json", action="store_true", help="machine-readable output")
    status_p.add_argument("--deep", action="store_true", help="re-hash every result file")
    export_p = actions.add_parser("export", help="write a store's Dataset to a file")
    export_p.add_argument("store")
    export_p.add_argument("--format", choices=("netcdf",), default="netcdf")
    export_p.add_argument("--out", required=True, help="output file")
    actions.add_parser("presets", help="list the named sweeps")
    actions.add_parser("functions", help="list the point functions a spec may name")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Dispatch to the action; store, file, scheduler and requirement errors exit with code 2."""
    from limitsim.sweeps.store import StoreError

    action = {
        "run": _run,
        "status": _status,
        "export": _export,
        "presets": _presets,
        "functions": _functions,
    }
    try:
        return action[args.action](args)
    except (StoreError, OSError, ImportError) as exc:  # OSError includes ConnectionError
        print(f"limitsim sweep {args.action}: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from limitsim.sweeps.spec import get_preset, load_spec
    from limitsim.sweeps.store import DamagedResultWarning

    if (args.spec is None) == (args.preset is None):
        raise ValueError("give either a spec file SPEC.toml or --preset NAME (exactly one)")
    allow_code = bool(args.allow_code)
    spec = get_preset(args.preset) if args.preset else load_spec(args.spec, allow_code=allow_code)
    options: dict[str, Any] = {
        "workers": args.workers,
        "scheduler": args.scheduler,
        "retry_failed": args.retry_failed,
        "connect_timeout": args.connect_timeout,
        "progress": False if args.no_progress else None,
    }
    if args.executor is not None:
        options["executor"] = args.executor
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DamagedResultWarning)
        ds = spec.run(store=args.store, allow_code=allow_code, **options)
    for warning in caught:
        if issubclass(warning.category, DamagedResultWarning):
            print(f"limitsim sweep run: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    counts = {s: int((ds.status == s).sum()) for s in ("done", "diverged", "failed", "pending")}
    print(f"{args.store}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 1 if counts["failed"] or counts["pending"] else 0


def _status(args: argparse.Namespace) -> int:
    from limitsim.sweeps.dataset import summarize
    from limitsim.sweeps.store import StoreError, open_store

    with open_store(args.store, readonly=True) as store:
        grid = store.grid
        if grid is None:
            raise StoreError(f"store {args.store} has no grid yet: run a sweep on it first")
        summary = summarize(store, grid)
        report = store.check_integrity(deep=args.deep)
    summary["integrity"] = {
        "ok": report.ok,
        "rows": report.rows,
        "missing": len(report.missing),
        "corrupt": len(report.corrupt),
        "orphans": len(report.orphans),
        "temp_files": len(report.temp_files),
        "quarantined": len(report.quarantined),
    }
    if args.json:
        print_json(summary, indent=1)
        return 0 if report.ok else 1
    counts = summary["counts"]
    print(f"store      {args.store}")
    print(f"function   {summary['function']} (limitsim {summary['limitsim_version']})")
    print(f"points     {summary['points']} (+{counts['filtered']} filtered)")
    print("status     " + ", ".join(f"{counts[s]} {s}" for s in counts if s != "filtered"))
    print(f"time       {summary['seconds']:.1f} s, {summary['mean_seconds']:.3g} s per point")
    ok = "ok" if report.ok else "DAMAGED"
    checked = "" if args.deep else " (files not re-hashed: --deep)"
    print(
        f"integrity  {ok}: {report.rows} rows, {len(report.missing)} missing, "
        f"{len(report.corrupt)} corrupt{checked}, {len(report.orphans)} orphan files, "
        f"{len(report.temp_files)} temporary files"
    )
    if report.quarantined:
        print(
            f"quarantine {len(report.quarantined)} damaged result file(s) moved aside "
            f"({args.store}/quarantine; their points are recomputed by `sweep run`)"
        )
    if not report.ok:
        print("           `limitsim sweep run` moves damaged files aside and recomputes them")
    for failure in summary["failures"][:10]:
        print(f"failed     {failure['point']}: {failure['error']}")
    if len(summary["failures"]) > 10:
        print(f"           ... and {len(summary['failures']) - 10} more (--json lists all)")
    return 0 if report.ok else 1


def _output_path(out: str, store: str) -> Path:
    """``out``, checked before any work: outside ``store``, in an existing writable directory."""
    path = Path(out)
    resolved, root = path.resolve(), Path(store).resolve()
    if resolved == root or root in resolved.parents:
        raise ValueError(
            f"--out {out} is inside the store {store}: export writes outside the store only "
            "(it would overwrite the store's own files)"
        )
    if path.is_dir():
        raise ValueError(f"--out {out} is a directory; give a file name")
    if not resolved.parent.is_dir():
        raise ValueError(f"--out {out}: directory {path.parent} does not exist")
    if not os.access(resolved.parent, os.W_OK):
        raise ValueError(f"--out {out}: directory {path.parent} is not writable")
    return path


def _export(args: argparse.Namespace) -> int:
    from limitsim.sweeps.store import open_store

    out = _output_path(args.out, args.store)
    with open_store(args.store, readonly=True) as store:
        ds = store.to_dataset()
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        ds.to_netcdf(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {out} ({dict(ds.sizes)})")
    return 0


def _presets(args: argparse.Namespace) -> int:
    from limitsim.sweeps.spec import PRESETS

    for name, spec in PRESETS.items():
        n = len(spec.grid.points())
        print(f"{name:10s} {n} points, {spec.function}: {spec.description}")
    return 0


def _functions(args: argparse.Namespace) -> int:
    from limitsim.sweeps.spec import point_functions

    for name, dotted in sorted(point_functions().items()):
        print(name if name == dotted else f"{name} ({dotted})")
    return 0
