"""Route R4 speed: finite resnets, float32 SGD, depth 64, batch 64.

Baselines, each measured in the same run:

- ``test_single_configuration``: numpy's float32 matmul rate on the shapes of the network's
  products ((64 × n) @ (n × n), also transposed), with the same BLAS thread setting.  The
  trainer's achieved rate counts the three products per layer and step, ``6 B n² L`` flops.
  ``extra_info["efficiency"]`` = achieved GFLOP/s / matmul GFLOP/s; ``fraction_of_bound``
  as in ``test_pytorch_baseline`` (weight draws and compilation included here).
- ``test_eight_learning_rates_batched``: eight sequential ``train_finite`` calls with the same
  eight learning rates; ``extra_info["ratio"]`` = sequential time / batched time (one
  thread), ``ratio_two_threads`` with ``threads=2`` (two groups of four on two threads);
  ``fraction_of_bound`` as in ``test_pytorch_baseline``.
- ``test_pytorch_baseline``: the same network in PyTorch on the CPU (eager, autograd, SGD on
  the hidden weights), float32, softmax cross-entropy, at widths 128, 512, 1024, 2048 and 1 and
  2 threads (limitsim's ``blas_threads``, PyTorch's ``set_num_threads``), only where ``import
  torch`` works (it is not a dependency; skipped otherwise: ``pip install torch==2.13.0`` in a
  venv with ``--system-site-packages``).  Both sides run in the same process, alternating round
  by round; set-up is not timed.  ``extra_info["ratio"]`` = PyTorch time / ours (median over
  rounds; ``ratio_of_fastest`` = the two sides' fastest rounds, steadier on a loaded machine);
  ``limitsim_fraction_of_bound`` = the step's GEMM flops at the machine's GEMM rate
  (or its weight traffic at the memory bandwidth, whichever is slower) / our time.  With
  ``-s`` the table of all rows is printed after the last one::

      python -m pytest benchmarks/bench_finite.py --benchmark-only -k pytorch -q -s
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from benchmarks._machine import bandwidth, best, gemm_rate
from limitsim import Parametrization, Task, train_finite, train_finite_batch

DEPTH, BATCH, STEPS = 64, 64, 20


def _task(steps: int = STEPS) -> Task:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((steps, BATCH, 32)) / np.sqrt(32)
    return Task.from_batches(X, rng.standard_normal((steps, BATCH, 4)))


def _flops_per_step(width: int) -> float:
    return 6.0 * BATCH * width * width * DEPTH


def _matmul_gflops(width: int, threads: int) -> float:
    """Best-of-5 float32 rate of the network's three product shapes."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((BATCH, width)).astype(np.float32)
    w = rng.standard_normal((width, width)).astype(np.float32)
    out = np.empty((BATCH, width), np.float32)
    grad = np.empty((width, width), np.float32)
    reps = max(10, 2_000_000 // width**2)

    def products():
        for _ in range(reps):
            np.matmul(x, w, out=out)
            np.matmul(x, w.T, out=out)
            np.matmul(x.T, x, out=grad)

    with threadpool_limits(threads, user_api="blas"):
        seconds = best(products, rounds=5)
    return 6.0 * BATCH * width * width * reps / seconds / 1e9


@pytest.mark.parametrize("width", [128, 512])
def test_single_configuration(benchmark, width):
    task, param = _task(), Parametrization.depth_mup(eta=0.05)
    train_finite(task.with_steps(2), param, depth=DEPTH, width=width, dtype="float32")

    def fit():
        return train_finite(task, param, depth=DEPTH, width=width, dtype="float32", eval_every=0)

    run = benchmark.pedantic(fit, rounds=3, iterations=1)
    assert not run.diverged
    seconds = benchmark.stats.stats.min
    matmul = _matmul_gflops(width, 1)  # train_finite's default: one BLAS thread
    achieved = _flops_per_step(width) * STEPS / seconds / 1e9
    bound, kind = _step_bound(width, DEPTH, 1)
    benchmark.extra_info.update(
        steps_per_second=STEPS / seconds,
        gflops=achieved,
        numpy_matmul_gflops=matmul,
        efficiency=achieved / matmul,
        bound=kind,
        fraction_of_bound=STEPS * bound / seconds,
    )


def test_eight_learning_rates_batched(benchmark):
    width = 128
    task = _task()
    params = [Parametrization.depth_mup(eta=0.01 * 2**k) for k in range(8)]
    train_finite_batch(task.with_steps(2), params, depth=DEPTH, width=width, dtype="float32")

    def batched(threads):
        return train_finite_batch(
            task, params, depth=DEPTH, width=width, dtype="float32", threads=threads
        )

    runs = benchmark.pedantic(lambda: batched(1), rounds=3, iterations=1)
    assert len(runs) == 8
    sequential = best(lambda: [_fit(task, p, width) for p in params])
    two_threads = best(lambda: batched(2))
    batched_time = benchmark.stats.stats.min
    benchmark.extra_info.update(
        sequential_seconds=sequential,
        batched_seconds=batched_time,
        ratio=sequential / batched_time,
        batched_two_threads_seconds=two_threads,
        ratio_two_threads=sequential / two_threads,
        config_steps_per_second=8 * STEPS / batched_time,
        gflops=8 * _flops_per_step(width) * STEPS / batched_time / 1e9,
        fraction_of_bound=8 * STEPS * _step_bound(width, DEPTH, 1)[0] / batched_time,
        fraction_of_bound_two_threads=8 * STEPS * _step_bound(width, DEPTH, 2)[0] / two_threads,
    )
    print(
        f"\n8 learning rates, width {width}: sequential {sequential:.3f} s, batched "
        f"{batched_time:.3f} s ({sequential / batched_time:.2f}x), batched on 2 threads "
        f"{two_threads:.3f} s ({sequential / two_threads:.2f}x)"
    )


def _fit(task, param, width, blas_threads=1):
    return train_finite(
        task, param, depth=DEPTH, width=width, dtype="float32", blas_threads=blas_threads
    )


# ----------------------------------------------------------------------------- PyTorch peer
#: Depth of the peer comparison per width (the same on both sides): 64 at width 128 as above,
#: 32 from 512 on (one step at width 2048 is then ≈ 51 GFLOP).
PEER_DEPTH = {128: 64, 512: 32, 1024: 32, 2048: 32}
#: Training steps per timed round (one round of each side per repetition, interleaved).
PEER_STEPS = {128: 12, 512: 6, 1024: 4, 2048: 3}
PEER_ROUNDS, PEER_CLASSES = 7, 10
_PEER_ROWS: list[tuple[float, ...]] = []


@pytest.fixture(scope="module")
def peer_table():
    """Collects one row per width and thread count; prints the table after the last one."""
    yield _PEER_ROWS
    if _PEER_ROWS:
        print("\n" + _peer_table(_PEER_ROWS))


def _peer_table(rows):
    head = (
        "| width | depth | threads | limitsim ms/step | PyTorch ms/step | ratio (PyTorch/limitsim) "
        "| ratio range | ratio of fastest rounds | bound | limitsim / bound | PyTorch / bound |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for width, depth, threads, ours, theirs, ratio, low, high, fastest, bound, kind in rows:
        lines.append(
            f"| {width} | {depth} | {threads} | {1e3 * ours:.2f} | {1e3 * theirs:.2f} | "
            f"{ratio:.2f} | {low:.2f}–{high:.2f} | {fastest:.2f} | {kind} {1e3 * bound:.2f} ms | "
            f"{bound / ours:.0%} | {bound / theirs:.0%} |"
        )
    return "\n".join(lines)


def _step_bound(width: int, depth: int, threads: int) -> tuple[float, str]:
    """Lower bound on one step's time: its GEMM flops at the machine's GEMM rate, or its
    unavoidable weight traffic at the memory bandwidth, whichever is larger.

    Flops: three products per layer, ``6 B n² L``.  Bytes: every hidden matrix is read by the
    forward and the backward product and read and written by the update, ``16 n² L`` (float32).
    """
    flops = gemm_rate(threads)
    compute = 6.0 * BATCH * width * width * depth / flops
    memory = 16.0 * width * width * depth / bandwidth(threads)
    return (compute, "GEMM") if compute >= memory else (memory, "memory")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("width", [128, 512, 1024, 2048])
def test_pytorch_baseline(benchmark, peer_table, width, threads):
    """limitsim and PyTorch per training step, interleaved round by round in this process.

    The network of this file with the loss of a classifier: float32, depth-µP, relu, post
    block with MS, softmax cross-entropy over 10 classes, B = 64, SGD on the hidden weights
    (input and output layers frozen); PyTorch starts from limitsim's initial weights, so both
    train the same network (their losses are compared at the end).  Set-up (weight draws,
    compilation) is outside the timings.  ``ratio`` = median over rounds of PyTorch time /
    limitsim time (> 1: limitsim faster); ``bound`` = :func:`_step_bound`.
    """
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (optional baseline)")
    from limitsim.finite._loop import Trainer
    from limitsim.finite.train import _network

    depth, steps = PEER_DEPTH[width], PEER_STEPS[width]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((steps, BATCH, 32)) / np.sqrt(32)
    Y = np.eye(PEER_CLASSES)[rng.integers(0, PEER_CLASSES, (steps, BATCH))]
    task = Task.from_batches(X, Y, loss="xent")
    param = Parametrization.depth_mup(eta=0.5)
    net = _network(task, [param], [0], depth=depth, width=width, dtype="float32")
    m, lr = param.branch_multiplier(depth), param.learning_rate(depth, width)
    X_t = torch.tensor(X, dtype=torch.float32)
    Y_t = torch.tensor(Y, dtype=torch.float32)
    U = torch.from_numpy(net.Ut[0].copy())
    V = torch.from_numpy(net.V[0].copy())
    Ws = [torch.from_numpy(net.Wt[layer, 0, 0].copy()).requires_grad_() for layer in range(depth)]
    torch_loss = []

    def fit_torch():
        for t in range(steps):
            x = X_t[t] @ U
            for w in Ws:
                u = torch.relu(x @ w)
                x = x + m * (u - u.mean(dim=1, keepdim=True))
            loss = -(Y_t[t] * torch.log_softmax(x @ V, dim=1)).sum(dim=1).mean()
            grads = torch.autograd.grad(loss, Ws)
            with torch.no_grad():
                for w, g in zip(Ws, grads, strict=True):
                    w -= lr * g
            torch_loss.append(float(loss.detach()))

    ours_loss = []

    def fit_ours():
        trainer = Trainer(task, net, 1e8, None, 0)
        trainer.run(False)
        ours_loss.extend(trainer.loss[0])

    times = []

    def one_round():
        with threadpool_limits(threads, user_api="blas"):
            start = time.perf_counter()
            fit_ours()
            middle = time.perf_counter()
            fit_torch()
            times.append(((middle - start) / steps, (time.perf_counter() - middle) / steps))

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        one_round()  # warm-up: compilation, first touches, allocator
        times.clear()
        benchmark.pedantic(one_round, rounds=PEER_ROUNDS, iterations=1)
    finally:
        torch.set_num_threads(previous)
    ours, theirs = np.array(times).T
    ratios = theirs / ours
    ratio = float(np.median(ratios))
    gap = abs(ours_loss[-1] - torch_loss[-1]) / abs(torch_loss[-1])
    assert gap < 1e-2, f"PyTorch and limitsim trained different networks ({gap:.2g})"
    bound, kind = _step_bound(width, depth, threads)
    benchmark.extra_info.update(
        baseline=f"PyTorch {torch.__version__} on the CPU, {threads} thread(s)",
        depth=depth,
        limitsim_ms_per_step=1e3 * float(np.median(ours)),
        torch_ms_per_step=1e3 * float(np.median(theirs)),
        ratio=ratio,
        ratio_min=float(ratios.min()),
        ratio_max=float(ratios.max()),
        ratio_of_fastest=float(theirs.min() / ours.min()),
        bound=kind,
        bound_ms_per_step=1e3 * bound,
        limitsim_fraction_of_bound=bound / float(np.median(ours)),
        torch_fraction_of_bound=bound / float(np.median(theirs)),
        machine_gemm_gflops=gemm_rate(threads) / 1e9,
        machine_bandwidth_gbs=bandwidth(threads) / 1e9,
        final_loss_relative_gap=gap,
    )
    row = (width, depth, threads, float(np.median(ours)), float(np.median(theirs)), ratio)
    spread = (float(ratios.min()), float(ratios.max()), float(theirs.min() / ours.min()))
    peer_table.append((*row, *spread, bound, kind))
    print("\n" + _peer_table(peer_table[-1:]).splitlines()[-1])
