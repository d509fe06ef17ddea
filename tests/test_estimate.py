"""Tests of ``limitsim figures --estimate`` and the cost models of limitsim.experiments.costs."""

from __future__ import annotations

import math
import re
import time

import numpy as np
import pytest

from limitsim.experiments import EXPERIMENTS, _route_costs, costs
from limitsim.experiments.profiles import PROFILES, sizes_for
from limitsim.figures import estimate

TOTAL = re.compile(r"^total: ([0-9.e+-]+) core-hours, peak memory ([0-9.]+) GiB$")


def test_every_experiment_has_a_cost_model() -> None:
    missing = [name for name in EXPERIMENTS if name not in costs.COSTS]
    assert not missing, (
        f"experiment(s) {missing} have no cost model, so `limitsim figures --estimate` leaves "
        "them out of its total. Add to limitsim/experiments/costs.py a function "
        "`_<name>(sizes: Mapping[str, Any]) -> list[Work]` listing the work of the experiment's "
        "run(sizes, context): one Work per sweep task (sweep=<store name>; build them with "
        "`batched(groups, batch_size)`, which also adds the sweep's overhead) and one per step "
        "run in the calling process (sweep=None), each from the route models finite(), "
        "linear(), particles() or kernels() (or Work(seconds, bytes) from a measured constant), "
        "and register it in COSTS under the experiment's NAME."
    )


@pytest.mark.parametrize("profile", PROFILES)
def test_cost_models_give_positive_finite_costs(profile: str) -> None:
    for name in EXPERIMENTS:
        work = costs.experiment_work(name, sizes_for(profile, name))
        if work is None:
            continue  # reported by test_every_experiment_has_a_cost_model
        seconds = sum(w.seconds for w in work)
        assert work and math.isfinite(seconds) and seconds > 0, name
        assert all(w.bytes >= 0 for w in work), name


def test_profiles_cost_more_as_they_grow() -> None:
    hours = [estimate(p, workers=2).core_hours for p in ("tiny", "quick", "paper")]
    assert hours[0] < hours[1] < hours[2]


def test_finite_memory_equals_the_trainers_estimator_on_a_real_task() -> None:
    """The task-shape stand-in gives exactly the bytes of memory_bytes on a real Task."""
    from limitsim.data import load_dataset
    from limitsim.finite._loop import memory_bytes
    from limitsim.finite._net import Spec
    from limitsim.nonlinearities.registry import nonlinearity
    from limitsim.run import Record

    task = load_dataset("digits", steps=7, batch_size=5)
    abs_ = nonlinearity("abs")
    spec = Spec(depth=6, width=12, d_in=task.d_in, d_out=task.d_out, phi=abs_, block_depth=2,
                pre_ln=True, dtype=np.dtype("float32"), optimizer="adam")  # fmt: skip
    record = Record(steps=(0, 1, 2), backward=False)
    want = memory_bytes(spec, 3, task, record, 0)
    got = _route_costs.finite(3, depth=6, width=12, batch=5, steps=7, optimizer="adam",
                              block_depth=2, pre_ln=True, record_steps=3,
                              record_backward=False).bytes  # fmt: skip
    assert got == want


def test_linear_memory_is_the_documented_count() -> None:
    work = _route_costs.linear(depth=16, steps=5, batch=4, d_in=8)
    assert work.bytes == 8 * 2 * 16**2 * 5**2  # 2 r² L² T² floats, r = 1


def test_wall_time_schedules_sweeps_on_workers() -> None:
    work = [costs.Work(3.0, 0, "a")] * 4 + [costs.Work(1.0, 0, "b"), costs.Work(2.0, 0, None)]
    assert costs.wall_seconds(work, 1) == pytest.approx(15.0)
    assert costs.wall_seconds(work, 2) == pytest.approx(6.0 + 1.0 + 2.0)
    assert costs.wall_seconds(work, 8) == pytest.approx(3.0 + 1.0 + 2.0)


def test_estimate_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown profile"):
        estimate("huge")
    with pytest.raises(ValueError, match="unknown experiment"):
        estimate("tiny", only=["nope"])
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        estimate("tiny", workers=0)


def test_cli_prints_the_estimate_and_runs_nothing(tmp_path, capsys) -> None:
    from limitsim.cli import main

    out = tmp_path / "never"
    assert main(["figures", "--profile", "paper", "--estimate", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert not out.exists()
    for name in EXPERIMENTS:
        assert any(line.startswith(name) for line in lines), name
    match = TOTAL.match(lines[-1])
    assert match, lines[-1]
    result = estimate("paper")
    assert float(match.group(1)) == pytest.approx(result.core_hours, rel=1e-2)
    assert float(match.group(2)) == pytest.approx(result.peak_gib, abs=0.01)


@pytest.mark.slow
def test_finite_model_predicts_cpu_time_within_a_factor_two() -> None:
    """The estimate's promise: CPU time within a factor 2 (calibration residuals are ±10%;
    a shared machine inflates CPU time by contention for caches and memory bandwidth)."""
    from threadpoolctl import threadpool_limits

    from limitsim.data import load_dataset
    from limitsim.finite.train import train_finite_batch
    from limitsim.parametrization import Parametrization

    task = load_dataset("digits", steps=20, batch_size=32)
    p = Parametrization.preset("depth_mup", eta=0.01, optimizer="adam", base_depth=8)
    kw = {"depth": 16, "width": 128, "dtype": "float32", "eval_every": 0}
    with threadpool_limits(1):
        train_finite_batch(task.with_steps(2), p, seeds=[0], **kw)  # compile, warm up
        start = time.process_time()
        train_finite_batch(task, [p] * 8, seeds=list(range(8)), **kw)
        measured = time.process_time() - start
    predicted = _route_costs.finite(8, depth=16, width=128, batch=32, steps=20, optimizer="adam")
    assert 0.5 < predicted.seconds / measured < 2.0


def test_an_experiment_without_cost_model_is_named_and_left_out(monkeypatch) -> None:
    full = estimate("quick", workers=2)
    transfer = next(e for e in full.experiments if e.name == "transfer")
    monkeypatch.setattr(costs, "COSTS", {k: v for k, v in costs.COSTS.items() if k != "transfer"})
    result = estimate("quick", workers=2)
    lines = result.lines()
    assert result.missing == ["transfer"]
    assert any(line.startswith("transfer") and "no cost model" in line for line in lines)
    assert "leaves out transfer" in lines[-3]
    assert TOTAL.match(lines[-1])
    assert transfer.core_hours is not None
    assert result.core_hours == pytest.approx(full.core_hours - transfer.core_hours)
