"""Shared test builders: nonlinearities, a plain numpy resnet, damage to a sweep store."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from limitsim.nonlinearities.registry import BUILTINS, nonlinearity

ALL_BUILTINS = tuple(BUILTINS)
ALL_ACTIVATIONS = (*ALL_BUILTINS, "leaky_relu:0.2", "homogeneous:0.5,-1.5", "x*erf(x)")


def numpy_resnet_init_kernels(
    X, phi, *, depth, multiplier, width, rng, block="post", block_depth=1, pre_ln=False
):
    """Empirical K^l = x^l·x^l/n and G^l = δx̃^l·δx̃^l/n of one random width-n resnet.

    Independent reference for route R1 (``theory/algorithms.md`` §1), written with plain
    numpy: U ~ N(0, 1), W ~ N(0, 1/n), nV ~ N(0, 1) (so δx̃^L = nV for one output).
    """
    f = nonlinearity(phi)
    n = width
    x = rng.standard_normal((n, X.shape[1])) @ X.T  # (n, P)
    xs, caches = [x], []
    for _ in range(depth):
        inp = x
        if pre_ln:
            inp = x - x.mean(axis=0)
            norm = np.sqrt((inp**2).mean(axis=0))
            inp = inp / norm
        else:
            norm = None
        Ws = [rng.standard_normal((n, n)) / np.sqrt(n) for _ in range(block_depth)]
        if block == "pre":
            h = Ws[0] @ f(inp)
            x = x + multiplier * h
            caches.append((Ws, inp, None, norm))
        else:
            hs = [Ws[0] @ inp]
            for W in Ws[1:]:
                hs.append(W @ f(hs[-1]))
            out = f(hs[-1])
            x = x + multiplier * (out - out.mean(axis=0))
            caches.append((Ws, inp, hs, norm))
        xs.append(x)
    g = np.repeat(rng.standard_normal((n, 1)), X.shape[0], axis=1)
    gs = [g]
    for Ws, inp, hs, norm in reversed(caches):
        if block == "pre":
            back = f.derivative(inp) * (Ws[0].T @ g)
        else:
            delta = f.derivative(hs[-1]) * (g - g.mean(axis=0))
            for W, h in zip(Ws[:0:-1], hs[-2::-1], strict=True):
                delta = f.derivative(h) * (W.T @ delta)
            back = Ws[0].T @ delta
        if norm is not None:
            xhat = inp
            back = (back - xhat * (xhat * back).mean(axis=0)) / norm
            back = back - back.mean(axis=0)
        g = g + multiplier * back
        gs.append(g)
    K = np.stack([x.T @ x / n for x in xs])
    G = np.stack([g.T @ g / n for g in reversed(gs)])
    return K, G


def flip_byte(path: Path, offset: int) -> None:
    """Flip the lowest bit of the byte at ``offset`` of the file ``path``."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def ledger_offsets(ledger: bytes) -> dict[str, int]:
    """Offsets in a sweep store's ``ledger.sqlite`` where a flipped byte damages it in
    distinct ways."""
    key = re.search(rb"points/[0-9a-f]{2}/([0-9a-f]{64})-", ledger).group(1)
    hits = [m.start() for m in re.finditer(key, ledger)]  # row key, row file path, index
    return {
        "magic": 0,  # "SQLite format 3"
        "write version": 18,  # readable, but SQLite refuses to write
        "row key": hits[0],  # the table's copy of a key: the index no longer matches it
        "index key": hits[-1],  # the index's copy
        "row status": ledger.index(b"done", 4096),  # past the schema on the first page
        "schema": ledger.index(b"CHECK"),
    }
