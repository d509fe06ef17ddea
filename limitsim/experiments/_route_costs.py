"""Cost models of the routes: CPU seconds and peak bytes of one call, and their constants.

:mod:`limitsim.experiments.costs` builds each experiment's predicted work from these.  Bytes
come from the routes' own memory estimators (:func:`limitsim.finite._loop.memory_bytes`,
:func:`limitsim.particles.simulate.memory_bytes`, :func:`limitsim.kernels.recursion.kernel_bytes`,
the linear limit's ``2 r² L² T²`` floats).

Cost models (CPU seconds; one BLAS thread, as sweep workers run):

- finite networks (:func:`limitsim.finite.train.train_finite_batch`), K configurations, L blocks of
  ``bd`` matrices, width n, batch B, T steps: per step and matrix
  ``c_layer + K (c_matmul B n² + c_update n² + c_elementwise B n)`` (the three products of
  forward, backward and gradient, the SGD or Adam update, and the fused elementwise kernels),
  the K terms × the constant ``float64`` in float64, plus ``c_draw K L bd n²`` for the
  weight draws; R recorded steps add a one-row forward and backward pass each and the
  ``(L+1)² n`` kernels;
- the exact linear limit (:func:`limitsim.linear_limit`): ``c_linear · 4 L² r² (p + 2r) Σ_t t²``
  (the module's operation count; r = min(B, e) channels, p = min(B + P, d) read-out passes);
- particles (:func:`limitsim.simulate_limit`), N particles, L bd matrices, T steps of B
  examples: ``N L bd (c_hat T B + c_basis (T B)²)`` (per step, each matrix projects on a
  basis that grows by B hats);
- kernels at initialization: ``c_kernel`` per layer (closed-form φ) or ``c_kernel_hermite``
  (Hermite expansion), plus ``c_ode`` per φ for the depth limit;
- the classification: ``c_classify`` per (α, γ);
- a sweep: ``c_sweep`` (store, worker pool, dataset) plus ``c_point`` per point; a digits task
  loads its batches at ``c_task`` per example.

The constants of the finite-network, particle and linear-limit models (all that matters at
scale) are fits (non-negative least squares, relative errors) to small calibration runs timed
with ``time.process_time`` on one BLAS thread, on a 2-core shared Linux VM (x86-64, numpy with
OpenBLAS): ``python -m limitsim.experiments.costs`` re-runs them (:func:`calibrate`, about a
minute) and prints the fitted values; paste them into :data:`CONSTANTS` to recalibrate for
another machine.  The others were timed once on the same machine: float64 against float32
training, 256-layer kernels and the depth-limit ODE per φ, 1000 ``classify`` calls, sweeps of
4 and 200 trivial points, and loading digits tasks.  Runs that diverge stop early, so grids
with many diverging points (large η, SP at large depth) cost less than predicted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any, cast

import numpy as np

__all__ = [
    "BASELINE_BYTES",
    "CONSTANTS",
    "Work",
    "batched",
    "calibrate",
    "finite",
    "kernels",
    "linear",
    "particles",
    "sweep_overhead",
]

#: Measured constants of the cost models (module docstring), seconds per unit.
CONSTANTS: Mapping[str, float] = MappingProxyType(
    {
        "c_layer": 1.15e-05,  # per step and matrix (Python and call overhead)
        "c_matmul": 4.5e-11,  # per K B n² (float32)
        "c_update_sgd": 1.3e-09,  # per K n²
        "c_update_adam": 2.6e-09,  # per K n²
        "c_elementwise": 3.8e-09,  # per K B n
        "c_draw": 1.7e-08,  # per weight entry drawn
        "float64": 1.6,  # float64 / float32 time of the flop terms
        "c_linear": 1.3e-09,  # per operation of the linear limit's count
        "c_hat": 1.3e-07,  # per particle, matrix and training vector
        "c_basis": 3.3e-09,  # per particle, matrix and (training vectors)²
        "c_kernel": 6e-06,  # per layer, closed-form φ
        "c_kernel_hermite": 1.5e-04,  # per layer, Hermite expansion
        "c_ode": 0.012,  # per φ, depth-limit ODE
        "c_classify": 3.4e-06,  # per (α, γ)
        "c_sweep": 0.5,  # per sweep
        "c_point": 1e-03,  # per sweep point
        "c_task": 2.7e-06,  # per digits example loaded (steps × batch)
    }
)
#: Resident bytes of a worker process before it allocates any array (imports, numba code).
BASELINE_BYTES = 250 * 2**20
#: The bundled digits task: input and output dimensions.
DIGITS_D_IN, DIGITS_D_OUT = 64, 10


@dataclass(frozen=True, slots=True)
class Work:
    """One piece of an experiment's work.

    Attributes
    ----------
    seconds : float
        Predicted CPU seconds.
    bytes : int
        Predicted peak bytes of its arrays (without :data:`BASELINE_BYTES`).
    sweep : str or None
        The sweep whose task it is (tasks of one sweep run in parallel); None for work in the
        calling process.
    """

    seconds: float
    bytes: int
    sweep: str | None = None


# ----------------------------------------------------------------- route models
def finite(
    configs: int,
    *,
    depth: int,
    width: int,
    batch: int,
    steps: int,
    optimizer: str = "sgd",
    block_depth: int = 1,
    pre_ln: bool = False,
    d_in: int = DIGITS_D_IN,
    d_out: int = DIGITS_D_OUT,
    dtype: str = "float32",
    record_steps: int = 0,
    record_backward: bool = True,
    sweep: str | None = None,
) -> Work:
    """One :func:`limitsim.finite.train.train_finite_batch` call of ``configs`` networks."""
    from limitsim.finite._loop import memory_bytes
    from limitsim.finite._net import Spec
    from limitsim.nonlinearities.registry import nonlinearity
    from limitsim.run import Record

    c = CONSTANTS
    K, n, B, L, bd = configs, width, batch, depth, block_depth
    flop = c["float64"] if dtype == "float64" else 1.0
    update = c["c_update_adam"] if optimizer == "adam" else c["c_update_sgd"]
    per_step = c["c_layer"] + K * flop * (c["c_matmul"] * B * n * n + update * n * n)
    per_step += K * flop * c["c_elementwise"] * B * n
    recorded = c["c_layer"] + K * flop * (c["c_matmul"] * n * n + c["c_elementwise"] * n)
    seconds = steps * L * bd * per_step + record_steps * L * bd * recorded
    seconds += c["c_elementwise"] * K * record_steps * (L + 1) ** 2 * n
    seconds += c["c_draw"] * K * L * bd * n * n + c["c_task"] * steps * B
    relu = nonlinearity("relu")  # φ does not change the memory
    spec = Spec(depth=L, width=n, d_in=d_in, d_out=d_out, phi=relu, block_depth=bd,
                pre_ln=pre_ln, dtype=np.dtype(dtype), optimizer=optimizer)  # fmt: skip
    shape = _TaskShape(steps=steps, batch_size=B, d_in=d_in, d_out=d_out)
    record = None
    if record_steps:
        record = Record(steps=tuple(range(record_steps)), backward=record_backward)
    need = memory_bytes(spec, K, cast(Any, shape), record, 0)
    return Work(seconds, int(need), sweep)


@dataclass(frozen=True, slots=True)
class _TaskShape:
    """The sizes :func:`limitsim.finite._loop.memory_bytes` reads from a Task (no data)."""

    steps: int
    batch_size: int
    d_in: int
    d_out: int
    eval_X: None = None


def linear(
    *,
    depth: int,
    steps: int,
    batch: int,
    d_in: int,
    d_out: int = 1,
    n_eval: int = 0,
    sweep: str | None = None,
) -> Work:
    """One :func:`limitsim.linear_limit` run (operation count and memory of its docstring)."""
    r = min(batch, d_out)
    p = min(batch + n_eval, d_in)
    operations = 4 * depth**2 * r**2 * (p + 2 * r) * sum(t * t for t in range(steps))
    return Work(CONSTANTS["c_linear"] * operations, 8 * 2 * r * r * depth**2 * steps**2, sweep)


@dataclass(frozen=True, slots=True)
class _SystemShape:
    """The sizes :func:`limitsim.particles.simulate.memory_bytes` reads from a SystemSpec."""

    n_matrices: int
    optimizer: str
    n_partners: int | None = None


def particles(
    *,
    n_particles: int,
    depth: int,
    steps: int,
    batch: int,
    block_depth: int = 1,
    n_replicas: int = 8,
    optimizer: str = "sgd",
    n_partners: int | None = None,
    extra_hats: int = 0,
    sweep: str | None = None,
) -> Work:
    """One :func:`limitsim.simulate_limit` run (``extra_hats``: probe and evaluation vectors;
    ``n_partners`` as there, None: exact Adam partners)."""
    from limitsim.particles.simulate import memory_bytes

    vectors = steps * batch
    matrices = depth * block_depth
    seconds = (
        n_particles * matrices * (CONSTANTS["c_hat"] * vectors + CONSTANTS["c_basis"] * vectors**2)
    )
    shape = _SystemShape(n_matrices=matrices, optimizer=optimizer, n_partners=n_partners)
    need = memory_bytes(
        cast(Any, shape), vectors + extra_hats, n_particles, n_particles // n_replicas
    )
    return Work(seconds, need, sweep)


def kernels(phi: str, depths: Iterable[int], *, n_inputs: int = 2) -> Work:
    """:func:`limitsim.init_kernels` at ``depths`` and the depth limit, for one φ."""
    from limitsim.kernels.recursion import kernel_bytes
    from limitsim.nonlinearities.registry import nonlinearity

    closed = nonlinearity(phi).closed_form is not None
    per_layer = CONSTANTS["c_kernel" if closed else "c_kernel_hermite"]
    depths = list(depths)
    seconds = per_layer * sum(depths) + CONSTANTS["c_ode"]
    return Work(seconds, kernel_bytes(max(depths), n_inputs))


def sweep_overhead(points: int) -> Work:
    """The store, pool and dataset work of one sweep of ``points`` points (calling process)."""
    return Work(CONSTANTS["c_sweep"] + CONSTANTS["c_point"] * points, 0)


def batched(groups: Iterable[tuple[int, Callable[[int], Work]]], size: int) -> list[Work]:
    """Tasks of a sweep batched ``size`` points at a time, and the sweep's overhead.

    ``groups`` holds, per group of points that share an architecture, its number of points and
    the work of a batch of k of them (``k -> Work``).
    """
    tasks: list[Work] = []
    total = 0
    for count, work in groups:
        total += count
        full, rest = divmod(count, size)
        tasks += [work(size)] * full + ([work(rest)] if rest else [])
    return [*tasks, sweep_overhead(total)]


# ---------------------------------------------------------------- calibration
#: Finite-network calibration runs: (K, L, n, B, T, optimizer, block depth, pre-LN, φ).
FINITE_DESIGN = (
    (1, 64, 16, 8, 20, "sgd", 1, False, "relu"),
    (1, 64, 16, 8, 20, "adam", 1, False, "relu"),
    (8, 64, 16, 8, 20, "adam", 1, False, "relu"),
    (8, 16, 64, 32, 20, "sgd", 1, False, "relu"),
    (8, 16, 64, 32, 20, "adam", 1, False, "relu"),
    (8, 16, 128, 32, 20, "adam", 1, False, "relu"),
    (8, 16, 256, 8, 10, "adam", 1, False, "relu"),
    (8, 16, 256, 8, 10, "sgd", 1, False, "relu"),
    (8, 16, 256, 64, 10, "adam", 1, False, "relu"),
    (20, 16, 64, 32, 20, "adam", 1, False, "relu"),
    (4, 32, 64, 32, 20, "adam", 2, True, "abs"),
    (8, 32, 64, 32, 20, "adam", 1, False, "abs"),
    (8, 8, 512, 8, 4, "adam", 1, False, "relu"),
    (2, 8, 512, 64, 4, "sgd", 1, False, "relu"),
    (8, 256, 16, 8, 10, "sgd", 1, False, "relu"),
)


def _cpu(function: Callable[[], object]) -> float:
    """CPU seconds of one call (after a first call that compiles and warms up)."""
    import time

    function()
    start = time.process_time()
    function()
    return time.process_time() - start


def calibrate() -> dict[str, float]:
    """Measure the constants of the finite-network, particle and linear-limit models.

    Runs :data:`FINITE_DESIGN` and small particle and linear-limit runs on one BLAS thread,
    and fits each model by non-negative least squares in relative error (about a minute).
    """
    from threadpoolctl import threadpool_limits

    from limitsim.data import few_point, load_dataset
    from limitsim.finite.train import train_finite_batch
    from limitsim.linear.limit import linear_limit
    from limitsim.parametrization import Parametrization
    from limitsim.particles.simulate import simulate_limit

    rows: list[list[float]] = []
    times: list[float] = []
    with threadpool_limits(1):
        for K, L, n, B, T, opt, bd, ln, phi in FINITE_DESIGN:
            task = load_dataset("digits", steps=T, batch_size=B)
            p = Parametrization.preset("depth_mup", eta=0.01, optimizer=opt, base_depth=8)
            kw: dict[str, Any] = {
                "depth": L,
                "width": n,
                "block_depth": bd,
                "pre_ln": ln,
                "phi": phi,
            }
            run = partial(train_finite_batch, task, [p] * K, seeds=list(range(K)),
                          dtype="float32", eval_every=0, **kw)  # fmt: skip
            times.append(_cpu(run))
            m = T * L * bd
            adam = opt == "adam"
            rows.append([m, m * K * B * n * n, m * K * n * n * (not adam), m * K * n * n * adam,
                         m * K * B * n, K * L * bd * n * n])  # fmt: skip
        names = ("c_layer", "c_matmul", "c_update_sgd", "c_update_adam", "c_elementwise", "c_draw")
        out = dict(zip(names, _fit(rows, times), strict=True))
        param = Parametrization.depth_mup(eta=0.5)
        rows, times = [], []
        for N, L, T in ((16384, 2, 10), (16384, 4, 10), (16384, 4, 5), (32768, 4, 5)):
            task = few_point(steps=T, n_points=4, d_in=8, seed=0)
            times.append(
                _cpu(partial(simulate_limit, task, param, depth=L, n_particles=N, progress=False))
            )
            rows.append([N * L * T * 4, N * L * (T * 4) ** 2])
        out |= dict(zip(("c_hat", "c_basis"), _fit(rows, times), strict=True))
        rows, times = [], []
        for L, T in ((64, 10), (128, 10), (256, 10), (128, 20)):
            task = few_point(steps=T, n_points=4, d_in=8, seed=0)
            times.append(_cpu(partial(linear_limit, task, param, depth=L)))
            rows.append([4 * L * L * (4 + 2) * sum(t * t for t in range(T))])
        out["c_linear"] = _fit(rows, times)[0]
    return out


def _fit(rows: Sequence[Sequence[float]], times: Sequence[float]) -> list[float]:
    """Non-negative least-squares coefficients of ``times ≈ rows @ c`` in relative error."""
    from scipy.optimize import nnls

    A, y = np.asarray(rows, dtype=np.float64), np.asarray(times, dtype=np.float64)
    coef, _ = nnls(A / y[:, None], np.ones_like(y))
    return [float(f"{c:.2g}") for c in coef]
