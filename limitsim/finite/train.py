"""Route R4: finite-width resnets trained with SGD or Adam, many configurations at once.

The model is the one of ``theory/algorithms.md`` §1 (Tensor Programs VI, Sec. 6.3 and 10.2),
with ``m = a (L/L0)^-α`` = :meth:`Parametrization.branch_multiplier`::

    x^0 = U ξ                          U_ij ~ N(0, 1)       (frozen unless train_input)
    z   = LN(x^{l-1}) if pre_ln else x^{l-1}
    post, block depth 1:  x^l = x^{l-1} + m MS(φ(W^l z))
    post, block depth 2:  x^l = x^{l-1} + m MS(φ(W^{l2} φ(W^{l1} z)))
    pre,  block depth 1:  x^l = x^{l-1} + m W^l φ(z)              (no MS)
    pre,  block depth 2:  x^l = x^{l-1} + m W^{l2} φ(W^{l1} φ(z))
    f   = Vᵀ x^L                       V_ij ~ N(0, 1/n²)    (frozen unless train_output)

``W ~ N(0, 1/n)``; ``MS(v) = v − mean(v)`` over the width; ``LN`` subtracts the mean and divides
by the RMS (no affine parameters, no ε).  The loss is the task's batch mean.  Updates of the
hidden weights: SGD with the raw rate :meth:`Parametrization.learning_rate` on the true
gradient; Adam on ``gradient_scale · g`` with rate ``learning_rate(depth, width)``, ε inside
the square root and bias-corrected moments (Def. 6.1).  Trainable input/output layers use
:meth:`Parametrization.io_learning_rate` and :meth:`Parametrization.io_gradient_scale` (µP).
No scaling is computed here: every factor comes from the :class:`Parametrization`.

Recorded kernels (:class:`limitsim.Record`): ``h^l`` is the output of block l's last matrix
product — for a post block the pre-activation of its last φ (the convention of
:mod:`limitsim.run`), for a pre block ``W^l φ(z)`` (the paper's §8.2 usage) — and ``δh̃^l``
is ``n`` times the gradient of ``Σ f`` at ``h^l`` divided by ``m``: ``φ′(h^l) ⊙ MS(δx̃^l)``
for post blocks and ``δx̃^l`` for pre blocks.  ``⟨u|v⟩ = u·v/n``.

Divergence: a configuration whose outputs (on the batch or on ``task.eval_X``) or loss are
not finite, or exceed ``divergence_bound`` in absolute value, is stopped at that step; its
``f``, ``loss`` and ``f_eval`` are NaN from that step on, ``Run.diverged`` is True and
``Run.diverged_step`` the step.  It is dropped from the batch, so the others are unaffected.
Weights that become non-finite in the last update give ``diverged_step = T``.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Required, TypedDict, Unpack, cast

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from limitsim._memory import check_memory as guard_memory
from limitsim.architecture import BLOCKS, Architecture, resolve
from limitsim.finite._loop import Trainer, memory_bytes
from limitsim.finite._net import BatchedResnet, Hyper, Spec
from limitsim.nonlinearities.registry import Nonlinearity
from limitsim.parametrization import Parametrization
from limitsim.run import Record, Run, check_training_inputs
from limitsim.task import Task
from limitsim.validation import (
    check_bool,
    check_depth,
    check_integer,
    check_positive_real,
    check_type,
)

__all__ = ["BLOCKS", "DTYPES", "check_memory", "train_finite", "train_finite_batch"]

DTYPES = {"float64": np.float64, "float32": np.float32}
_BLAS_THREADS = "a positive integer or None"


class FiniteOptions(TypedDict, total=False):
    """The keywords :func:`train_finite` passes on to :func:`train_finite_batch`."""

    depth: Required[int]
    width: Required[int]
    phi: str | Nonlinearity | None
    arch: Architecture | None
    block_depth: int | None
    block: Literal["post", "pre"] | None
    pre_ln: bool | None
    dtype: str
    record: Record | None
    train_input: bool
    train_output: bool
    divergence_bound: float
    eval_every: int
    blas_threads: int | None
    progress: bool


def train_finite(
    task: Task, param: Parametrization, *, seed: int = 0, **options: Unpack[FiniteOptions]
) -> Run:
    """Train one width-n, depth-L resnet on ``task`` (route R4).

    Parameters
    ----------
    task : Task
        Batches ``X`` (T, B, d), targets ``Y`` (T, B, e), loss, optional ``eval_X``.
    param : Parametrization
        (α, γ, a, η, optimizer, base depth): every scaling comes from its methods.
    depth, width : int
        Number of blocks L ≥ 1 and width n ≥ 1.
    phi : str or Nonlinearity, optional
        Nonlinearity spec (see :func:`limitsim.nonlinearities.registry.nonlinearity`); default
        ``"relu"``.
    seed : int
        Seed of the initial weights (see :func:`limitsim.finite._net.draw_weights`).
    arch : Architecture, optional
        φ, block, block depth (1 or 2, either block) and pre-LN in one value
        (:class:`limitsim.Architecture`, module docstring).
    block_depth, block, pre_ln : optional
        Loose alternative to ``arch`` (defaults 1, ``"post"``, False); a value that
        conflicts with ``arch`` raises ValueError.
    dtype : {"float64", "float32"}
        Arithmetic precision (outputs are returned as float64).
    record : Record, optional
        Probe kernels to record (:class:`limitsim.Recorded` in ``Run.recorded``).
    train_input, train_output : bool
        Train U and V with µP rates (default: frozen, as in the paper).
    divergence_bound : float
        Outputs with ``|f|`` above this count as diverged.
    eval_every : int
        Evaluate on ``task.eval_X`` every this many steps (and at step 0); ``f_eval`` is NaN
        at the other steps; 0 skips evaluation (``f_eval`` is None).  Each evaluation costs a
        forward pass over all P evaluation inputs.
    blas_threads : int or None
        BLAS threads while training (None: the library's setting).  Default 1: multithreaded
        BLAS on products of this size slows down many-fold as soon as other processes share
        the cores (``benchmarks/README.md``); sweeps run one process per core instead.
    progress : bool
        Show a tqdm progress bar over the steps.

    Returns
    -------
    Run
        ``route="finite"``; ``f`` (T, B, e), ``loss`` (T,), ``f_eval`` (T, P, e) when the task
        has ``eval_X``, ``recorded`` when ``record`` is given, ``diverged``/``diverged_step``.

    Raises
    ------
    ValueError
        For invalid arguments, or a network that cannot fit in this machine's memory
        (checked before allocating, :func:`check_memory`).

    Notes
    -----
    This is :func:`train_finite_batch` with one configuration (the keywords other than
    ``seed`` are passed on; their defaults are that function's).
    """
    (run,) = train_finite_batch(task, [param], seeds=[seed], **options)
    return run


def train_finite_batch(
    task: Task,
    params: Parametrization | Sequence[Parametrization],
    *,
    depth: int,
    width: int,
    phi: str | Nonlinearity | None = None,
    seeds: int | Sequence[int] = 0,
    arch: Architecture | None = None,
    block_depth: int | None = None,
    block: Literal["post", "pre"] | None = None,
    pre_ln: bool | None = None,
    dtype: str = "float64",
    record: Record | None = None,
    train_input: bool = False,
    train_output: bool = False,
    divergence_bound: float = 1e8,
    eval_every: int = 1,
    blas_threads: int | None = 1,
    threads: int = 1,
    progress: bool = False,
) -> list[Run]:
    """Train K configurations of one architecture together, in one batched computation.

    Configuration k uses ``params[k]`` and ``seeds[k]``; a single Parametrization or seed (or
    a sequence of length 1) is broadcast to the length of the other argument, so
    ``train_finite_batch(task, [dataclasses.replace(p, eta=e) for e in etas], ...)`` sweeps
    learning rates from one initialization and ``train_finite_batch(task, p, seeds=range(8),
    ...)`` runs eight seeds.  Parametrizations may differ in every field (α, γ, a, η, Adam
    constants, base depth) except ``optimizer``, which must be common.  All other arguments
    are those of :func:`train_finite` and are shared, except ``threads``.

    ``threads`` (default 1) splits the configurations into that many groups of consecutive
    configurations, trained concurrently on as many threads (numpy's products and the numba
    kernels release the GIL), each with ``blas_threads`` BLAS threads.  The numbers do not
    depend on it: every configuration's arithmetic is the same whatever else is in its batch
    (tested bit for bit).  Batching alone saves only Python overhead (one configuration
    already runs near the one-core matmul rate, ``benchmarks/README.md``);
    ``threads=os.cpu_count()`` is what uses a machine's other cores when one batch runs per
    machine.  Sweeps leave it at 1 (they run one worker process per core).

    Returns
    -------
    list of Run
        One per configuration, in order; each equals (to float round-off) the Run of a
        separate :func:`train_finite` call with the same parametrization and seed.  A
        diverging configuration is dropped from the batch at its divergence step and does not
        affect the others.

    Notes
    -----
    Memory: weights ``K L bd n²`` (three times that for Adam) plus activations
    ``≈ 2 K L (bd + 1) B n`` in ``dtype`` (:func:`limitsim.finite._loop.memory_bytes`); a
    batch that cannot fit in the machine's memory raises ValueError before allocating.
    Cost per step: ``≈ 6 K L bd B n²`` flops in batched BLAS
    calls; identical seeds share one weight draw.
    """
    bound = check_positive_real("divergence_bound", divergence_bound)
    eval_every = check_integer("eval_every", eval_every)
    if blas_threads is not None:
        check_integer("blas_threads", blas_threads, minimum=1, what=_BLAS_THREADS)
    threads = check_integer("threads", threads, minimum=1)
    param_list, seed_list = _broadcast(params, seeds)
    check_training_inputs(task, param_list[0], record)
    arch = resolve(arch, phi=phi, block=block, block_depth=block_depth, pre_ln=pre_ln)
    spec = _spec(
        task,
        param_list,
        depth=depth,
        width=width,
        arch=arch,
        dtype=dtype,
        train_input=train_input,
        train_output=train_output,
    )
    groups = np.array_split(np.arange(len(param_list)), min(threads, len(param_list)))
    _check_memory(spec, len(param_list), task, record, eval_every)
    trainers = []
    for group in groups:
        params_k = [param_list[k] for k in group]
        net = BatchedResnet(spec, _hyper(params_k, spec), [seed_list[k] for k in group])
        trainers.append(Trainer(task, net, bound, record, eval_every))
    with threadpool_limits(blas_threads, user_api="blas"):
        if len(trainers) == 1:
            trainers[0].run(progress)
        else:  # numpy's products and the numba kernels release the GIL
            with ThreadPoolExecutor(len(trainers)) as pool:
                list(pool.map(Trainer.run, trainers, [progress] + [False] * (len(groups) - 1)))
    runs = []
    for group, trainer in zip(groups, trainers, strict=True):
        for i, k in enumerate(group):
            step = int(trainer.diverged_step[i])
            runs.append(
                Run(
                    f=trainer.f[i],
                    loss=trainer.loss[i],
                    route="finite",
                    param=param_list[k],
                    arch=arch,
                    options=_options(task, spec, seed_list[k], bound),
                    diverged=step >= 0,
                    diverged_step=step if step >= 0 else None,
                    f_eval=None if trainer.f_eval is None else trainer.f_eval[i],
                    recorded=None if trainer.recorder is None else trainer.recorder.result(i),
                )
            )
    return runs


def _broadcast(
    params: Parametrization | Sequence[Parametrization], seeds: int | Sequence[int]
) -> tuple[list[Parametrization], list[int]]:
    param_list = [params] if isinstance(params, Parametrization) else list(params)
    if isinstance(seeds, int | np.integer) and not isinstance(seeds, bool):
        seed_list = [int(seeds)]
    else:
        seed_list = list(cast(Sequence[int], seeds))
    if not param_list or not seed_list:
        raise ValueError("params and seeds must not be empty")
    for p in param_list:
        check_type("params", p, Parametrization, "Parametrization objects")
    for s in seed_list:
        check_integer("seeds", s, what="non-negative integers")
    K = max(len(param_list), len(seed_list))
    if len(param_list) not in (1, K) or len(seed_list) not in (1, K):
        raise ValueError(
            f"params ({len(param_list)}) and seeds ({len(seed_list)}) must have equal lengths "
            "or length 1"
        )
    return param_list * (K // len(param_list)), [int(s) for s in seed_list] * (K // len(seed_list))


def _network(
    task: Task, params: list[Parametrization], seeds: list[int], **architecture: Any
) -> BatchedResnet:
    """Validate the arguments and build the K initial networks (weights drawn from ``seeds``)."""
    spec = _spec(task, params, **architecture)
    return BatchedResnet(spec, _hyper(params, spec), seeds)


def check_memory(
    task: Task,
    params: Parametrization | Sequence[Parametrization],
    *,
    seeds: int | Sequence[int] = 0,
    record: Record | None = None,
    eval_every: int = 1,
    **architecture: Any,
) -> None:
    """Check that :func:`train_finite_batch` with these arguments fits in memory.

    Takes the arguments of :func:`train_finite_batch` (``depth`` and ``width`` required;
    ``divergence_bound``, ``blas_threads``, ``threads`` and ``progress`` do not change the
    memory and are not taken) and allocates nothing, so a caller that trains several
    batches can check the largest one before training any.

    Raises
    ------
    ValueError
        Invalid arguments, or the batch would need more than this machine's physical memory
        (:func:`limitsim.finite._loop.memory_bytes`).
    """
    param_list, _ = _broadcast(params, seeds)
    spec = _spec(task, param_list, **architecture)
    _check_memory(spec, len(param_list), task, record, eval_every)


def _check_memory(
    spec: Spec, n_configs: int, task: Task, record: Record | None, eval_every: int
) -> None:
    """ValueError, before allocating, when the networks cannot fit in this machine's memory."""
    s = "" if n_configs == 1 else "s"
    guard_memory(
        memory_bytes(spec, n_configs, task, record, eval_every),
        what=f"{n_configs} network{s} of depth={spec.depth}, width={spec.width} (block depth "
        f"{spec.block_depth}, {spec.optimizer}, {np.dtype(spec.dtype).name}, batch "
        f"{task.batch_size})",
        state="weights and activations",
        advice="reduce the width (memory grows like width²), the depth or the number of "
        "configurations, or train them in several calls",
    )


def _spec(
    task: Task,
    params: list[Parametrization],
    *,
    depth: int,
    width: int,
    arch: Architecture | None = None,
    phi: str | Nonlinearity | None = None,
    block: Literal["post", "pre"] | None = None,
    block_depth: int | None = None,
    pre_ln: bool | None = None,
    dtype: str = "float64",
    train_input: bool = False,
    train_output: bool = False,
) -> Spec:
    """Validate the architecture arguments (shared by the configurations ``params``)."""
    check_type("task", task, Task)
    optimizers = {p.optimizer for p in params}
    if len(optimizers) != 1:
        raise ValueError(f"all params must share one optimizer, got {sorted(optimizers)}")
    arch = resolve(arch, phi=phi, block=block, block_depth=block_depth, pre_ln=pre_ln)
    name = str(np.dtype(dtype) if not isinstance(dtype, str) else dtype)
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
    return Spec(
        depth=check_depth(depth, "depth"),
        width=check_depth(width, "width"),
        d_in=task.d_in,
        d_out=task.d_out,
        phi=arch.phi,
        block=arch.block,
        block_depth=arch.block_depth,
        pre_ln=arch.pre_ln,
        dtype=DTYPES[name],
        train_input=check_bool("train_input", train_input),
        train_output=check_bool("train_output", train_output),
        optimizer=params[0].optimizer,
    )


def _hyper(params: list[Parametrization], spec: Spec) -> Hyper:
    L, n, adam = spec.depth, spec.width, spec.optimizer == "adam"

    def column(values: list[float]) -> NDArray[np.float64]:
        return np.array(values, dtype=np.float64)

    return Hyper(
        multiplier=column([p.branch_multiplier(L) for p in params]),
        rate=column([p.learning_rate(L, n) for p in params]),
        scale=column([p.gradient_scale(L, n) if adam else 1.0 for p in params]),
        rate_in=column([p.io_learning_rate("input", n) for p in params]),
        scale_in=column([p.io_gradient_scale("input", n) if adam else 1.0 for p in params]),
        rate_out=column([p.io_learning_rate("output", n) for p in params]),
        scale_out=column([p.io_gradient_scale("output", n) if adam else 1.0 for p in params]),
        beta1=column([p.beta1 for p in params]),
        beta2=column([p.beta2 for p in params]),
        eps=column([p.eps for p in params]),
    )


def _options(task: Task, spec: Spec, seed: int, bound: float) -> dict[str, Any]:
    """The route options of a finite run (:attr:`limitsim.Run.options`)."""
    return {
        "depth": spec.depth,
        "width": spec.width,
        "seed": seed,
        "dtype": np.dtype(spec.dtype).name,
        "train_input": spec.train_input,
        "train_output": spec.train_output,
        "divergence_bound": bound,
        "task": task.name,
        "steps": task.steps,
        "batch_size": task.batch_size,
        "loss": task.loss,
    }
