"""``limitsim figures --scheduler``: a dask cluster writes the same report as local processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="the dask test needs dask.distributed")

ROOT = Path(__file__).resolve().parents[1]


def figures(*args: str) -> None:
    """Run ``limitsim figures --profile tiny ARGS`` as a user would, from the repository."""
    command = [sys.executable, "-m", "limitsim.cli", "figures", "--profile", "tiny"]
    done = subprocess.run(
        [*command, "--no-progress", *args], cwd=ROOT, capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, done.stderr[-3000:]


def report_rows(report: Path) -> list[str]:
    """The report's lines before its timing notes."""
    text = report.read_text()
    return text.partition("## Notes")[0].splitlines()


@pytest.fixture(scope="module")
def scheduler():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield cluster


@pytest.mark.slow
def test_dask_cluster_writes_the_same_report_as_local_processes(tmp_path, scheduler) -> None:
    local, dask = tmp_path / "local", tmp_path / "dask"
    figures("--out", str(local), "--workers", "2")
    figures("--out", str(dask), "--scheduler", scheduler.scheduler_address)
    rows = report_rows(dask / "report.md")
    assert any(line.startswith("| ") for line in rows)  # the tables are there
    assert rows == report_rows(local / "report.md")
    assert "execute_task" in scheduler.scheduler.task_prefixes  # the cluster ran the sweeps
