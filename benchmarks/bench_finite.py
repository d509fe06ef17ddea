"""Route R4 speed: finite resnets, float32 SGD, depth 64, batch 64.

Baselines, each measured in the same run:

- ``test_single_configuration``: numpy's float32 matmul rate on the shapes of the network's
  products ((64 × n) @ (n × n), also transposed), with the same BLAS thread setting.  The
  trainer's achieved rate counts the three products per layer and step, ``6 B n² L`` flops.
  ``extra_info["efficiency"]`` = achieved GFLOP/s / matmul GFLOP/s.
- ``test_eight_learning_rates_batched``: eight sequential ``train_finite`` calls with the same
  eight learning rates; ``extra_info["ratio"]`` = sequential time / batched time (one
  thread), ``ratio_two_threads`` with ``threads=2`` (two groups of four on two threads).
- ``test_pytorch_baseline``: the same network in PyTorch on the CPU at the same thread count
  (1 and 2; limitsim's ``blas_threads``), only where ``import torch`` works (it is not a
  dependency; the test is skipped otherwise: ``pip install torch==2.13.0`` in a venv with
  ``--system-site-packages`` to run it).  ``extra_info["ratio"]`` = PyTorch time / ours.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

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
    best = np.inf
    with threadpool_limits(threads, user_api="blas"):
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(reps):
                np.matmul(x, w, out=out)
                np.matmul(x, w.T, out=out)
                np.matmul(x.T, x, out=grad)
            best = min(best, time.perf_counter() - start)
    return 6.0 * BATCH * width * width * reps / best / 1e9


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
    benchmark.extra_info.update(
        steps_per_second=STEPS / seconds,
        gflops=achieved,
        numpy_matmul_gflops=matmul,
        efficiency=achieved / matmul,
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
    sequential = _best(lambda: [_fit(task, p, width) for p in params])
    two_threads = _best(lambda: batched(2))
    batched_time = benchmark.stats.stats.min
    benchmark.extra_info.update(
        sequential_seconds=sequential,
        batched_seconds=batched_time,
        ratio=sequential / batched_time,
        batched_two_threads_seconds=two_threads,
        ratio_two_threads=sequential / two_threads,
        config_steps_per_second=8 * STEPS / batched_time,
        gflops=8 * _flops_per_step(width) * STEPS / batched_time / 1e9,
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


def _best(fn, rounds=3):
    best = np.inf
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("width", [128, 512])
def test_pytorch_baseline(benchmark, width, threads):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (optional baseline)")
    torch.manual_seed(0)
    task = _task()
    X = torch.tensor(task.X, dtype=torch.float32)
    Y = torch.tensor(task.Y, dtype=torch.float32)
    param = Parametrization.depth_mup(eta=0.05)
    m, lr = param.branch_multiplier(DEPTH), param.learning_rate(DEPTH)
    U = torch.randn(32, width)
    Ws = [torch.randn(width, width, requires_grad=True) / width**0.5 for _ in range(DEPTH)]
    Ws = [w.detach().requires_grad_() for w in Ws]
    V = torch.randn(width, 4) / width

    def fit():
        for t in range(STEPS):
            x = X[t] @ U
            for w in Ws:
                u = torch.relu(x @ w)
                x = x + m * (u - u.mean(dim=1, keepdim=True))
            loss = 0.5 * ((x @ V - Y[t]) ** 2).sum(dim=1).mean()
            grads = torch.autograd.grad(loss, Ws)
            with torch.no_grad():
                for w, g in zip(Ws, grads, strict=True):
                    w -= lr * g

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        benchmark.pedantic(fit, rounds=3, iterations=1)
    finally:
        torch.set_num_threads(previous)
    torch_seconds = benchmark.stats.stats.min
    _fit(task.with_steps(2), param, width, threads)
    ours = _best(lambda: _fit(task, param, width, threads))
    benchmark.extra_info.update(
        baseline=f"PyTorch {torch.__version__} on the CPU, {threads} thread(s)",
        limitsim_seconds=ours,
        ratio=torch_seconds / ours,
    )
    print(
        f"\nwidth {width}, {threads} thread(s): PyTorch {torch_seconds:.3f} s, limitsim "
        f"{ours:.3f} s: limitsim is {torch_seconds / ours:.2f}x as fast"
    )
