"""The depth limit L → ∞: a ladder of simulator depths with Richardson extrapolation, and the
paper's Def. E.1 recursion as a hypothesis to test against it.

``theory/algorithms.md`` "Depth limit": at finite L the training outputs approach their
L → ∞ limit at rate O(1/L) (Thm. C.3 for the linear case; ``tp6-notes.md`` §3.7).
:func:`depth_limit` runs :func:`limitsim.simulate_limit` at each depth of a ladder (each with
independent randomness) and extrapolates with first-order Richardson from the two largest
depths, ``f∞ ≈ (L₂ f(L₂) − L₁ f(L₁))/(L₂ − L₁)`` (:func:`extrapolate_first_order`).  Its
error estimate combines

- the Monte Carlo error, propagated through the Richardson weights, and
- the extrapolation error, estimated as the change between the first-order extrapolations
  from the last two pairs of depths (asymptotically 3× the actual error for doubling depths;
  it also contains Monte Carlo noise, so the combined bar is conservative),

added in quadrature.  The error estimate assumes the ladder is in the asymptotic O(1/L)
regime (successive differences halving); for strongly nonlinear training (large η) a ladder
4..32 can be pre-asymptotic and the bar then undercovers: extend the ladder (checked in
``tests/test_depth.py`` on the exact linear ladder).

:func:`def_e1` evaluates Def. E.1 (App. E) in discrete-depth form, as printed or with the
corrections of ``tp6-notes.md`` §3.4 (:mod:`limitsim.particles._def_e1`), and :func:`compare_def_e1`
reports how far each variant's L → ∞ extrapolation is from the extrapolated simulator: a
measured result, not a tuned agreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from limitsim.architecture import Architecture, resolve
from limitsim.nonlinearities.registry import Nonlinearity
from limitsim.parametrization import Parametrization
from limitsim.particles._def_e1 import VARIANTS, solve_def_e1
from limitsim.particles.simulate import simulate_limit
from limitsim.run import Run, check_training_inputs
from limitsim.task import Task
from limitsim.validation import check_depth, check_limit_alpha

__all__ = ["E1Comparison", "compare_def_e1", "def_e1", "depth_limit", "extrapolate_first_order"]


def extrapolate_first_order(
    values: NDArray[np.float64], se: NDArray[np.float64] | None, depths: tuple[int, ...]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Extrapolate ``values`` (k, ...) at ``depths`` (increasing, k ≥ 3) to L = ∞ at O(1/L).

    First-order Richardson from the two largest depths, ``(L₂ f(L₂) − L₁ f(L₁))/(L₂ − L₁)``,
    which removes the O(1/L) term of the depth error (Tensor Programs VI, Thm. C.3;
    ``tp6-notes.md`` §3.7) and keeps the Monte Carlo noise small (two weights); the third
    depth serves only the error estimate.  Contrast
    :func:`limitsim.linear.depth.extrapolate_polynomial` (every order, deterministic values).

    Parameters
    ----------
    values : ndarray, shape (k, ...)
        The quantity at each depth.
    se : ndarray, shape (k, ...), optional
        Independent standard errors of ``values``.
    depths : tuple of int
        At least three increasing depths.

    Returns
    -------
    estimate : ndarray
        First-order Richardson from the two largest depths.
    mc_se : ndarray
        Its Monte Carlo standard error (independent errors ``se`` at each depth; zeros when
        ``se`` is None).
    extrapolation_error : ndarray
        ``|R(L₁, L₂) − R(L₀, L₁)|``, the change between the first-order extrapolations of the
        last two depth pairs.  For a remainder ``d/L²`` and doubling depths this is 3× the
        actual error of the estimate (a conservative bound).
    """
    L = _check_ladder(depths)
    L0, L1, L2 = L[-3], L[-2], L[-1]
    w1 = np.array([-L1, L2]) / (L2 - L1)
    estimate = np.tensordot(w1, values[-2:], 1)
    previous = np.tensordot(np.array([-L0, L1]) / (L1 - L0), values[-3:-1], 1)
    mc = np.zeros_like(estimate) if se is None else np.sqrt(np.tensordot(w1**2, se[-2:] ** 2, 1))
    return estimate, mc, np.abs(estimate - previous)


def depth_limit(
    task: Task,
    param: Parametrization,
    *,
    phi: str | Nonlinearity | None = None,
    depths: tuple[int, ...] = (4, 8, 16, 32),
    n_particles: int = 4096,
    seed: int = 0,
    progress: bool = True,
    arch: Architecture | None = None,
    **options: Any,
) -> Run:
    """The L → ∞ limit of training by the simulator at a ladder of depths, extrapolated.

    Parameters
    ----------
    task, param, phi, arch, n_particles :
        As for :func:`limitsim.simulate_limit` (``options`` are its other keywords, including
        the loose ``block``, ``block_depth``, ``pre_ln``).
    depths : tuple of int
        At least three increasing depths; the extrapolation uses the largest ones.
    seed : int
        Depth ``depths[i]`` runs with the ``i``-th child of ``SeedSequence(seed)``.

    Returns
    -------
    Run
        ``route="depth_limit"``: ``f``, ``loss`` (and ``f_eval``) extrapolated; ``f_se``,
        ``loss_se`` (and ``f_eval_se``) = sqrt(Monte Carlo² + extrapolation²).  ``options``
        (and so ``config``) hold the ladder
        (``ladder_f``, ``ladder_f_se``, ``ladder_loss``, ``ladder_loss_se``) and the two
        error parts (``f_mc_se``, ``f_extrapolation_error``, ``loss_mc_se``,
        ``loss_extrapolation_error``).
    """
    depths = tuple(check_depth(L) for L in depths)
    _check_ladder(depths)  # before any simulation
    loose = {key: options.pop(key, None) for key in ("block", "block_depth", "pre_ln")}
    arch = resolve(arch, phi=phi, **loose)
    children = np.random.SeedSequence(seed).spawn(len(depths))
    runs = [
        simulate_limit(
            task,
            param,
            depth=L,
            arch=arch,
            n_particles=n_particles,
            seed=np.random.default_rng(child),
            progress=progress,
            **options,
        )
        for L, child in zip(depths, children, strict=True)
    ]
    f_all = np.stack([r.f for r in runs])
    f_se_all = np.stack([cast(NDArray[np.float64], r.f_se) for r in runs])
    loss_all = np.stack([r.loss for r in runs])
    loss_se_all = np.stack([cast(NDArray[np.float64], r.loss_se) for r in runs])
    f, f_mc, f_ex = extrapolate_first_order(f_all, f_se_all, depths)
    loss, loss_mc, loss_ex = extrapolate_first_order(loss_all, loss_se_all, depths)
    f_eval = f_eval_se = None
    config: dict[str, Any] = dict(runs[-1].options)
    config.pop("depth")
    if runs[-1].f_eval is not None:
        ev = np.stack([cast(NDArray[np.float64], r.f_eval) for r in runs])
        ev_se = np.stack([cast(NDArray[np.float64], r.f_eval_se) for r in runs])
        f_eval, ev_mc, ev_ex = extrapolate_first_order(ev, ev_se, depths)
        f_eval_se = np.hypot(ev_mc, ev_ex)
    config.update(
        depths=depths,
        seed=seed,
        ladder_f=f_all,
        ladder_f_se=f_se_all,
        ladder_loss=loss_all,
        ladder_loss_se=loss_se_all,
        f_mc_se=f_mc,
        f_extrapolation_error=f_ex,
        loss_mc_se=loss_mc,
        loss_extrapolation_error=loss_ex,
    )
    stops = [r.diverged_step for r in runs if r.diverged]
    return Run(
        f=f,
        loss=loss,
        route="depth_limit",
        param=param,
        arch=arch,
        options=config,
        diverged=bool(stops),
        diverged_step=min(cast(list[int], stops)) if stops else None,
        f_se=np.hypot(f_mc, f_ex),
        loss_se=np.hypot(loss_mc, loss_ex),
        f_eval=f_eval,
        f_eval_se=f_eval_se,
    )


def def_e1(
    task: Task,
    param: Parametrization,
    *,
    phi: str | Nonlinearity = "relu",
    depth: int,
    variant: str = "corrected",
) -> Run:
    """Training outputs of the paper's Def. E.1 recursion at grid size ``depth``.

    Parameters
    ----------
    variant : {"printed", "corrected"}
        Def. E.1 as printed, or with ``tp6-notes.md`` §3.4's corrections 1–3 (see
        :mod:`limitsim.particles._def_e1`).  With φ = linear, "corrected" is the exact finite-depth
        linear limit.

    Returns
    -------
    Run
        ``route="def_e1"``; deterministic (no standard errors).

    Raises
    ------
    ValueError
        For Adam, block depth 2, the pre-nonlin block or pre-LN: Def. E.1 covers SGD with a
        depth-1 post-nonlin block only.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    check_training_inputs(task, param, None)
    if param.optimizer != "sgd":
        raise ValueError("unsupported combination: Def. E.1 is an SGD recursion (optimizer='sgd')")
    check_limit_alpha(param.alpha)
    arch = Architecture(phi)
    depth = check_depth(depth)
    f, _ = solve_def_e1(task, param, arch.phi, depth, variant)
    return Run(
        f=f,
        loss=task.value(f, task.Y),
        route="def_e1",
        param=param,
        arch=arch,
        options={"depth": depth, "variant": variant},
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class E1Comparison:
    """Def. E.1 (printed and corrected) against the extrapolated simulator.

    Attributes
    ----------
    simulator : Run
        :func:`depth_limit` (f_se = combined error).
    e1 : dict of str to Run
        Each variant extrapolated to L = ∞ over its own depth grid (f_se = extrapolation
        error).
    distance : dict of str to float
        ``max |f_E1 − f_sim|`` over steps, examples and outputs.
    relative : dict of str to float
        ``distance / max |f_sim(t) − f_sim(0)|``: the distance in units of what training moved.
    z : dict of str to float
        ``max |f_E1 − f_sim| / sqrt(err_sim² + err_E1²)``.
    """

    simulator: Run
    e1: dict[str, Run]
    distance: dict[str, float]
    relative: dict[str, float]
    z: dict[str, float]


def compare_def_e1(
    task: Task,
    param: Parametrization,
    *,
    phi: str | Nonlinearity = "relu",
    depths: tuple[int, ...] = (4, 8, 16, 32),
    e1_depths: tuple[int, ...] = (16, 32, 64),
    **simulator_options: Any,
) -> E1Comparison:
    """How far Def. E.1 (as printed, and corrected) is from the extrapolated simulator.

    Both are extrapolated to L = ∞ with :func:`extrapolate_first_order`;
    ``simulator_options`` go to :func:`depth_limit`.
    """
    sim = depth_limit(task, param, phi=phi, depths=depths, **simulator_options)
    moved = float(np.max(np.abs(sim.f - sim.f[:1])))
    e1, distance, relative, z = {}, {}, {}, {}
    for variant in VARIANTS:
        ladder = np.stack(
            [def_e1(task, param, phi=phi, depth=L, variant=variant).f for L in e1_depths]
        )
        f, _, err = extrapolate_first_order(ladder, None, tuple(e1_depths))
        e1[variant] = Run(
            f=f,
            loss=task.value(f, task.Y),
            route="def_e1",
            param=param,
            arch=Architecture(phi),
            f_se=err,
            options={"variant": variant, "depths": tuple(e1_depths), "ladder_f": ladder},
        )
        diff = np.abs(f - sim.f)
        distance[variant] = float(diff.max())
        relative[variant] = distance[variant] / moved if moved > 0 else float("inf")
        z[variant] = float(np.max(diff / np.hypot(cast(NDArray[np.float64], sim.f_se), err)))
    return E1Comparison(simulator=sim, e1=e1, distance=distance, relative=relative, z=z)


def _check_ladder(depths: tuple[int, ...]) -> NDArray[np.float64]:
    """``depths`` as a float array; ValueError unless at least three, increasing."""
    L = np.asarray(depths, dtype=float)
    if L.size < 3 or np.any(np.diff(L) <= 0):
        raise ValueError(f"depths must be >= 3 increasing depths, got {depths}")
    return L
