"""Sizes shared by the experiments that train on a small synthetic full-batch regression.

The digits experiments share :class:`~limitsim.experiments._digits.DigitsTraining`; the
experiments on a few synthetic points (scaling_exponents, stability, linearization,
convergence, limit_transfer) build their ``Sizes`` from the classes here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from limitsim.experiments.profiles import ExperimentSizes

__all__ = ["TINY_PROJECTION", "AlphaGammaGrid", "FewPointTask", "ProjectionTask", "SyntheticTask"]


@dataclass(frozen=True, kw_only=True)
class SyntheticTask(ExperimentSizes):
    """A full-batch regression on a few synthetic points.

    Attributes
    ----------
    steps : int
        Training steps T (full batch: every step sees all points).
    n_points : int
        Training inputs.
    d_in : int
        Input dimension.
    """

    steps: int
    n_points: int
    d_in: int


@dataclass(frozen=True, kw_only=True)
class ProjectionTask(SyntheticTask):
    """The regression of :func:`limitsim.experiments._diversity_limit.regression_task`, whose
    targets are ±``target_scale``."""

    target_scale: float


#: The tiny profile's :class:`ProjectionTask` (stability and linearization train on the same one).
TINY_PROJECTION: dict[str, Any] = {"steps": 4, "n_points": 4, "d_in": 8, "target_scale": 3.0}


@dataclass(frozen=True, kw_only=True)
class FewPointTask(SyntheticTask):
    """The regression of :func:`limitsim.data.few_point`; ``task_seed`` seeds its inputs and
    targets."""

    task_seed: int


def few_point_task(point: Mapping[str, Any], *, evaluation: bool = True) -> Any:
    """The :class:`FewPointTask` of a sweep point or sizes: :func:`limitsim.data.few_point`
    with its ``steps``, ``n_points``, ``d_in`` and ``task_seed``; ``evaluation=False`` drops the
    evaluation inputs (training loss only)."""
    from dataclasses import replace

    from limitsim.data import few_point

    task = few_point(
        steps=int(point["steps"]),
        n_points=int(point["n_points"]),
        d_in=int(point["d_in"]),
        seed=int(point["task_seed"]),
    )
    return task if evaluation else replace(task, eval_X=None, eval_Y=None)


@dataclass(frozen=True, kw_only=True)
class AlphaGammaGrid(ExperimentSizes):
    """Finite networks over the parametrizations (α, γ), depths and seeds, with one SGD rate.

    Attributes
    ----------
    alpha_gammas : tuple of str
        Parametrizations, each written ``"α,γ"``.
    depths : tuple of int
        Depths L.
    seeds : int
        Independent initialisations per (α, γ, L).
    width : int
        Width n.
    eta : float
        Learning rate η.
    """

    alpha_gammas: tuple[str, ...]
    depths: tuple[int, ...]
    seeds: int
    width: int
    eta: float
