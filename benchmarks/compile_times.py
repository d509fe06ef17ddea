"""Compile time of the first call of each jitted entry point, with a fresh NUMBA_CACHE_DIR.

Run: ``python benchmarks/compile_times.py``.  Each measurement (``import limitsim`` plus the
first call) runs in a new interpreter with an empty cache (cold) and again with the cache just
written (warm).  Kernels that take a nonlinearity are compiled eagerly at import with
first-class function signatures, so the warm numbers show that their cache is reused.

Baseline, only where ``neural_tangents`` imports: the same network's NNGP and NTK by
neural-tangents (``benchmarks/_peers.py``, ``stax.repeat``), ``import`` plus the first call
of the jitted ``kernel_fn`` in a new interpreter (jax keeps no compilation cache between
processes unless configured to, so cold and warm are the same), and the ratio
NT / limitsim of the totals against the warm limitsim relu call.
"""

import importlib.util
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


NT_SETUP = (
    "import time; t0 = time.perf_counter()\n"
    "import numpy as np; from benchmarks._peers import neural_tangents_kernel_fn\n"
    "X = np.eye(3); run = neural_tangents_kernel_fn(X, 2, 2**-0.5)\n"
)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(code: str, cache: str, setup: str = SETUP) -> tuple[float, float]:
    """Seconds for the imports of ``setup`` and for the first call, in a new interpreter."""
    path = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, LIMITSIM_CACHE_DIR=cache, PYTHONPATH=path)
    script = (
        setup + "t1 = time.perf_counter()\n" + code + "\nprint(t1 - t0, time.perf_counter() - t1)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    first, second = out.stdout.strip().splitlines()[-1].split()
    return float(first), float(second)


if __name__ == "__main__":
    warm_totals = {}
    for name, code in SNIPPETS.items():
        with tempfile.TemporaryDirectory() as cache:
            cold = measure(code, cache)
            warm = measure(code, cache)
        warm_totals[name] = sum(warm)
        print(
            f"{name:32s} cold: import {cold[0]:5.2f} s, call {cold[1]:5.2f} s | "
            f"warm: import {warm[0]:5.2f} s, call {warm[1]:5.2f} s"
        )
    if importlib.util.find_spec("neural_tangents") is not None:
        with tempfile.TemporaryDirectory() as cache:
            nt = measure("run()", cache, NT_SETUP)
        ratio = sum(nt) / warm_totals["init_kernels relu"]
        print(
            f"{'neural-tangents (stax.repeat)':32s} import + build {nt[0]:5.2f} s, first call "
            f"{nt[1]:5.2f} s; NT / limitsim (relu, warm) {ratio:.1f}"
        )
