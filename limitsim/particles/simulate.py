"""Route R3: Tensor-Program Monte Carlo simulation of the infinite-width limit of training.

:func:`simulate_limit` trains the n = ∞ limit of the resnet of ``theory/algorithms.md`` §1
(any φ; SGD or Adam; block depth 1 or 2; post- or pre-nonlin block; optional pre-LN) at a
finite depth ``L``, by evolving particles: i.i.d. samples of the limiting coordinate
distribution of every width-n vector (Tensor Programs VI, Program 1 and Def. 4.1, in the
general nonlinear form of App. B; ``tp6-notes.md`` §8(b)(ii)).  The machinery lives in
:mod:`limitsim.particles._system` (hat families, Ż terms by Stein regression, SGD memory,
Adam on partner particles) and :mod:`limitsim.particles._kernels` (numba).

Monte Carlo error bars come from **independent replicas**: the ``n_particles`` particles are
split into ``n_replicas`` independent particle systems of ``N_r = n_particles / n_replicas``
particles, each a complete simulation (its own covariance estimates, regressions, χ and
training trajectory).  Reported values are the replica means; the standard errors are the
replica standard deviation / sqrt(n_replicas) (``f``, ``f_eval``, recorded kernels) or the
jackknife over replicas (``loss``, a nonlinear function of the mean ``f``).  With ``R``
replicas, z-scores follow Student's t with ``R - 1`` degrees of freedom.  The bars are
statistical only: each replica also has a bias of order ``K/N_r`` (``K`` hats per matrix;
nonlinear functions of estimated covariances and regressions), which the replica mean does
not remove.  ``N_r ≥ 4 K`` is required (:data:`MIN_PARTICLES_PER_HAT`); the bars are
calibrated when ``N_r`` is a few hundred ``K`` or more (``tests/test_particles.py``; the
measured bias is in ``benchmarks/README.md``).  To check a result for the bias, compare runs
at ``n_particles`` and ``2 n_particles`` (the difference estimates it).

Variance reduction: the base variables are moment-matched (|U⟩, |nV⟩ exactly centred and
orthonormal over each replica's particles; every innovation exactly centred, orthogonal to
|U⟩ and |nV⟩ and orthonormal to its family's earlier innovations), so the particle covariance
of the hats equals the particle inner products exactly.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from limitsim._memory import check_memory
from limitsim.architecture import Architecture, resolve
from limitsim.nonlinearities.registry import Nonlinearity
from limitsim.parametrization import Parametrization
from limitsim.particles._system import ParticleSystem, SystemSpec
from limitsim.run import Record, Recorded, Run, check_training_inputs
from limitsim.stats import jackknife_se
from limitsim.task import Task
from limitsim.validation import (
    check_depth,
    check_integer,
    check_limit_alpha,
    check_positive_real,
    diverged,
)

__all__ = ["MIN_PARTICLES_PER_HAT", "memory_bytes", "simulate_limit"]

#: Particles per replica needed per hat of one matrix family (least squares needs N_r > K;
#: 4 keeps the variance inflation of the Stein regression, N_r/(N_r - K), below 4/3).
MIN_PARTICLES_PER_HAT = 4


def simulate_limit(
    task: Task,
    param: Parametrization,
    *,
    depth: int,
    phi: str | Nonlinearity | None = None,
    n_particles: int = 4096,
    seed: int | np.random.Generator | None = 0,
    arch: Architecture | None = None,
    block_depth: int | None = None,
    block: Literal["post", "pre"] | None = None,
    pre_ln: bool | None = None,
    record: Record | None = None,
    progress: bool = True,
    n_replicas: int = 8,
    n_partners: int | None = None,
    divergence_bound: float = 1e8,
) -> Run:
    """Train the infinite-width limit of the resnet at depth ``L`` by particles (route R3).

    Parameters
    ----------
    task : Task
        Batches ``X`` (T, B, d), targets ``Y`` (T, B, e), loss.
    param : Parametrization
        Every scaling comes from its methods: ``branch_multiplier``, ``learning_rate``,
        ``gradient_scale`` (Adam).  α ≥ 1/2 is required (Claim 7.1: no limit otherwise).
    depth : int
        Number of blocks L.
    phi : str or Nonlinearity, optional
        The nonlinearity (any spec of :func:`limitsim.nonlinearities.registry.nonlinearity`);
        default ``"relu"``.
    n_particles : int
        Total particles, split evenly into ``n_replicas`` independent systems.
    seed : int, Generator or None
        Randomness; the same seed gives the same result for any number of numba threads.
    arch : Architecture, optional
        φ, block, block depth and pre-LN in one value (:class:`limitsim.Architecture`); block
        depth 2 needs the post block.  The layer norm subtracts the particle mean and divides
        by the particle RMS.
    block_depth, block, pre_ln : optional
        Loose alternative to ``arch`` (defaults 1, ``"post"``, False); a value that
        conflicts with ``arch`` raises ValueError.
    record : Record, optional
        Probe kernels to record (computed after training, with the weights of each recorded
        step; their hats are sampled jointly with all training hats).
    progress : bool
        Show a tqdm progress bar over the training steps.
    n_replicas : int
        Independent replicas for the standard errors (≥ 2), or 1 for one system of all
        ``n_particles`` (half the O(K/N_r) bias of two replicas at the same cost, no error
        bars: ``f_se``, ``loss_se``, ``f_eval_se`` are None and ``recorded.se`` is empty; for
        callers whose independent units are seeds).
    n_partners : int, optional
        Adam only: partner particles per particle for ``ΔW x = E_j[...]``; ``None`` uses all
        ``N_r - 1`` other particles of the replica (exact, O(N_r²)); a number ``M`` samples
        ``M`` distinct partners afresh at every step and matrix (unbiased for ΔW x; through
        φ the outputs then carry an extra O(1/M) bias).
    divergence_bound : float
        A step whose outputs are not finite or exceed this in absolute value ends the run
        (``diverged=True``; ``f``, ``loss`` NaN from ``diverged_step`` on).

    Returns
    -------
    Run
        ``route="particles"``; ``f`` (T, B, e), ``loss`` (T,), ``f_se``, ``loss_se``,
        ``f_eval`` and ``f_eval_se`` (when ``task.eval_X`` is set), ``recorded`` (with
        ``se``).

    Raises
    ------
    ValueError
        For α < 1/2, too few particles for the number of hats (the message says how many are
        needed), a particle state larger than the machine's memory (:func:`memory_bytes`;
        checked before allocating), or an unsupported combination of options.
    """
    depth = check_depth(depth)
    check_training_inputs(task, param, record)
    arch = _architecture(param, arch, phi=phi, block=block, block_depth=block_depth, pre_ln=pre_ln)
    n_replicas = check_integer(
        "n_replicas", n_replicas, minimum=1, what="an integer >= 1 (>= 2 for error bars)"
    )
    bound = check_positive_real("divergence_bound", divergence_bound)
    T, B = task.steps, task.batch_size
    n_rec = 0 if record is None else len(record.steps)
    n_eval = 0 if task.eval_X is None else min(task.eval_X.shape[0], _eval_chunk(B))
    capacity = T * B + n_rec + n_eval
    per_rep = check_depth(n_particles, "n_particles") // n_replicas
    needed = MIN_PARTICLES_PER_HAT * capacity
    if per_rep < needed:
        raise ValueError(
            f"n_particles={n_particles} is too small: each matrix gets up to {capacity} hats "
            f"(T·B = {T}·{B} training vectors + {n_rec} probe + {n_eval} eval vectors), which "
            f"needs ≥ {needed} particles per replica, i.e. n_particles ≥ {needed * n_replicas} "
            f"with n_replicas={n_replicas}"
        )
    _check_partners(param, n_partners, per_rep)
    spec = _lower(param, depth, arch, B, n_partners)
    _check_memory(spec, capacity, n_replicas * per_rep, per_rep)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    system = ParticleSystem(
        spec,
        n_rep=n_replicas,
        n_particles=per_rep,
        d_in=task.d_in,
        d_out=task.d_out,
        capacity=capacity,
        rng=rng,
    )
    f_rep, t_stop = _train(system, task, progress, bound)
    f_eval_rep = None if n_eval == 0 else _evaluate(system, task, t_stop)
    recorded = None if record is None else _record(system, task, record, t_stop)
    options = {
        "depth": depth,
        "n_particles": n_particles,
        "n_replicas": n_replicas,
        "n_partners": n_partners,
        "seed": seed if isinstance(seed, int | None) else "generator",
    }
    identity = {"param": param, "arch": arch, "options": options}
    return _assemble(task, f_rep, f_eval_rep, recorded, record, t_stop, identity)


# --------------------------------------------------------------------------- checks
def memory_bytes(spec: SystemSpec, capacity: int, n_particles: int, per_rep: int) -> int:
    """Bytes of the particle state: hat families, plus Adam's partner directions.

    Each of the ``L·bd`` matrices keeps two hat families (forward, backward) of three arrays
    (vectors, basis, innovations) of ``capacity × n_particles`` floats: ``48 L bd capacity N``
    bytes (``capacity = T·B`` + probe + evaluation vectors).  Adam adds the summed partner
    directions, ``8 N M`` bytes per matrix (``M`` partners; ``N_r − 1`` when exact).
    Measured (tracemalloc) at T·B = 40 + 4 evaluation inputs, 16384 particles, SGD: the peak
    grows by 36 MB per block (this formula: 34.6 MB) and is 10–15% above the formula at
    depth 2 and 4 (per-step vectors and temporaries).
    """
    total = 48 * spec.n_matrices * capacity * n_particles
    if spec.optimizer == "adam":
        partners = per_rep - 1 if spec.n_partners is None else spec.n_partners
        total += 8 * spec.n_matrices * n_particles * partners
    return total


def _check_memory(spec: SystemSpec, capacity: int, n_particles: int, per_rep: int) -> None:
    """ValueError, before allocating, when the state cannot fit in this machine's memory."""
    check_memory(
        memory_bytes(spec, capacity, n_particles, per_rep),
        what=f"n_particles={n_particles} at depth={spec.depth} (block depth "
        f"{spec.block_depth}, {capacity} hats per matrix)",
        state="particle state",
        advice="reduce n_particles (error bars grow like n_particles^-1/2) or the depth",
    )


def _architecture(param: Parametrization, arch: Architecture | None, **loose: Any) -> Architecture:
    """The simulated Architecture; ValueError for α < 1/2 or the pre block of depth 2."""
    check_limit_alpha(param.alpha, "; there is no limit to simulate")
    arch = resolve(arch, **loose)
    arch.require_pre_depth_one(
        "unsupported combination: block='pre' with block_depth=2 (the pre-nonlin block "
        "x + m W φ(x) is defined for block depth 1 only); use block='post' for depth 2"
    )
    return arch


def _check_partners(param: Parametrization, n_partners: int | None, per_rep: int) -> None:
    """``n_partners`` is an Adam option in [1, particles per replica − 1]."""
    if n_partners is None:
        return
    if param.optimizer != "adam":
        raise ValueError("unsupported combination: n_partners is an Adam option (optimizer='sgd')")
    if not 1 <= n_partners <= per_rep - 1:
        raise ValueError(f"n_partners must lie in [1, {per_rep - 1}] (particles per replica - 1)")


def _lower(
    param: Parametrization,
    depth: int,
    arch: Architecture,
    batch: int,
    n_partners: int | None,
) -> SystemSpec:
    """Numbers for the kernels, every scaling from the Parametrization's methods."""
    m = param.branch_multiplier(depth)
    adam = param.optimizer == "adam"
    return SystemSpec(
        depth=depth,
        multiplier=m,
        optimizer=param.optimizer,
        sgd_scale=0.0 if adam else -param.learning_rate(depth) * m / batch,
        # Adam: ΔW = -η n^-1 L^-γ Q(n L^α g), so (ΔW x)_i = -learning_rate(depth, 1) E_j[...]
        # and the rescaled gradient is gradient_scale(depth, 1)·(m/B) Σ_b δh̃_b ⊗ x_b.
        adam_lr=param.learning_rate(depth, 1) if adam else 0.0,
        adam_grad_scale=param.gradient_scale(depth, 1) * m / batch if adam else 0.0,
        beta1=param.beta1,
        beta2=param.beta2,
        eps=param.eps,
        n_partners=n_partners,
        phi=arch.phi.phi,
        dphi=arch.phi.dphi,
        batch=batch,
        block=arch.block,
        block_depth=arch.block_depth,
        pre_ln=arch.pre_ln,
    )


def _particle_init_kernels(
    X: NDArray[np.float64],
    phi: str | Nonlinearity,
    *,
    depth: int,
    param: Parametrization,
    n_particles: int,
    seed: int = 0,
    n_replicas: int = 8,
    **options: Any,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-replica kernels at t = 0 (route R3 at initialization), to compare with R1.

    Returns ``K`` and ``G``, shape (R, L+1, P, P): ``⟨x^l_i|x^l_j⟩`` and ``⟨δx̃^l_i|δx̃^l_j⟩``
    with ``δx̃^L = nV`` (one output), the quantities of :func:`limitsim.init_kernels`.
    """
    arch = _architecture(param, None, phi=phi, **options)
    spec = _lower(param, depth, arch, X.shape[0], None)
    system = ParticleSystem(
        spec,
        n_rep=n_replicas,
        n_particles=n_particles // n_replicas,
        d_in=X.shape[1],
        d_out=1,
        capacity=X.shape[0],
        rng=np.random.default_rng(seed),
    )
    xs, _, caches = system.forward(X, 0)
    _, gs = system.backward(np.repeat(system.nV, X.shape[0], axis=1), caches, 0)
    N = system.N
    K = np.einsum("lrin,lrjn->rlij", np.stack(xs), np.stack(xs)) / N
    G = np.einsum("lrin,lrjn->rlij", np.stack(gs), np.stack(gs)) / N
    return K, G


# ------------------------------------------------------------------------- training
def _train(
    system: ParticleSystem, task: Task, progress: bool, bound: float
) -> tuple[NDArray[Any], int]:
    """Run the T training steps; return per-replica outputs (R, T, B, e) and the stop step."""
    from limitsim._progress import Bar

    T, B = task.steps, task.batch_size
    f_rep = np.full((system.n_rep, T, B, task.d_out), np.nan)
    steps = Bar(range(T), desc="particles", disable=not progress, leave=False)
    for t in steps:
        state = system.state()
        xs, _, caches = system.forward(task.X[t], t * B)
        f = system.readout(xs[-1])
        if diverged(f, bound):
            system.restore(state)  # side passes then see only the finite steps
            return f_rep, t
        f_rep[:, t] = f
        chi = task.chi(f, task.Y[t])
        system.backward(system.output_gradient(chi), caches, t * B)
        system.end_training_step()
    return f_rep, T


def _evaluate(system: ParticleSystem, task: Task, t_stop: int) -> NDArray[Any]:
    """Outputs on ``task.eval_X`` before each step's update (R, T, P, e), side passes.

    Each step's evaluation hats (in chunks of :func:`_eval_chunk` inputs) are sampled
    conditionally on all training hats and then discarded, so every ``f_eval[t, p]`` has the
    right law (not the joint law across steps or chunks).
    """
    assert task.eval_X is not None
    P, chunk = task.eval_X.shape[0], _eval_chunk(task.batch_size)
    out = np.full((system.n_rep, task.steps, P, task.d_out), np.nan)
    for t in range(t_stop):
        for start in range(0, P, chunk):
            state = system.state()
            xs, _, _ = system.forward(task.eval_X[start : start + chunk], t * task.batch_size)
            out[:, t, start : start + chunk] = system.readout(xs[-1])
            system.restore(state)
    return out


def _eval_chunk(batch: int) -> int:
    """Evaluation inputs per side pass (each pass adds that many hats per matrix)."""
    return max(batch, 16)


def _record(
    system: ParticleSystem, task: Task, record: Record, t_stop: int
) -> dict[str, NDArray[Any]]:
    """Probe kernels per replica (leading axis R) at the recorded steps ≤ ``t_stop``."""
    probe = record.probe_for(task.X)[None, :]
    L = system.spec.depth
    n_rec = len(record.steps)
    xs_all = np.full((n_rec, system.n_rep, L + 1, system.N), np.nan)
    hs_all = np.full((n_rec, system.n_rep, L, system.N), np.nan)
    dh = np.full((system.n_rep, n_rec, L, L), np.nan)
    seed_grad = system.nV.sum(axis=1)[:, None, :]  # δx̃^L = nV·1: gradient of Σ_e f_e
    for i, t in enumerate(record.steps):
        if t > t_stop:
            continue
        xs, hs, caches = system.forward(probe, t * task.batch_size)
        xs_all[i] = np.stack(xs, axis=1)[:, :, 0]
        hs_all[i] = np.stack(hs, axis=1)[:, :, 0]
        if record.backward:
            dhs = np.stack(system.backward(seed_grad, caches, t * task.batch_size)[0], axis=1)
            dh[:, i] = np.einsum("rln,rmn->rlm", dhs[:, :, 0], dhs[:, :, 0]) / system.N
    N = system.N
    return {
        "x_layers": np.einsum("irln,irmn->rilm", xs_all, xs_all) / N,
        "x_steps": np.einsum("irln,jrln->rijl", xs_all, xs_all) / N,
        "h_steps": np.einsum("irln,jrln->rijl", hs_all, hs_all) / N,
        **({"dh_layers": dh} if record.backward else {}),
    }


# ------------------------------------------------------------------------- results
def _mean_se(values: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any] | None]:
    """Replica mean and its standard error (leading axis = replicas; None for one replica)."""
    R = values.shape[0]
    if R == 1:
        return values[0], None
    return values.mean(axis=0), values.std(axis=0, ddof=1) / math.sqrt(R)


def _assemble(
    task: Task,
    f_rep: NDArray[Any],
    f_eval_rep: NDArray[Any] | None,
    recorded: dict[str, NDArray[Any]] | None,
    record: Record | None,
    t_stop: int,
    identity: dict[str, Any],
) -> Run:
    """The Run of replica outputs: means, standard errors, ``identity`` = param, arch, options."""
    R = f_rep.shape[0]
    f, f_se = _mean_se(f_rep)
    loss = task.value(f, task.Y)
    loss_se = None
    if R > 1:
        loo = (f_rep.sum(axis=0)[None] - f_rep) / (R - 1)  # leave-one-replica-out means
        loss_loo = task.value(loo, task.Y[None])
        loss_se = jackknife_se(loss_loo)
    f_eval = f_eval_se = None
    if f_eval_rep is not None:
        f_eval, f_eval_se = _mean_se(f_eval_rep)
    rec = None
    if recorded is not None and record is not None:
        stats = {key: _mean_se(value) for key, value in recorded.items()}
        rec = Recorded(
            steps=np.asarray(record.steps, dtype=np.int64),
            x_layers=stats["x_layers"][0],
            x_steps=stats["x_steps"][0],
            h_steps=stats["h_steps"][0],
            dh_layers=stats["dh_layers"][0] if "dh_layers" in stats else None,
            se={key: se for key, (_, se) in stats.items() if se is not None},
        )
    stopped = t_stop < task.steps
    return Run(
        f=f,
        loss=loss,
        route="particles",
        **identity,
        diverged=stopped,
        diverged_step=t_stop if stopped else None,
        f_se=f_se,
        loss_se=loss_se,
        f_eval=f_eval,
        f_eval_se=f_eval_se,
        recorded=rec,
    )
