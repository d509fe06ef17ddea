"""Compile time of the first call of each jitted entry point, with a fresh NUMBA_CACHE_DIR.

Run: ``python benchmarks/compile_times.py``.  Each measurement runs in a new interpreter with
an empty cache (cold) and again with the cache just written (warm).
"""

import os
import subprocess
import sys
import tempfile
import time

SNIPPETS = {
    "init_kernels relu": "limitsim.init_kernels(X, 'relu', depth=2, param=p)",
    "init_kernels tanh (quadrature)": "limitsim.init_kernels(X, 'tanh', depth=2, param=p)",
    "user expression x*erf(x)": "limitsim.init_kernels(X, 'x*erf(x)', depth=2, param=p)",
}
SETUP = "import numpy as np, limitsim; X = np.eye(3); p = limitsim.Parametrization.depth_mup()\n"


def measure(code: str, cache: str) -> float:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, LIMITSIM_CACHE_DIR=cache)
    script = (
        SETUP + "import time; t = time.perf_counter()\n" + code + "\nprint(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    for name, code in SNIPPETS.items():
        with tempfile.TemporaryDirectory() as cache:
            cold = measure(code, cache)
            warm = measure(code, cache)
        print(f"{name:34s} cold {cold:6.2f} s   warm {warm:6.2f} s")
    _ = time
