"""Route R3 speed: the particle simulator (``limitsim.simulate_limit``).

1. ``test_layer_step_vs_numpy``: one particle-layer-step (``W_t u`` then ``W_tᵀ g`` for a
   batch of B = 4 vectors: conditional hat sampling by Gram–Schmidt, Stein Ż terms, SGD
   memory) with K = 64 hats per family, 8 replicas × 512 particles.  Baseline: the same
   algorithm written directly in numpy (BLAS matrix products per replica, Python loop over
   the new vectors); both compute the same numbers (checked).  ``extra_info["speedup"]``.
2. ``test_cost_growth``: wall time of ``simulate_limit`` as L, T, B and N grow; fitted
   log–log exponents in ``extra_info`` (expected ≈ 1, 2, 2, 1: K = T·B hats per matrix,
   cost O(N L T² B²)).
3. ``test_accuracy_per_second[linear|relu]``: the error of the simulator's ``f`` (4 training
   steps, depth 4, 2 inputs; 4096 … 262144 particles, RMS over 8 seeds) against a reference
   (the exact linear limit; for relu, the simulator with 8 × 2^20 particles, its standard
   error reported) vs the error of the average of as many finite networks as fit in the same
   time, at the best width of a grid (64 … 2048).  Per budget, ``extra_info["budgets"]`` has
   ``error_ratio`` (finite error / simulator error at equal time) and
   ``speedup_at_equal_error`` (budget / the simulator time that reaches the finite error,
   interpolated on its measured error-vs-time curve; a lower bound when the finite error is
   above the cheapest simulation's).  Issue target: ≥ 10× lower error at equal time, or the
   same error ≥ 10× faster.
"""

import time

import numpy as np
import pytest
from scipy import stats

from limitsim import Parametrization, Task, linear_limit, simulate_limit
from limitsim.particles import _kernels as pk
from limitsim.particles._system import RANK_TOL, Family

PARAM = Parametrization.depth_mup()
R, N, K_PAST, B = 8, 512, 64, 4
BASE = np.ones((R, 1, N))  # rows new innovations are made orthogonal to (here: constants)


def _families(rng):
    fwd, bwd = Family(R, K_PAST + B, N), Family(R, K_PAST + B, N)
    for _ in range(K_PAST // B):
        fwd.append(rng.standard_normal((R, B, N)), rng, BASE)
        bwd.append(rng.standard_normal((R, B, N)), rng, BASE)
    return fwd, bwd


def numba_step(fwd, bwd, u, g, eps_f, eps_b):
    out = []
    for own, other, v, eps in ((fwd, bwd, u, eps_f), (bwd, fwd, g, eps_b)):
        hat = np.empty_like(v)
        pk.append_vectors(own.Y, own.Q, own.E, own.count, own.rank, v, eps, BASE, RANK_TOL, hat)
        pk.stein_correction(other.E, other.Q, other.rank, v, 1.0, hat)
        pk.memory_product(own.Y, other.Y, K_PAST, v, -0.1, hat)
        own.count += v.shape[1]
        out.append(hat)
    return out


def numpy_step(fwd, bwd, u, g, eps_f, eps_b):
    """The same algorithm in plain numpy (per replica; BLAS for the products)."""
    out = []
    for own, other, v, eps in ((fwd, bwd, u, eps_f), (bwd, fwd, g, eps_b)):
        hat = np.zeros_like(v)
        for r in range(R):
            q = int(own.rank[r])
            Q, E = own.Q[r, :q].copy(), own.E[r, :q].copy()
            for b in range(v.shape[1]):
                resid = v[r, b].copy()
                uu = resid @ resid / N
                coef = np.zeros(Q.shape[0])
                for _ in range(2):
                    c = Q @ resid / N
                    coef += c
                    resid -= c @ Q
                hat[r, b] = coef @ E
                var = resid @ resid / N
                if var > RANK_TOL * uu:
                    e = eps[r, b].copy()
                    for _ in range(2):
                        e -= (BASE[r] @ e / N) @ BASE[r]
                    for _ in range(2):
                        e -= (E @ e / N) @ E
                    e /= np.sqrt(e @ e / N)
                    Q, E = np.vstack([Q, resid / np.sqrt(var)]), np.vstack([E, e])
                    hat[r, b] += np.sqrt(var) * e
            own.Q[r, : Q.shape[0]], own.E[r, : E.shape[0]] = Q, E
            own.Y[r, own.count : own.count + v.shape[1]] = v[r]
            own.rank[r] = Q.shape[0]
            qo = int(other.rank[r])
            hat[r] += (v[r] @ other.E[r, :qo].T / N) @ other.Q[r, :qo]
            hat[r] += -0.1 * (v[r] @ own.Y[r, :K_PAST].T / N) @ other.Y[r, :K_PAST]
        own.count += v.shape[1]
        out.append(hat)
    return out


def test_layer_step_vs_numpy(benchmark):
    rng = np.random.default_rng(0)
    fwd, bwd = _families(rng)
    u, g = rng.standard_normal((2, R, B, N))
    eps_f, eps_b = rng.standard_normal((2, R, B, N))

    def fresh():
        return [f.state() for f in (fwd, bwd)]

    state = fresh()
    ours = numba_step(fwd, bwd, u, g, eps_f, eps_b)  # warm up the JIT
    for f, s in zip((fwd, bwd), state, strict=True):
        f.restore(s)
    base = numpy_step(fwd, bwd, u, g, eps_f, eps_b)
    np.testing.assert_allclose(ours[0], base[0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours[1], base[1], rtol=1e-9, atol=1e-9)
    start = time.perf_counter()
    for _ in range(5):
        for f, s in zip((fwd, bwd), state, strict=True):
            f.restore(s)
        numpy_step(fwd, bwd, u, g, eps_f, eps_b)
    baseline = (time.perf_counter() - start) / 5

    def run():
        for f, s in zip((fwd, bwd), state, strict=True):
            f.restore(s)
        numba_step(fwd, bwd, u, g, eps_f, eps_b)

    benchmark.pedantic(run, rounds=10, iterations=1)
    mean = benchmark.stats.stats.mean
    benchmark.extra_info["numpy_seconds"] = baseline
    benchmark.extra_info["speedup"] = baseline / mean
    print(
        f"\nlayer step: numba {mean * 1e3:.2f} ms, numpy {baseline * 1e3:.2f} ms, "
        f"speedup {baseline / mean:.1f}x"
    )


def _task(steps, batch, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((steps, batch, 4)) / 2.0
    return Task.from_batches(X, rng.standard_normal((steps, batch, 1)))


def _time(task, depth, n):
    start = time.perf_counter()
    simulate_limit(task, PARAM, depth=depth, n_particles=n, progress=False)
    return time.perf_counter() - start


def test_cost_growth(benchmark):
    base = {"L": 8, "T": 8, "B": 4, "N": 4096}
    grids = {"L": [8, 16, 32], "T": [8, 16, 32], "B": [4, 8, 16], "N": [4096, 8192, 16384]}
    _time(_task(2, 2), 2, 512)  # warm up

    def measure():
        exponents = {}
        for name, values in grids.items():
            seconds = []
            for value in values:
                cfg = dict(base, **{name: value})
                seconds.append(_time(_task(cfg["T"], cfg["B"]), cfg["L"], cfg["N"]))
            exponents[name] = stats.linregress(np.log(values), np.log(seconds)).slope
        return exponents

    exponents = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update({f"exponent_{k}": v for k, v in exponents.items()})
    print("\ncost exponents:", {k: round(v, 2) for k, v in exponents.items()})


SIM_PARTICLES = (4096, 16384, 65536, 262144)
FINITE_WIDTHS = (64, 128, 256, 512, 1024, 2048)
SEEDS = 8
#: relu reference: the simulator with REF_SEEDS x REF_PARTICLES particles (32x the largest
#: budget), whose own standard error is reported next to the errors it measures.
REF_PARTICLES, REF_SEEDS = 1 << 20, 8


def _accuracy_task():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2, 4))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return Task.full_batch(X, [[1.0], [-1.0]], 4)


def _reference(task, phi, depth):
    """(f, standard error of f): exact for linear, a 8M-particle simulation otherwise."""
    if phi == "linear":
        return linear_limit(task, PARAM, depth=depth).f, 0.0
    runs = [
        simulate_limit(
            task,
            PARAM,
            depth=depth,
            phi=phi,
            n_particles=REF_PARTICLES,
            seed=1000 + s,
            progress=False,
        )
        for s in range(REF_SEEDS)
    ]
    f = np.mean([r.f for r in runs], axis=0)
    se = np.sqrt(np.mean([r.f_se**2 for r in runs], axis=0) / REF_SEEDS)
    return f, float(np.sqrt(np.mean(se**2)))


def _rms(errors):
    return float(np.sqrt(np.mean(np.square(errors))))


def _simulator_curve(task, phi, depth, reference):
    """(seconds, RMS error) of one simulation at each of SIM_PARTICLES (over SEEDS seeds)."""
    curve = []
    for n in SIM_PARTICLES:
        errors, seconds = [], []
        for seed in range(SEEDS):
            start = time.perf_counter()
            run = simulate_limit(
                task, PARAM, depth=depth, phi=phi, n_particles=n, seed=seed, progress=False
            )
            seconds.append(time.perf_counter() - start)
            errors.append(np.sqrt(np.mean((run.f - reference) ** 2)))
        curve.append((float(np.mean(seconds)), _rms(errors)))
    return curve


def _finite_error(task, phi, depth, reference, budget):
    """(RMS error, width): averaging as many finite nets as fit in ``budget`` seconds."""
    from limitsim.finite.train import train_finite_batch

    def train(width, seeds):
        return train_finite_batch(task, PARAM, depth=depth, width=width, phi=phi, seeds=seeds)

    best = (np.inf, 0)
    for width in FINITE_WIDTHS:
        train(width, [0])
        start = time.perf_counter()
        train(width, [0, 1])
        count = max(1, int(budget / ((time.perf_counter() - start) / 2)))
        errors = []
        for rep in range(4):  # expected error of an average of `count` networks
            runs = train(width, list(range(rep * count, (rep + 1) * count)))
            mean = np.mean([r.f for r in runs], axis=0)
            errors.append(np.sqrt(np.mean((mean - reference) ** 2)))
        best = min(best, (_rms(errors), width))
    return best


def _time_to_reach(curve, error):
    """Simulator seconds to reach ``error`` (log-log interpolation of its curve).

    Returns (seconds, exact): ``exact=False`` when ``error`` is above the error of the
    cheapest simulation, whose time is then an upper bound.
    """
    seconds, errors = np.log([c[0] for c in curve]), np.log([c[1] for c in curve])
    if np.log(error) >= errors[0]:
        return float(np.exp(seconds[0])), False
    slope, intercept = np.polyfit(errors, seconds, 1)
    inside = np.log(error) >= errors[-1]
    if inside:  # interpolate between the bracketing points (errors decrease along the curve)
        return float(np.exp(np.interp(np.log(error), errors[::-1], seconds[::-1]))), True
    return float(np.exp(intercept + slope * np.log(error))), True


@pytest.mark.parametrize("phi", ["linear", "relu"])
def test_accuracy_per_second(benchmark, phi):
    task, depth = _accuracy_task(), 4
    simulate_limit(task, PARAM, depth=depth, phi=phi, n_particles=512, progress=False)
    reference, reference_se = _reference(task, phi, depth)
    curve = benchmark.pedantic(
        lambda: _simulator_curve(task, phi, depth, reference), rounds=1, iterations=1
    )
    print(f"\n{phi} (reference standard error {reference_se:.1e}):")
    rows = []
    for n, (budget, sim_error) in zip(SIM_PARTICLES, curve, strict=True):
        finite_error, width = _finite_error(task, phi, depth, reference, budget)
        needed, exact = _time_to_reach(curve, finite_error)
        rows.append(
            {
                "particles": n,
                "seconds": budget,
                "simulator_error": sim_error,
                "finite_error": finite_error,
                "finite_best_width": width,
                "error_ratio": finite_error / sim_error,
                "speedup_at_equal_error": budget / needed,
                "speedup_is_lower_bound": not exact,
            }
        )
        print(
            f"  {budget:.3f} s ({n} particles): simulator error {sim_error:.2e}, best finite "
            f"average (width {width}) {finite_error:.2e}: {finite_error / sim_error:.1f}x lower "
            f"error at equal time; the simulator reaches the finite error "
            f"{'>=' if not exact else ''}{budget / needed:.0f}x faster"
        )
    benchmark.extra_info.update(reference_se=reference_se, budgets=rows)
