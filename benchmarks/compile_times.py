"""Compile time of the first call of each jitted entry point, with a fresh NUMBA_CACHE_DIR.

Run: ``python benchmarks/compile_times.py``.  Each measurement (``import limitsim`` plus the
first call) runs in a new interpreter with an empty cache (cold) and again with the cache just
written (warm).  Kernels that take a nonlinearity are compiled eagerly at import with
first-class function signatures, so the warm numbers show that their cache is reused.
"""

import os
import subprocess
import sys
import tempfile

SNIPPETS = {
    "init_kernels relu": "limitsim.init_kernels(X, 'relu', depth=2, param=p)",
    "init_kernels tanh (Hermite)": "limitsim.init_kernels(X, 'tanh', depth=2, param=p)",
    "user expression x*erf(x)": "limitsim.init_kernels(X, 'x*erf(x)', depth=2, param=p)",
}
SETUP = (
    "import time; t0 = time.perf_counter()\n"
    "import numpy as np, limitsim; X = np.eye(3); p = limitsim.Parametrization.depth_mup()\n"
)


def measure(code: str, cache: str) -> tuple[float, float]:
    """Seconds for ``import limitsim`` and for the first call, in a new interpreter."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, LIMITSIM_CACHE_DIR=cache)
    script = (
        SETUP + "t1 = time.perf_counter()\n" + code + "\nprint(t1 - t0, time.perf_counter() - t1)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    first, second = out.stdout.strip().splitlines()[-1].split()
    return float(first), float(second)


if __name__ == "__main__":
    for name, code in SNIPPETS.items():
        with tempfile.TemporaryDirectory() as cache:
            cold = measure(code, cache)
            warm = measure(code, cache)
        print(
            f"{name:32s} cold: import {cold[0]:5.2f} s, call {cold[1]:5.2f} s | "
            f"warm: import {warm[0]:5.2f} s, call {warm[1]:5.2f} s"
        )
