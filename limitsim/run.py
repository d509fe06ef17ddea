"""The result of a training route: outputs, losses, divergence and recorded kernels.

Every route (finite networks R4, the exact linear limit R2, the particle simulator R3)
returns a :class:`Run`, so the measures in :mod:`limitsim.measures` work on any of them.

Recorded features are *kernels of a probe input* (``theory/algorithms.md`` §3): the probe is
``Record.probe`` (default: the first training input ``task.X[0, 0]``), evaluated with the
weights of step ``t`` *before* that step's update.  For a finite network ``⟨u|v⟩`` means
``u·v/n``; in a limit it is the expectation of the product of kets.  The backward kernels use
the gradient of the sum of the outputs, ``δx̃^L = nV·1`` (the seed of ``G^L = 11ᵀ`` in
:func:`limitsim.init_kernels`), and ``δh̃^l`` is the gradient (times n, without the branch
multiplier) at the pre-activation of the block's last nonlinearity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from limitsim.architecture import Architecture
from limitsim.parametrization import Parametrization
from limitsim.task import Task
from limitsim.validation import check_type

__all__ = ["Record", "Recorded", "Run", "check_training_inputs"]


@dataclass(frozen=True, kw_only=True, eq=False)
class Record:
    """What a route records besides ``f`` and ``loss``.

    Parameters
    ----------
    steps : tuple of int
        Steps ``t`` at which the probe kernels are recorded (0 = initialization; a value ``T``
        equal to the number of steps records the trained network after the last update).
    probe : ndarray, shape (d,), optional
        Probe input; default the first training input ``task.X[0, 0]``.
    backward : bool
        Also record the cross-layer kernel of ``δh̃`` (one backward pass per recorded step).
    remainder : bool
        Also record the size of Def. 7.7's nonlinear remainder per block
        (:attr:`Recorded.remainder`).  Finite networks only (route R4, depth-1 post blocks);
        it keeps a copy of the initial hidden weights.
    """

    steps: tuple[int, ...] = (0,)
    probe: NDArray[np.float64] | None = None
    backward: bool = True
    remainder: bool = False

    def __post_init__(self) -> None:
        steps = tuple(int(s) for s in np.atleast_1d(np.asarray(self.steps)))
        if not steps or any(s < 0 for s in steps) or len(set(steps)) != len(steps):
            raise ValueError(f"steps must be distinct non-negative integers, got {self.steps}")
        object.__setattr__(self, "steps", tuple(sorted(steps)))
        if self.probe is not None:
            probe = np.asarray(self.probe, dtype=np.float64)
            if probe.ndim != 1 or not np.all(np.isfinite(probe)):
                raise ValueError("probe must be a finite 1-d array of length d")
            object.__setattr__(self, "probe", probe)

    def probe_for(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        """The probe input for a task whose inputs are ``X`` (T, B, d)."""
        probe = X[0, 0] if self.probe is None else self.probe
        if probe.shape != (X.shape[2],):
            raise ValueError(f"probe must have shape ({X.shape[2]},), got {probe.shape}")
        return np.asarray(probe, dtype=np.float64)

    def check_steps(self, n_steps: int) -> None:
        """Raise if a recorded step lies beyond the end of training (``n_steps``)."""
        if self.steps[-1] > n_steps:
            raise ValueError(
                f"record steps must be <= {n_steps} (the task's steps), got {self.steps}"
            )


@dataclass(frozen=True, kw_only=True, eq=False)
class Recorded:
    """Kernels of the probe input at the recorded steps (R = len(steps)).

    Attributes
    ----------
    steps : ndarray, shape (R,)
    x_layers : ndarray, shape (R, L+1, L+1)
        ``⟨x_t^l | x_t^m⟩``: features of every pair of layers at step ``t``.
    x_steps : ndarray, shape (R, R, L+1)
        ``⟨x_t^l | x_s^l⟩``: each layer's features across recorded steps.
    h_steps : ndarray, shape (R, R, L)
        ``⟨h_t^l | h_s^l⟩`` for blocks ``l = 1..L``.
    dh_layers : ndarray, shape (R, L, L), optional
        ``⟨δh̃_t^l | δh̃_t^m⟩`` (None when the backward pass was not recorded).
    se : Mapping[str, ndarray]
        Monte Carlo standard errors of the arrays above, for routes that have them.
    remainder : ndarray, shape (R, L), optional
        Layerwise linearization remainder (Tensor Programs VI, Def. 7.7) of block ``l`` at
        step ``t``: ``RMS(m MS(φ(W_t x) − φ(W_0 x) − φ′(W_0 x) ⊙ ((W_t − W_0) x)))`` over the
        width, with ``x = x_t^{l-1}`` the probe's block input (after pre-LN, if any) and
        ``m`` the branch multiplier (None unless ``Record.remainder``).
    """

    steps: NDArray[np.int64]
    x_layers: NDArray[np.float64]
    x_steps: NDArray[np.float64]
    h_steps: NDArray[np.float64]
    dh_layers: NDArray[np.float64] | None = None
    remainder: NDArray[np.float64] | None = None
    se: Mapping[str, NDArray[np.float64]] = field(default_factory=dict)

    @property
    def depth(self) -> int:
        """Number of blocks L."""
        return int(self.h_steps.shape[-1])

    def step_index(self, step: int) -> int:
        """Position of ``step`` in :attr:`steps` (ValueError if it was not recorded)."""
        hits = np.flatnonzero(self.steps == step)
        if hits.size == 0:
            raise ValueError(f"step {step} was not recorded; recorded steps: {self.steps.tolist()}")
        return int(hits[0])


@dataclass(frozen=True, kw_only=True, eq=False)
class Run:
    """Outcome of training (any route).

    Attributes
    ----------
    f : ndarray, shape (T, B, e)
        Outputs on each step's batch *before* that step's update.
    loss : ndarray, shape (T,)
        Batch-mean loss of ``f``.
    route : str
        ``"finite"``, ``"linear_limit"``, ``"particles"``, ``"depth_limit"`` or ``"def_e1"``.
    param : Parametrization, optional
        The parametrization that produced the run.
    arch : Architecture, optional
        The architecture (φ, block, block depth, pre-LN) that produced the run.
    options : Mapping
        The route's other settings (depth, width, seed, particles, ladder, ...).
    diverged : bool
        True when the run produced non-finite or exploding values; ``f`` and ``loss`` are
        then NaN from ``diverged_step`` on (never silently: check this flag).
    diverged_step : int or None
        First step whose outputs are not finite.
    f_se, loss_se : ndarray, optional
        Standard errors of ``f`` and ``loss`` (Monte Carlo for the particle simulator;
        Monte Carlo and extrapolation combined for the depth limits).
    f_eval : ndarray, shape (T, P, e), optional
        Outputs on ``task.eval_X`` before each step's update.
    f_eval_se : ndarray, shape (T, P, e), optional
        Standard error of ``f_eval``, for routes that have one.
    recorded : Recorded, optional
        Probe kernels, when a :class:`Record` was requested.
    """

    f: NDArray[np.float64]
    loss: NDArray[np.float64]
    route: str
    param: Parametrization | None = None
    arch: Architecture | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    diverged: bool = False
    diverged_step: int | None = None
    f_se: NDArray[np.float64] | None = None
    loss_se: NDArray[np.float64] | None = None
    f_eval: NDArray[np.float64] | None = None
    f_eval_se: NDArray[np.float64] | None = None
    recorded: Recorded | None = None

    @property
    def config(self) -> dict[str, Any]:
        """The configuration that produced the run, as one flat mapping of plain values.

        The architecture's fields (``phi`` by name, ``block``, ``block_depth``, ``pre_ln``),
        then the parametrization's (``parametrization`` = its name, ``alpha``, ``gamma``, ...),
        then :attr:`options`.  Derived here only, for every route.
        """
        config: dict[str, Any] = {}
        if self.arch is not None:
            config.update(self.arch.as_config())
        if self.param is not None:
            config.update(self.param.as_config())
        config.update(self.options)
        return config

    @property
    def steps(self) -> int:
        """Number of training steps T."""
        return int(self.loss.shape[0])

    def final_loss(self, window: int = 1) -> float:
        """Mean loss over the last ``window`` steps (inf when the run diverged)."""
        if self.diverged:
            return float("inf")
        return float(np.mean(self.loss[-window:]))

    def to_dataset(self) -> Any:
        """The run as an :class:`xarray.Dataset` (config in ``attrs``)."""
        import xarray as xr

        data: dict[str, Any] = {
            "f": (("step", "example", "output"), self.f),
            "loss": (("step",), self.loss),
        }
        if self.f_se is not None:
            data["f_se"] = (("step", "example", "output"), self.f_se)
        if self.loss_se is not None:
            data["loss_se"] = (("step",), self.loss_se)
        if self.f_eval is not None:
            data["f_eval"] = (("step", "eval_example", "output"), self.f_eval)
        if self.f_eval_se is not None:
            data["f_eval_se"] = (("step", "eval_example", "output"), self.f_eval_se)
        coords: dict[str, ArrayLike] = {"step": np.arange(self.steps)}
        rec = self.recorded
        if rec is not None:
            coords["record_step"] = rec.steps
            coords["record_step_2"] = rec.steps
            coords["layer"] = np.arange(rec.x_layers.shape[-1])
            coords["layer_2"] = np.arange(rec.x_layers.shape[-1])
            coords["block"] = np.arange(1, rec.depth + 1)
            coords["block_2"] = np.arange(1, rec.depth + 1)
            data["x_layers"] = (("record_step", "layer", "layer_2"), rec.x_layers)
            data["x_steps"] = (("record_step", "record_step_2", "layer"), rec.x_steps)
            data["h_steps"] = (("record_step", "record_step_2", "block"), rec.h_steps)
            if rec.dh_layers is not None:
                data["dh_layers"] = (("record_step", "block", "block_2"), rec.dh_layers)
            if rec.remainder is not None:
                data["remainder"] = (("record_step", "block"), rec.remainder)
            for key, value in rec.se.items():
                data[f"{key}_se"] = (data[key][0], value)
        attrs = {
            "route": self.route,
            "diverged": int(self.diverged),
            "diverged_step": -1 if self.diverged_step is None else self.diverged_step,
        }
        attrs.update({f"config_{k}": _attr(v) for k, v in self.config.items()})
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def save(self, path: str) -> None:
        """Write :meth:`to_dataset` to a netCDF file at ``path``."""
        self.to_dataset().to_netcdf(path)


def check_training_inputs(task: object, param: object, record: object) -> None:
    """The checks every training route makes of its task, parametrization and record.

    Raises
    ------
    TypeError
        ``task``, ``param`` or ``record`` (when not None) of the wrong type.
    ValueError
        Record steps beyond the task's number of steps, or a probe of the wrong length.
    """
    check_type("task", task, Task)
    check_type("param", param, Parametrization)
    if record is not None:
        check_type("record", record, Record)
        assert isinstance(task, Task) and isinstance(record, Record)
        record.check_steps(task.steps)
        record.probe_for(task.X)


def _attr(value: Any) -> Any:
    """A netCDF-storable version of a config value."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | str):
        return value
    return repr(value)
