"""The state and passes of K finite-width resnets trained side by side (route R4).

:class:`BatchedResnet` holds the weights of K configurations with a leading configuration
axis and runs the hand-written forward and backward passes of ``theory/algorithms.md`` §1 for
all of them at once: matrix products are batched ``np.matmul`` calls (BLAS on contiguous
float32/float64 stacks), an SGD step on a hidden matrix is one BLAS call that accumulates into
the weights (:mod:`limitsim.finite._blas`), elementwise work goes through the fused kernels of
:mod:`limitsim.finite._kernels`.  Configurations share the architecture (depth, width, φ,
block) and may differ in every per-configuration scalar: branch multiplier, learning rates,
Adam constants and seed.

Layout (row-vector convention, examples are rows): activations ``(K, R, n)``; the hidden
weights are stored transposed, ``Wt[l, j, k] = (W^{l,j+1}_k)ᵀ`` of shape ``(L, bd, K, n, n)``,
so that ``h = z @ Wt``; the input layer ``Ut[k] = U_kᵀ`` is ``(K, d, n)`` and the output layer
``V`` is ``(K, n, e)`` with ``f = x^L @ V``.

Names in the code: ``h`` is the output of the block's last matrix product (for a post block
the pre-activation of its last φ, for a pre block ``W φ(z)``); ``z`` is the block input after
the optional LayerNorm; ``q`` is ``n`` times the gradient of the loss at a matrix output
(it includes the branch multiplier).  Gradients of the batch-mean loss are ``inᵀ q / (n B)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from limitsim._generated import activations as _builtin
from limitsim.finite import _kernels as fk
from limitsim.finite._blas import gemm_update
from limitsim.nonlinearities.registry import Nonlinearity

__all__ = ["BatchedResnet", "Hyper", "Layer", "Spec", "draw_weights"]


@dataclass(frozen=True)
class Spec:
    """Lowered configuration shared by all configurations of a batch.

    The fields of a :class:`limitsim.Architecture` (φ, block, block depth, pre-LN; built and
    validated by :func:`limitsim.finite.train.train_finite_batch`) plus the sizes, dtype, optimizer
    and which of U and V are trained: plain values for the passes.
    """

    depth: int
    width: int
    d_in: int
    d_out: int
    phi: Nonlinearity
    block: str = "post"
    block_depth: int = 1
    pre_ln: bool = False
    dtype: Any = np.float64
    train_input: bool = False
    train_output: bool = False
    optimizer: str = "sgd"

    @property
    def fused_update(self) -> bool:
        """SGD at width ≥ :data:`FUSED_MIN_WIDTH`: a hidden matrix's update is one BLAS call
        (:func:`limitsim.finite._blas.gemm_update`); below, a batched gradient product and the
        ``sgd_step`` kernel (one call per layer for all K configurations, where the fused path
        makes one ctypes call per configuration and layer; ``benchmarks/README.md``)."""
        return self.optimizer == "sgd" and self.width >= FUSED_MIN_WIDTH


#: Narrowest width whose SGD updates use the fused BLAS call: slower than the batched gradient
#: product and ``sgd_step`` at width 128, faster from 512 on (``benchmarks/README.md``, "The
#: finite trainer against PyTorch").
FUSED_MIN_WIDTH = 256


class Layer(Enum):
    """The trained layers, valued by the name of their weight attribute on BatchedResnet."""

    INPUT = "Ut"
    HIDDEN = "Wt"
    OUTPUT = "V"


@dataclass
class Hyper:
    """Per-configuration scalars, each an array of shape (K,) (float64).

    ``multiplier`` = a (L/L0)^-α; ``rate``/``scale`` = learning rate and Adam gradient scale of
    the hidden weights (``scale`` unused by SGD); ``rate_in``/``scale_in`` and
    ``rate_out``/``scale_out`` the same for the input and output layers.
    """

    multiplier: NDArray[np.float64]
    rate: NDArray[np.float64]
    scale: NDArray[np.float64]
    rate_in: NDArray[np.float64]
    scale_in: NDArray[np.float64]
    rate_out: NDArray[np.float64]
    scale_out: NDArray[np.float64]
    beta1: NDArray[np.float64]
    beta2: NDArray[np.float64]
    eps: NDArray[np.float64]

    def rates(self, layer: Layer) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Learning rate and Adam gradient scale of ``layer`` (K,) each."""
        if layer is Layer.HIDDEN:
            return self.rate, self.scale
        if layer is Layer.INPUT:
            return self.rate_in, self.scale_in
        if layer is Layer.OUTPUT:
            return self.rate_out, self.scale_out
        raise ValueError(f"layer must be one of {list(Layer)}, got {layer!r}")

    def select(self, keep: NDArray[np.intp]) -> Hyper:
        """The scalars of the configurations ``keep``."""
        return Hyper(**{name: np.ascontiguousarray(v[keep]) for name, v in vars(self).items()})


def draw_weights(
    seed: int, spec: Spec
) -> Iterator[tuple[str, tuple[int, ...], NDArray[np.float64]]]:
    """Initial weights of one configuration, in their fixed draw order.

    One ``np.random.default_rng(seed)`` draws, in this order: ``Ut`` (d, n) with N(0, 1)
    entries; for l = 1..L and j = 1..bd the matrix ``(W^{l,j})ᵀ`` (n, n) with N(0, 1/n) entries;
    ``V`` (n, e) with N(0, 1/n²) entries (µP, Table 2 of the paper).

    Yields
    ------
    name, index, array
        ``("U", (), Ut)``, ``("W", (l, j), Wt)`` (0-based), ``("V", (), V)``, float64.
    """
    rng = np.random.default_rng(seed)
    n = spec.width
    yield "U", (), rng.standard_normal((spec.d_in, n))
    for layer in range(spec.depth):
        for j in range(spec.block_depth):
            yield "W", (layer, j), rng.standard_normal((n, n)) / math.sqrt(n)
    yield "V", (), rng.standard_normal((n, spec.d_out)) / n


class _Buffers:
    """Activation storage for one row count R; ``store=False`` keeps only what a forward needs."""

    def __init__(self, spec: Spec, K: int, R: int, store: bool) -> None:
        L, bd, n, dt = spec.depth, spec.block_depth, spec.width, spec.dtype
        slots = L if store else 1
        self.store = store
        self.xs = np.empty((L + 1 if store else 2, K, R, n), dt)
        self.zs = np.empty((slots, K, R, n), dt) if spec.pre_ln else None
        self.rms = np.empty((slots, K, R), dt) if spec.pre_ln else None
        self.acts = np.empty((slots, bd, K, R, n), dt)
        self.dacts = np.empty((slots, bd, K, R, n), dt)
        self.hs = np.empty((slots, K, R, n), dt)
        self.scratch = np.empty((K, R, n), dt)
        if store:
            self.dx = np.empty((K, R, n), dt)
            self.q = np.empty((2, K, R, n), dt)
            self.dz = np.empty((K, R, n), dt)
        # A hidden matrix's gradient, unless SGD updates in one BLAS call without it (fused).
        self.grad = np.empty((K, n, n), dt) if store and not spec.fused_update else None

    def slot(self, layer: int) -> int:
        return layer if self.store else 0

    def x(self, layer: int) -> NDArray[Any]:
        view: NDArray[Any] = self.xs[layer if self.store else layer % 2]
        return view


class BatchedResnet:
    """K width-n resnets (same architecture, own scalars and weights) trained together.

    Parameters
    ----------
    spec : Spec
        Architecture, dtype, optimizer and which of U and V are trained.
    hyper : Hyper
        Per-configuration scalars (arrays of shape (K,)).
    seeds : sequence of int, length K
        Seeds of :func:`draw_weights`; repeated seeds share one draw.
    """

    def __init__(self, spec: Spec, hyper: Hyper, seeds: list[int]) -> None:
        self.spec, self.hyper = spec, hyper
        L, bd, n, K, dt = spec.depth, spec.block_depth, spec.width, len(seeds), spec.dtype
        self.Ut = np.empty((K, spec.d_in, n), dt)
        self.Wt = np.empty((L, bd, K, n, n), dt)
        self.V = np.empty((K, n, spec.d_out), dt)
        first: dict[int, int] = {}
        for k, seed in enumerate(seeds):
            if seed in first:
                self.Ut[k], self.V[k] = self.Ut[first[seed]], self.V[first[seed]]
                self.Wt[:, :, k] = self.Wt[:, :, first[seed]]
                continue
            first[seed] = k
            for name, index, value in draw_weights(seed, spec):
                if name == "W":
                    self.Wt[index[0], index[1], k] = value
                else:
                    getattr(self, "Ut" if name == "U" else "V")[k] = value
        self.adam: dict[str, tuple[NDArray[Any], NDArray[Any]]] = {}
        if spec.optimizer == "adam":
            for layer in Layer:
                shape = getattr(self, layer.value).shape
                self.adam[layer.value] = (np.zeros(shape, dt), np.zeros(shape, dt))
        self._buffers: dict[tuple[int, bool], _Buffers] = {}
        self._activation = _activation(spec.phi)
        self._m_dt = hyper.multiplier.astype(dt)[:, None, None]

    @property
    def size(self) -> int:
        """Number of configurations K."""
        return int(self.V.shape[0])

    def select(self, keep: NDArray[np.intp]) -> None:
        """Keep only the configurations ``keep`` (drops diverged ones; frees their memory)."""
        self.Ut = _take(self.Ut, "Ut", keep)
        self.V = _take(self.V, "V", keep)
        self.Wt = _take(self.Wt, "Wt", keep)
        self.adam = {
            name: (_take(m1, name, keep), _take(m2, name, keep))
            for name, (m1, m2) in self.adam.items()
        }
        self.hyper = self.hyper.select(keep)
        self._m_dt = self.hyper.multiplier.astype(self.spec.dtype)[:, None, None]
        self._buffers = {}

    def buffers(self, rows: int, store: bool) -> _Buffers:
        """Reusable activation storage for ``rows`` examples per configuration."""
        key = (rows, store)
        if key not in self._buffers:
            self._buffers[key] = _Buffers(self.spec, self.size, rows, store)
        return self._buffers[key]

    def all_finite(self) -> NDArray[np.bool_]:
        """Per configuration: are all weights finite? Shape (K,)."""
        ok = np.ones(self.size, dtype=np.bool_)
        for layer in self.Wt:  # one layer at a time: no boolean copy of every weight
            ok &= np.isfinite(layer).all(axis=(0, 2, 3))
        ok &= np.isfinite(self.Ut).all(axis=(1, 2))
        ok &= np.isfinite(self.V).all(axis=(1, 2))
        return ok

    # ------------------------------------------------------------------ forward
    def forward(self, X: NDArray[Any], buf: _Buffers) -> NDArray[Any]:
        """Outputs ``f`` (K, R, e) of inputs ``X`` (R, d), shared by all configurations.

        With ``buf.store`` every ``x^l``, ``z``, ``h`` and φ′ is kept for :meth:`backward`.
        """
        spec = self.spec
        act, m = self._activation, self.hyper.multiplier
        last = spec.block_depth - 1
        np.matmul(X, self.Ut, out=buf.x(0))
        for layer in range(spec.depth):
            s = buf.slot(layer)
            x_prev, x_next, W = buf.x(layer), buf.x(layer + 1), self.Wt[layer]
            z = x_prev
            if spec.pre_ln:
                assert buf.zs is not None and buf.rms is not None
                fk.layer_norm_forward(x_prev, buf.zs[s], buf.rms[s])
                z = buf.zs[s]
            if spec.block == "post":
                inp = z
                for j in range(last):
                    np.matmul(inp, W[j], out=buf.scratch)
                    act(buf.scratch, buf.acts[s, j + 1], buf.dacts[s, j])
                    inp = buf.acts[s, j + 1]
                np.matmul(inp, W[last], out=buf.hs[s])
                act(buf.hs[s], buf.scratch, buf.dacts[s, last])
                fk.ms_residual(buf.scratch, x_prev, m, x_next)
            else:
                inp = z
                for j in range(last + 1):
                    act(inp, buf.acts[s, j], buf.dacts[s, j])
                    inp = buf.hs[s] if j == last else buf.scratch
                    np.matmul(buf.acts[s, j], W[j], out=inp)
                fk.residual_add(x_prev, buf.hs[s], m, x_next)
        f: NDArray[Any] = np.matmul(buf.x(spec.depth), self.V)
        return f

    # ----------------------------------------------------------------- backward
    def backward(
        self,
        buf: _Buffers,
        dx_top: NDArray[Any],
        *,
        step: int | None = None,
        dh_out: NDArray[Any] | None = None,
    ) -> NDArray[Any]:
        """Backward pass from ``δx̃^L = dx_top`` (K, R, n); returns ``δx̃^0`` (a buffer view).

        Parameters
        ----------
        buf : the buffers of the preceding :meth:`forward` (``store=True``).
        dx_top : ndarray, shape (K, R, n)
            ``n`` times the gradient at ``x^L``.
        step : int, optional
            When given, every hidden matrix is updated (SGD or Adam with step index ``step``)
            right after its backward product, with the gradient of the batch-mean loss.
        dh_out : ndarray, shape (L, K, R, n), optional
            Out: ``δh̃^l`` (``n`` times the gradient at ``h^l`` without the multiplier).
        """
        spec = self.spec
        m, bd = self.hyper.multiplier, spec.block_depth
        grad_factor = 1.0 / (spec.width * dx_top.shape[1])
        sgd_rate = self.hyper.rate * grad_factor
        dx = buf.dx
        dx[...] = dx_top
        for layer in reversed(range(spec.depth)):
            W = self.Wt[layer]
            z = cast(NDArray[Any], buf.zs)[layer] if spec.pre_ln else buf.x(layer)
            q = buf.q[0]
            if spec.block == "post":
                fk.post_block_backward(dx, buf.dacts[layer, bd - 1], m, q)
            else:
                np.multiply(dx, self._m_dt, out=q)
            if dh_out is not None:
                np.divide(q, self._m_dt, out=dh_out[layer])
            for j in reversed(range(bd)):
                target = buf.dz if j == 0 else buf.q[1 - (bd - 1 - j) % 2]
                np.matmul(q, W[j].transpose(0, 2, 1), out=target)
                if spec.block == "pre":
                    np.multiply(target, buf.dacts[layer, j], out=target)
                elif j > 0:
                    np.multiply(target, buf.dacts[layer, j - 1], out=target)
                if step is not None:
                    inp = z if (j == 0 and spec.block == "post") else buf.acts[layer, j]
                    if spec.fused_update:  # W ← W − rate zᵀq in one BLAS call
                        gemm_update(W[j], inp, q, sgd_rate)
                    else:
                        assert buf.grad is not None  # allocated for Adam
                        np.matmul(inp.transpose(0, 2, 1), q, out=buf.grad)
                        self._update(Layer.HIDDEN, W[j], buf.grad, step, (layer, j), grad_factor)
                q = target
            if spec.pre_ln:
                assert buf.zs is not None and buf.rms is not None
                fk.layer_norm_backward(buf.dz, buf.zs[layer], buf.rms[layer], dx)
            else:
                np.add(dx, buf.dz, out=dx)
        return dx

    def train_step(self, X: NDArray[Any], chi: NDArray[Any], buf: _Buffers, step: int) -> None:
        """Backward pass and update after :meth:`forward` on the batch ``X`` (B, d).

        ``chi`` (K, B, e) is the per-example loss derivative (without 1/B): ``δx̃^L = n χ Vᵀ``.
        """
        n, B = self.spec.width, X.shape[0]
        dx_top = np.matmul(chi, self.V.transpose(0, 2, 1))
        dx_top *= n
        if self.spec.train_output:
            grad_v = np.matmul(buf.x(self.spec.depth).transpose(0, 2, 1), chi)
            self._update(Layer.OUTPUT, self.V, grad_v, step, (), 1.0 / B)
        dx0 = self.backward(buf, dx_top, step=step)
        if self.spec.train_input:
            grad_u = np.matmul(X.T, dx0)
            self._update(Layer.INPUT, self.Ut, grad_u, step, (), 1.0 / (n * B))

    def _update(
        self,
        layer: Layer,
        w: NDArray[Any],
        grad: NDArray[Any],
        step: int,
        index: tuple[int, ...],
        factor: float,
    ) -> None:
        """SGD or Adam on ``w`` (K, a, b); ``factor · grad`` is the batch-mean loss gradient.

        ``layer`` selects the rates of :class:`Hyper` and the Adam moments of ``w``.
        """
        rate, scale = self.hyper.rates(layer)
        if self.spec.optimizer == "sgd":
            fk.sgd_step(w, grad, rate * factor)
            return
        m1, m2 = self.adam[layer.value]
        h = self.hyper
        fk.adam_step(
            w, grad, m1[index], m2[index], scale * factor, rate, h.beta1, h.beta2, h.eps, step
        )


def _activation(phi: Nonlinearity) -> Callable[[Any, Any, Any], None]:
    """``act(g, u_out, dphi_out)``: the fused φ, φ′ kernel of ``phi`` (by code if built in)."""
    code = fk.BUILTIN_CODES.get(phi.name)
    if code is not None and phi.phi is getattr(_builtin, f"phi_{phi.name}", None):
        return partial(fk.activation_forward, code)
    return partial(fk.activation_forward_user, phi.phi, phi.dphi)


def _take(array: NDArray[Any], name: str, keep: NDArray[np.intp]) -> NDArray[Any]:
    return np.ascontiguousarray(array[:, :, keep] if name == "Wt" else array[keep])
