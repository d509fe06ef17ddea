"""The training loop of route R4: steps, losses, divergence bookkeeping, probe recording.

:class:`Trainer` drives a :class:`limitsim.finite._net.BatchedResnet` over a task's steps
(see :func:`limitsim.finite.train.train_finite_batch` for the semantics it implements), and
:class:`Recorder` keeps the probe's ``x^l``, ``h^l`` and ``δh̃^l`` at the recorded steps and
turns them into the kernels of :class:`limitsim.Recorded` (``⟨u|v⟩ = u·v/n``).
:func:`memory_bytes` estimates, before anything is allocated, what both hold.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from limitsim.finite._net import BatchedResnet, Spec
from limitsim.run import Record, Recorded
from limitsim.task import Task
from limitsim.validation import bounded

__all__ = ["Recorder", "Trainer", "memory_bytes"]


def memory_bytes(
    spec: Spec, n_configs: int, task: Task, record: Record | None, eval_every: int
) -> int:
    """Bytes a :class:`Trainer` of ``n_configs`` networks of architecture ``spec`` allocates.

    With K configurations, L blocks of ``bd`` matrices, width n, ``s`` bytes per ``spec.dtype``
    entry, T steps of B examples, P evaluation inputs (0 when not evaluated), d inputs and e
    outputs, and ``p = 1`` with pre-LN (else 0), the terms are:

    - weights ``s K (d n + L bd n² + n e)``, three times that for Adam (two moments);
    - the training pass (every activation kept for the backward):
      ``s K [B n ((2 + p + 2 bd) L + 6) + p L B + a n²]`` with ``a = 0`` when SGD updates in one
      BLAS call (``Spec.fused_update``) and 1 otherwise (an (n, n) gradient), plus the
      per-step product ``δx̃^L``, ``s K B n``;
    - the evaluation pass (one layer kept): ``s K (P n (4 + p + 2 bd) + p P)``;
    - the float64 outputs ``f`` (K, T, B, e), ``loss`` (K, T) and ``f_eval`` (K, T, P, e);
    - with ``record`` (R steps): the float64 probe features ``x`` (K, R, L+1, n),
      ``h`` (K, R, L, n), the ``δh̃`` kernels (K, R, L, L) when ``record.backward``, and a
      one-row training pass; with ``record.remainder`` also a copy of the initial hidden
      weights ``s K L n²`` and the float64 remainders (K, R, L).

    Weight draws (two float64 (n, n) arrays), the batch and the per-step (K, B, e) arrays are
    left out: they are small next to the weights or the activations.
    """
    K, L, bd, n = n_configs, spec.depth, spec.block_depth, spec.width
    s, p = int(np.dtype(spec.dtype).itemsize), int(spec.pre_ln)
    T, B, d, e = task.steps, task.batch_size, task.d_in, task.d_out
    P = 0 if task.eval_X is None or not eval_every else int(task.eval_X.shape[0])

    gradient = 0 if spec.fused_update else n * n

    def training_pass(rows: int) -> int:
        return K * (rows * n * ((2 + p + 2 * bd) * L + 6) + p * L * rows + gradient)

    weights = K * (d * n + L * bd * n * n + n * e) * (3 if spec.optimizer == "adam" else 1)
    elements = weights + training_pass(B) + K * B * n + K * (P * n * (4 + p + 2 * bd) + p * P)
    outputs = K * T * (B * e + 1 + P * e)
    if record is not None:
        R = len(record.steps)
        outputs += K * R * ((2 * L + 1) * n + (L * L if record.backward else 0))
        elements += training_pass(1)
        if record.remainder:
            elements += K * L * n * n
            outputs += K * R * L
    return s * elements + 8 * outputs


class Trainer:
    """Training loop over steps: forward, loss, divergence bookkeeping, backward, update."""

    def __init__(
        self, task: Task, net: BatchedResnet, bound: float, record: Record | None, every: int
    ) -> None:
        self.task, self.net, self.bound, self.every = task, net, bound, every
        K, T, B, e = net.size, task.steps, task.batch_size, task.d_out
        self.f = np.full((K, T, B, e), np.nan)
        self.loss = np.full((K, T), np.nan)
        self.f_eval = None
        if task.eval_X is not None and every:
            self.f_eval = np.full((K, T, task.eval_X.shape[0], e), np.nan)
        self.diverged_step = np.full(K, -1)
        self.active = np.arange(K)
        self.recorder = None if record is None else Recorder(record, task, net)

    def run(self, progress: bool) -> None:
        task, net, dt = self.task, self.net, self.net.spec.dtype
        eval_X = None
        if self.f_eval is not None:
            eval_X = np.ascontiguousarray(task.eval_X, dtype=dt)
        steps: Any = range(task.steps)
        if progress:
            from limitsim._progress import Bar

            steps = Bar(steps, desc="train", unit="step")
        with np.errstate(all="ignore"):
            for t in steps:
                if self.recorder is not None and t in self.recorder.steps:
                    self.recorder.record(t, self.active)
                X = np.ascontiguousarray(task.X[t], dtype=dt)
                buf = net.buffers(X.shape[0], store=True)
                f = net.forward(X, buf).astype(np.float64)
                loss = np.asarray(task.value(f, task.Y[t]), dtype=np.float64)
                ok = np.isfinite(loss) & bounded(f, self.bound)
                self.f[self.active, t] = f
                self.loss[self.active, t] = loss
                if eval_X is not None and t % self.every == 0:
                    fe = net.forward(eval_X, net.buffers(eval_X.shape[0], store=False))
                    fe = fe.astype(np.float64)
                    ok &= bounded(fe, self.bound)
                    assert self.f_eval is not None  # allocated whenever eval_X is
                    self.f_eval[self.active, t] = fe
                if not ok.all():
                    self._drop(~ok, t)
                    if net.size == 0:
                        break
                    f = f[ok]
                    buf = net.buffers(X.shape[0], store=True)
                    net.forward(X, buf)  # refill the stored activations of the survivors
                if progress:
                    steps.set_postfix(
                        loss=f"{np.nanmin(self.loss[:, t]):.4g}", active=net.size, refresh=False
                    )
                chi = np.ascontiguousarray(task.chi(f, task.Y[t]), dtype=dt)
                net.train_step(X, chi, buf, t)
            if net.size:
                if self.recorder is not None and task.steps in self.recorder.steps:
                    self.recorder.record(task.steps, self.active)
                bad = ~net.all_finite()
                if bad.any():
                    self.diverged_step[self.active[bad]] = task.steps

    def _drop(self, bad: NDArray[np.bool_], t: int) -> None:
        lost = self.active[bad]
        self.diverged_step[lost] = t
        self.f[lost, t:] = np.nan
        self.loss[lost, t:] = np.nan
        if self.f_eval is not None:
            self.f_eval[lost, t:] = np.nan
        self.active = self.active[~bad]
        self.net.select(np.flatnonzero(~bad))


class Recorder:
    """Probe vectors x^l, h^l at the recorded steps, the δh̃ cross-layer kernels and the
    Def. 7.7 remainders (:attr:`limitsim.Recorded.remainder`)."""

    def __init__(self, record: Record, task: Task, net: BatchedResnet) -> None:
        spec = net.spec
        if record.remainder and (spec.block != "post" or spec.block_depth != 1):
            raise ValueError(
                "Record(remainder=True) needs block='post' and block_depth=1 (Def. 7.7), got "
                f"block={spec.block!r}, block_depth={spec.block_depth}"
            )
        self.steps = record.steps
        self.backward = record.backward
        self.probe = np.ascontiguousarray(record.probe_for(task.X)[None, :], dtype=spec.dtype)
        K, R, L, n = net.size, len(record.steps), spec.depth, spec.width
        self.n = n
        self.net = net
        self.x = np.full((K, R, L + 1, n), np.nan)
        self.h = np.full((K, R, L, n), np.nan)
        self.dh = np.full((K, R, L, L), np.nan) if record.backward else None
        self.W0 = net.Wt[:, 0].copy() if record.remainder else None  # (L, K, n, n)
        self.remainder = np.full((K, R, L), np.nan) if record.remainder else None

    def record(self, step: int, active: NDArray[np.intp]) -> None:
        net, r = self.net, self.steps.index(step)
        buf = net.buffers(1, store=True)
        net.forward(self.probe, buf)
        self.x[active, r] = buf.xs[:, :, 0, :].transpose(1, 0, 2)
        self.h[active, r] = buf.hs[:, :, 0, :].transpose(1, 0, 2)
        if self.dh is not None:
            spec = net.spec
            dh = np.empty((spec.depth, net.size, 1, spec.width), spec.dtype)
            seed = spec.width * net.V.sum(axis=2)[:, None, :]
            net.backward(buf, seed.astype(spec.dtype), dh_out=dh)
            vectors = dh[:, :, 0, :].transpose(1, 0, 2).astype(np.float64)
            self.dh[active, r] = vectors @ vectors.transpose(0, 2, 1) / self.n
        if self.remainder is not None:
            self.remainder[active, r] = self._remainder(buf, active)

    def _remainder(self, buf: Any, active: NDArray[np.intp]) -> NDArray[np.float64]:
        """Def. 7.7's remainder RMS per block for the probe, shape (K_active, L)."""
        net = self.net
        assert self.W0 is not None
        spec, act = net.spec, net._activation
        shape = (net.size, 1, spec.width)
        phi_t, phi_0, dphi_0, scratch = (np.empty(shape, spec.dtype) for _ in range(4))
        out = np.empty((net.size, spec.depth))
        for layer in range(spec.depth):
            z = cast(NDArray[Any], buf.zs)[layer] if spec.pre_ln else buf.x(layer)
            h0 = np.matmul(z, self.W0[layer, active])
            act(buf.hs[layer], phi_t, scratch)
            act(h0, phi_0, dphi_0)
            rest = (phi_t - phi_0 - dphi_0 * (buf.hs[layer] - h0)).astype(np.float64)
            rest -= rest.mean(axis=2, keepdims=True)
            out[:, layer] = np.sqrt(np.mean(rest[:, 0] ** 2, axis=1)) * net.hyper.multiplier
        return out

    def result(self, k: int) -> Recorded:
        x, h, n = self.x[k], self.h[k], self.n
        return Recorded(
            steps=np.asarray(self.steps, dtype=np.int64),
            x_layers=np.einsum("rln,rmn->rlm", x, x) / n,
            x_steps=np.einsum("rln,sln->rsl", x, x) / n,
            h_steps=np.einsum("rln,sln->rsl", h, h) / n,
            dh_layers=None if self.dh is None else self.dh[k],
            remainder=None if self.remainder is None else self.remainder[k],
        )
