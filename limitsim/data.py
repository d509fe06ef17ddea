"""Datasets as :class:`limitsim.Task` objects: digits, synthetic tasks and local CIFAR-10.

Each loader here is the loader of the same name in :mod:`limitsim._datasets` (same
parameters and documentation) with its result made a :class:`limitsim.Task`;
:func:`load_dataset` and :meth:`limitsim.Task.from_dataset` pick one by name.

Every loader returns a Task whose step ``t`` trains on ``X[t]`` (B, d) with targets ``Y[t]``
(B, e).  Mini-batches are drawn without replacement within an epoch (a fresh permutation per
epoch from ``np.random.default_rng(seed)``; a batch may straddle two epochs).  Held-out data,
where a loader has some, becomes ``eval_X``/``eval_Y``.  Inputs are standardized and, with
``unit_norm=True``, scaled to ``E‖ξ‖² ≈ 1``; classification targets are one-hot (details in
:mod:`limitsim._datasets`).  No loader touches the network.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from limitsim import _datasets
from limitsim.task import Task

__all__ = ["DATASETS", "cifar10", "digits", "few_point", "load_dataset", "teacher"]


def _task_loader(fields: Callable[..., _datasets.TaskFields]) -> Callable[..., Task]:
    """The loader ``fields`` with its result made a :class:`Task` (signature and doc kept)."""

    @functools.wraps(fields)
    def load(*args: Any, **kwargs: Any) -> Task:
        return Task(**fields(*args, **kwargs))

    load.__signature__ = inspect.signature(fields).replace(  # type: ignore[attr-defined]
        return_annotation="Task"
    )
    return load


#: Loader of each dataset name accepted by :func:`load_dataset` / ``Task.from_dataset``.
DATASETS: dict[str, Callable[..., Task]] = {
    name: _task_loader(fields) for name, fields in _datasets.LOADERS.items()
}
digits = DATASETS["digits"]
teacher = DATASETS["teacher"]
few_point = DATASETS["few_point"]
cifar10 = DATASETS["cifar10"]


def load_dataset(name: str, **kwargs: Any) -> Task:
    """The task of dataset ``name`` (one of :data:`DATASETS`), loader options as keywords.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid names).
    """
    return Task.from_dataset(name, **kwargs)
