"""What a network is trained on: per-step batches, targets and the loss.

A :class:`Task` is the common input of every training route (finite networks, the exact
linear limit, the particle simulator): step ``t`` trains on the batch ``X[t]`` with targets
``Y[t]``.  Losses are batch means, so the per-example derivative ``χ_b = ∂ℓ(f_b, y_b)/∂f_b``
returned by :meth:`Task.chi` enters each route's update divided by the batch size ``B``
(``theory/algorithms.md`` §1).

Dataset loaders (digits, synthetic teachers, local CIFAR-10) live in :mod:`limitsim.data`
and return a :class:`Task`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from limitsim._datasets import load_fields
from limitsim.validation import LOSSES, as_finite_array, check_depth, check_loss

__all__ = ["LOSSES", "Task", "as_finite_array", "check_probabilities"]


def check_probabilities(Y: NDArray[np.float64], name: str) -> None:
    """Cross-entropy targets: rows of ``e ≥ 2`` entries in [0, 1] that sum to 1.

    One-hot rows are the usual case; soft labels are allowed.  A row sum may differ from 1 by
    ``e`` float32 units of round-off (``e · 2^-23``), so probabilities stored in float32 pass.

    Raises
    ------
    ValueError
        Naming ``name``: a single output column (integer class labels must be one-hot
        encoded first, ``np.eye(n_classes)[labels]``), entries outside [0, 1], or a row
        whose sum is not 1.
    """
    e = Y.shape[-1]
    if e < 2:
        raise ValueError(
            f"cross-entropy targets {name} must be one-hot or probability rows over e >= 2 "
            f"classes, got shape {Y.shape}; one-hot encode integer class labels first: "
            "np.eye(n_classes)[labels]"
        )
    if Y.min() < 0 or Y.max() > 1:
        raise ValueError(
            f"cross-entropy targets {name} must lie in [0, 1] (one-hot or probabilities), "
            f"got values in [{Y.min():.6g}, {Y.max():.6g}]"
        )
    sums = Y.sum(axis=-1)
    worst = np.unravel_index(np.argmax(np.abs(sums - 1)), sums.shape)
    if abs(sums[worst] - 1) > e * float(np.finfo(np.float32).eps):
        raise ValueError(
            f"cross-entropy targets {name} must be rows summing to 1 (one-hot or "
            f"probabilities); row {tuple(int(i) for i in worst)} sums to {sums[worst]:.6g}"
        )


@dataclass(frozen=True, kw_only=True, eq=False)
class Task:
    """A training routine's data: one batch per step and a loss (Def. 7.1).

    Attributes
    ----------
    X : ndarray, shape (T, B, d)
        Inputs of the batch of each step.
    Y : ndarray, shape (T, B, e)
        Targets: regression values for ``"mse"``; for ``"xent"`` one-hot or soft labels, rows
        of ``e ≥ 2`` entries in [0, 1] summing to 1 (:func:`check_probabilities`; integer
        class labels are refused: one-hot encode them, ``np.eye(n_classes)[labels]``).
    loss : {"mse", "xent"}
        ``"mse"``: batch mean of ½‖f − y‖²; ``"xent"``: batch mean softmax cross-entropy.
    eval_X, eval_Y : ndarray, shape (P, d) and (P, e), optional
        Held-out evaluation inputs and targets (``eval_Y`` checked as ``Y``).
    name : str
        Human-readable description (shown in figures and saved runs).
    """

    X: NDArray[np.float64]
    Y: NDArray[np.float64]
    loss: Literal["mse", "xent"] = "mse"
    eval_X: NDArray[np.float64] | None = None
    eval_Y: NDArray[np.float64] | None = None
    name: str = "custom"

    def __post_init__(self) -> None:
        X = as_finite_array(self.X, "X", 3)
        Y = as_finite_array(self.Y, "Y", 3)
        if X.shape[:2] != Y.shape[:2]:
            raise ValueError(
                f"X and Y must agree in (steps, batch): X has shape {X.shape}, Y has {Y.shape}"
            )
        check_loss(self.loss)
        if self.loss == "xent":
            check_probabilities(Y, "Y")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "Y", Y)
        if self.eval_X is not None:
            eval_X = as_finite_array(self.eval_X, "eval_X", 2)
            if eval_X.shape[1] != X.shape[2]:
                raise ValueError(
                    f"eval_X must have d = {X.shape[2]} columns, got shape {eval_X.shape}"
                )
            object.__setattr__(self, "eval_X", eval_X)
        if self.eval_Y is not None:
            if self.eval_X is None:
                raise ValueError("eval_Y given without eval_X")
            eval_Y = as_finite_array(self.eval_Y, "eval_Y", 2)
            if eval_Y.shape != (self.eval_X.shape[0], Y.shape[2]):
                raise ValueError(
                    f"eval_Y must have shape {(self.eval_X.shape[0], Y.shape[2])}, "
                    f"got {eval_Y.shape}"
                )
            if self.loss == "xent":
                check_probabilities(eval_Y, "eval_Y")
            object.__setattr__(self, "eval_Y", eval_Y)
        for array in (self.X, self.Y, self.eval_X, self.eval_Y):
            if array is not None:
                array.flags.writeable = False

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_batches(
        cls, X: ArrayLike, Y: ArrayLike, *, loss: Literal["mse", "xent"] = "mse", **kwargs: object
    ) -> Task:
        """Task with one batch per step: ``X`` of shape (T, B, d), ``Y`` of shape (T, B, e)."""
        return cls(X=X, Y=Y, loss=loss, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def full_batch(
        cls,
        X: ArrayLike,
        Y: ArrayLike,
        steps: int,
        *,
        loss: Literal["mse", "xent"] = "mse",
        **kwargs: object,
    ) -> Task:
        """Task that trains on the same batch (``X`` (B, d), ``Y`` (B, e)) for ``steps`` steps."""
        steps = check_depth(steps, "steps")
        X2 = as_finite_array(X, "X", 2)
        Y2 = np.asarray(Y, dtype=np.float64)
        if Y2.ndim == 1:
            Y2 = Y2[:, None]
        Y2 = as_finite_array(Y2, "Y", 2)
        return cls(
            X=np.broadcast_to(X2, (steps, *X2.shape)),
            Y=np.broadcast_to(Y2, (steps, *Y2.shape)),
            loss=loss,
            **kwargs,  # type: ignore[arg-type]
        )

    @classmethod
    def from_dataset(cls, name: str, **kwargs: object) -> Task:
        """Task of a named dataset (``"digits"``, ``"teacher"``, ``"few_point"``, ``"cifar10"``).

        The options are those of the loaders of :mod:`limitsim.data` (digits, teacher,
        few_point, cifar10).

        Raises
        ------
        ValueError
            For an unknown name (the message lists the valid names) or a bad option.
        """
        return cls(**load_fields(name, **kwargs))

    # ------------------------------------------------------------- properties
    @property
    def steps(self) -> int:
        """Number of training steps T."""
        return int(self.X.shape[0])

    @property
    def batch_size(self) -> int:
        """Batch size B."""
        return int(self.X.shape[1])

    @property
    def d_in(self) -> int:
        """Input dimension d."""
        return int(self.X.shape[2])

    @property
    def d_out(self) -> int:
        """Output dimension e."""
        return int(self.Y.shape[2])

    def with_steps(self, steps: int) -> Task:
        """The first ``steps`` steps of this task."""
        if not 1 <= steps <= self.steps:
            raise ValueError(f"steps must lie in [1, {self.steps}], got {steps}")
        return Task(
            X=self.X[:steps],
            Y=self.Y[:steps],
            loss=self.loss,
            eval_X=self.eval_X,
            eval_Y=self.eval_Y,
            name=self.name,
        )

    # ------------------------------------------------------------------ losses
    def value(self, f: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
        """Batch-mean loss of ``f`` (..., B, e) against targets ``y`` (B, e); shape (...)."""
        if self.loss == "mse":
            return np.asarray(0.5 * np.sum((f - y) ** 2, axis=-1).mean(axis=-1))
        shifted = f - f.max(axis=-1, keepdims=True)
        log_softmax = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        return np.asarray(-np.sum(y * log_softmax, axis=-1).mean(axis=-1))

    def chi(self, f: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
        """Per-example loss derivative ``χ_b = ∂ℓ(f_b, y_b)/∂f_b``, shape of ``f`` (..., B, e).

        The batch-mean factor ``1/B`` is *not* included; each route applies it in its update.
        """
        if self.loss == "mse":
            return np.asarray(f - y)
        shifted = f - f.max(axis=-1, keepdims=True)
        softmax = np.exp(shifted)
        softmax /= softmax.sum(axis=-1, keepdims=True)
        return np.asarray(softmax * y.sum(axis=-1, keepdims=True) - y)
