"""Predicted cost of the experiments of a profile: CPU core-seconds, peak memory, wall time.

Each experiment has a cost function in :data:`COSTS`, ``cost(sizes) -> list[Work]``: the work
its ``run(sizes, context)`` does, as sweep tasks (the tasks of one sweep run in parallel, one
per worker) and steps in the calling process, each priced by the route models of
:mod:`limitsim.experiments._route_costs` (their constants were measured on a 2-core machine;
``python -m limitsim.experiments.costs`` re-measures them).  Only ``run`` is predicted:
figures, report and numba compilation (once per machine, cached) are not.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from limitsim.experiments._route_costs import (
    BASELINE_BYTES,
    CONSTANTS,
    Work,
    batched,
    calibrate,
    finite,
    kernels,
    linear,
    particles,
    sweep_overhead,
)

__all__ = ["BASELINE_BYTES", "CONSTANTS", "COSTS", "Work", "experiment_work", "wall_seconds"]


def _digits(name: str, sizes: Mapping[str, Any], **kw: Any) -> Callable[[int], Work]:
    """The work of k digits-training configurations (:func:`~._digits.train_points`)."""
    return lambda k: finite(k, width=int(sizes["width"]), batch=int(sizes["batch"]),
                            steps=int(sizes["steps"]), sweep=name, **kw)  # fmt: skip


def _phase_diagram(sizes: Mapping[str, Any]) -> list[Work]:
    k = int(sizes["per_quarter"])
    return [Work(CONSTANTS["c_classify"] * (6 * k + 1) * (8 * k + 1), 0)]


def _init_kernels(sizes: Mapping[str, Any]) -> list[Work]:
    return [kernels(str(phi), sizes["depths"]) for phi in sizes["phis"]]


def _scaling_exponents(sizes: Mapping[str, Any]) -> list[Work]:
    n_points, width = int(sizes["n_points"]), int(sizes["width"])
    per_depth = len(sizes["alpha_gammas"]) * int(sizes["seeds"])

    def step(L: int) -> Callable[[int], Work]:
        return lambda k: finite(k, depth=L, width=width, batch=n_points, steps=2, d_in=8,
                                d_out=1, dtype="float64", record_steps=2, record_backward=False,
                                sweep="scaling_exponents")  # fmt: skip

    groups = [(per_depth, step(int(L))) for L in sizes["depths"]]
    return batched(groups, int(sizes.get("batch_size", 8)))


def _transfer(sizes: Mapping[str, Any]) -> list[Work]:
    from limitsim.experiments.transfer import SGD_PARAMS

    groups = []
    for opt in sizes["optimizers"]:
        params = [p for p in sizes["params"] if opt == "adam" or p in SGD_PARAMS]
        count = len(sizes["log2_etas"][opt]) * int(sizes["seeds"])
        for _ in params:
            for L in sizes["depths"]:
                groups.append((count, _digits("transfer", sizes, depth=int(L), optimizer=opt)))
    ln_count = len(sizes["ln_log2_etas"]) * int(sizes["seeds"])  # Fig. 12: abs, pre-LN, Adam
    for _ in sizes["ln_params"]:
        for L in sizes["ln_depths"]:
            work = _digits("transfer", sizes, depth=int(L), optimizer="adam", pre_ln=True)
            groups.append((ln_count, work))
    return batched(groups, 8)


def _multiplier(sizes: Mapping[str, Any]) -> list[Work]:
    count = len(sizes["log2_as"]) * int(sizes["seeds"])
    opt = str(sizes["optimizer"])
    groups = [(count, _digits("multiplier", sizes, depth=int(L), optimizer=opt))
              for L in sizes["depths"]]  # fmt: skip
    return batched(groups, int(sizes.get("batch_size", 8)))


def _nonlinearity(sizes: Mapping[str, Any]) -> list[Work]:
    from limitsim.experiments.nonlinearity import record_steps

    seeds, size = int(sizes["seeds"]), int(sizes.get("batch_size", 8))
    opt = str(sizes["optimizer"])
    loss = [(len(sizes["log2_etas"]) * seeds, _digits("nonlinearity", sizes, depth=int(L),
                                                      optimizer=opt))
            for _ in sizes["phis"] for L in sizes["depths"]]  # fmt: skip
    recorded = len(record_steps(int(sizes["steps"]), tuple(sizes["record_fractions"])))
    member = _digits("nonlinearity_family", sizes, depth=int(sizes["family_depth"]),
                     optimizer="adam", record_steps=recorded)  # fmt: skip
    family = [(seeds, member) for _ in sizes["thetas"]]
    return batched(loss, size) + batched(family, size)


def _diversity(sizes: Mapping[str, Any]) -> list[Work]:
    from limitsim.experiments._diversity_limit import record_steps

    params = list(sizes["params"])
    limit = [linear(depth=int(L), steps=int(sizes["limit_steps"]), batch=int(sizes["n_points"]),
                    d_in=int(sizes["d_in"]), sweep="diversity_limit")
             for _ in params for L in sizes["limit_depths"]]  # fmt: skip
    recorded = len(record_steps(int(sizes["steps"])))
    groups = [(len(params) * int(sizes["seeds"]),
               _digits("diversity", sizes, depth=int(L), optimizer=str(sizes["optimizer"]),
                       record_steps=recorded, record_backward=False))
              for L in sizes["depths"]]  # fmt: skip
    return [
        *limit,
        sweep_overhead(len(limit)),
        *batched(groups, int(sizes.get("batch_size", 4))),
    ]


def _prenonlin(sizes: Mapping[str, Any]) -> list[Work]:
    count = len(sizes["log2_etas"]) * int(sizes["seeds"])
    opt = str(sizes["optimizer"])
    groups = [(count, _digits("prenonlin", sizes, depth=int(L), optimizer=opt))
              for _ in sizes["blocks"] for L in sizes["depths"]]  # fmt: skip
    return batched(groups, int(sizes.get("batch_size", 8)))


def _linear_rms(sizes: Mapping[str, Any]) -> list[Work]:
    from limitsim.experiments.linear_rms import SEEDS_PER_CALL

    steps = max(int(t) for t in sizes["steps"]) + 1
    B, d, L, seeds = (
        int(sizes["batch"]),
        int(sizes["d_in"]),
        int(sizes["depth"]),
        int(sizes["seeds"]),
    )
    per_call = min(SEEDS_PER_CALL, seeds)
    work = [finite(per_call, depth=L, width=int(n), batch=B, steps=steps, d_in=d, d_out=1,
                   dtype="float64", record_steps=len(sizes["steps"]), record_backward=False)
            for n in sizes["widths"] for _ in range(0, seeds, per_call)]  # fmt: skip
    depths = [L, *(int(D) for D in sizes["depths"])]
    return work + [linear(depth=D, steps=steps, batch=B, d_in=d, n_eval=1) for D in depths]


def _block_depth(sizes: Mapping[str, Any]) -> list[Work]:
    from limitsim.experiments.block_depth import SETUPS

    count = len(sizes["log2_etas"]) * int(sizes["seeds"])
    out = []
    for phi in sizes["phis"]:
        name = f"block_depth_{phi}"
        groups = [(count, _digits(name, sizes, depth=int(L), block_depth=k,
                                  pre_ln=SETUPS[phi][0], optimizer=str(sizes["optimizer"])))
                  for k in (1, 2) for L in sizes["depths"]
                  if k * int(L) <= int(sizes["max_layers"])]  # fmt: skip
        out += batched(groups, int(sizes["batch_size"]))
    return out


def _block_heatmap(sizes: Mapping[str, Any]) -> list[Work]:
    count = len(sizes["log2_as"]) * len(sizes["log2_etas"]) * int(sizes["seeds"])
    groups = [(count, _digits("block_heatmap", sizes, depth=int(L), block_depth=2,
                              pre_ln=bool(sizes["pre_ln"]), optimizer=str(sizes["optimizer"])))
              for L in sizes["depths"]]  # fmt: skip
    return batched(groups, int(sizes["batch_size"]))


def _convergence(sizes: Mapping[str, Any]) -> list[Work]:
    T, B, d = int(sizes["steps"]), int(sizes["n_points"]), int(sizes["d_in"])
    L0 = int(sizes["width_depth"])

    def nets(n: int) -> Callable[[int], Work]:
        return lambda k: finite(k, depth=L0, width=n, batch=B, steps=T, d_in=d, d_out=1,
                                sweep="convergence_finite")  # fmt: skip

    groups = [(int(sizes["seeds"]), nets(int(n))) for _ in range(2) for n in sizes["widths"]]
    lin = sorted({*(int(L) for L in sizes["linear_depths"]), L0})
    par = sorted({*(int(L) for L in sizes["particle_depths"]), L0})
    limits = [linear(depth=L, steps=T, batch=B, d_in=d, sweep="convergence_limits") for L in lin]
    limits += [particles(n_particles=int(sizes["n_particles"]), depth=L, steps=T, batch=B,
                         sweep="convergence_limits") for L in par]  # fmt: skip
    return [
        *batched(groups, int(sizes["batch_size"])),
        *limits,
        sweep_overhead(len(limits)),
    ]


#: CPU of one Adam particle run (32 sampled partners) over one SGD run of the same size,
#: measured on limit_transfer's quick runs at L = 16 and 64 (0.106/0.037 s, 0.416/0.157 s).
ADAM_PARTICLES = 2.7


def _limit_transfer(sizes: Mapping[str, Any]) -> list[Work]:
    from dataclasses import replace

    work = []
    for opt in sizes["optimizers"]:
        runs = len(sizes["log2_etas"][opt]) * int(sizes["seeds"])
        for L in sizes["depths"]:
            one = particles(
                n_particles=int(sizes["n_particles"]),
                depth=int(L),
                steps=int(sizes["steps"]),
                batch=int(sizes["n_points"]),
                n_replicas=int(sizes["n_replicas"]),
                optimizer=str(opt),
                n_partners=int(sizes["n_partners"]) if opt == "adam" else None,
                sweep="limit_transfer",
            )
            if opt == "adam":
                one = replace(one, seconds=one.seconds * ADAM_PARTICLES)
            # each point simulates N and N/2 particles (limit_point): 1.5 times one run
            work += [replace(one, seconds=1.5 * one.seconds)] * runs
            etas, per_batch = len(sizes["log2_etas"][opt]), int(sizes["finite_batch"])
            for width in sizes["finite_widths"]:  # the overlay: batches of η per seed
                batch = finite(
                    min(per_batch, etas),
                    depth=int(L),
                    width=int(width),
                    batch=int(sizes["n_points"]),
                    steps=int(sizes["steps"]),
                    optimizer=str(opt),
                    d_in=int(sizes["d_in"]),
                    d_out=1,
                    sweep="limit_transfer_finite",
                )
                work += [batch] * (-(-etas // per_batch) * int(sizes["seeds"]))
    return work


def _alpha_gamma_nets(sizes: Mapping[str, Any], record_steps: int, sweep: str) -> list[Work]:
    """Finite nets of an :class:`~._synthetic.AlphaGammaGrid` (all (α, γ) × seeds per depth)."""
    T, B, d = int(sizes["steps"]), int(sizes["n_points"]), int(sizes["d_in"])
    groups = [(len(sizes["alpha_gammas"]) * int(sizes["seeds"]),
               lambda k, L=int(L): finite(k, depth=L, width=int(sizes["width"]), batch=B,
                                          steps=T, d_in=d, d_out=1, record_steps=record_steps,
                                          record_backward=False, sweep=sweep))
              for L in sizes["depths"]]  # fmt: skip
    return batched(groups, 32)


def _stability(sizes: Mapping[str, Any]) -> list[Work]:
    T, B, d = int(sizes["steps"]), int(sizes["n_points"]), int(sizes["d_in"])
    limit = [linear(depth=int(L), steps=T + 1, batch=B, d_in=d, sweep="stability_limit")
             for _ in sizes["alpha_gammas"]
             for L in (*sizes["limit_depths"], *sizes["redundancy_depths"])]  # fmt: skip
    return [*limit, sweep_overhead(len(limit)), *_alpha_gamma_nets(sizes, 2, "stability")]


def _linearization(sizes: Mapping[str, Any]) -> list[Work]:
    e1 = [particles(n_particles=int(sizes["n_particles"]), depth=int(L),
                    steps=int(sizes["e1_steps"]), batch=int(sizes["n_points"]),
                    sweep="linearization_e1")
          for L in sizes["e1_depths"]]  # fmt: skip
    return [*_alpha_gamma_nets(sizes, 1, "linearization"), *e1, sweep_overhead(1)]


#: Cost function of every experiment of :data:`limitsim.experiments.EXPERIMENTS`.
COSTS: Mapping[str, Callable[[Mapping[str, Any]], list[Work]]] = MappingProxyType(
    {
        "phase_diagram": _phase_diagram,
        "init_kernels": _init_kernels,
        "scaling_exponents": _scaling_exponents,
        "transfer": _transfer,
        "multiplier": _multiplier,
        "nonlinearity": _nonlinearity,
        "diversity": _diversity,
        "prenonlin": _prenonlin,
        "linear_rms": _linear_rms,
        "block_depth": _block_depth,
        "block_heatmap": _block_heatmap,
        "convergence": _convergence,
        "stability": _stability,
        "linearization": _linearization,
        "limit_transfer": _limit_transfer,
    }
)


def experiment_work(name: str, sizes: Mapping[str, Any]) -> list[Work] | None:
    """The predicted work of experiment ``name`` at ``sizes``; None without a cost model."""
    cost = COSTS.get(name)
    return None if cost is None else cost(sizes)


def wall_seconds(work: Sequence[Work], workers: int) -> float:
    """Predicted wall seconds of ``work`` on ``workers`` workers of one core each.

    Sweeps run one after another, and work in the calling process alone.  A sweep's tasks are
    placed longest first on the least loaded worker, which finishes within 4/3 of the best
    possible schedule; the executor submits in grid order, which can be later by up to the
    longest task.
    """
    by_sweep: dict[str | None, list[float]] = {}
    for item in work:
        by_sweep.setdefault(item.sweep, []).append(item.seconds)
    total = sum(by_sweep.pop(None, []))
    for seconds in by_sweep.values():
        finish = [0.0] * min(workers, len(seconds))
        for s in sorted(seconds, reverse=True):
            heapq.heapreplace(finish, finish[0] + s)
        total += max(finish)
    return total


if __name__ == "__main__":
    for key, value in calibrate().items():
        print(f'"{key}": {value:.2g},')
