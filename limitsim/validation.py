"""Argument checks shared by every route: counts, reals, losses, arrays, divergence.

Each check either returns the normalised value or raises a ``TypeError`` (wrong kind of
object) or ``ValueError`` (right kind, bad value) whose message names the parameter and says
what is allowed, before any work starts.  The routes (:mod:`limitsim.kernels.recursion`,
:mod:`limitsim.linear.limit`, :mod:`limitsim.particles.simulate`, :mod:`limitsim.finite.train`) call
these instead of checking in place, so one kind of argument is refused with one message everywhere.
The divergence test of every route is :func:`bounded` / :func:`diverged`.

It imports nothing from limitsim, so the configuration modules (:mod:`limitsim.parametrization`,
:mod:`limitsim.task`, :mod:`limitsim.architecture`) build on it; the composite check of a
route's task, parametrization and record is :func:`limitsim.run.check_training_inputs`, made
of the checks here.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal, SupportsInt, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "LOSSES",
    "as_finite_array",
    "bounded",
    "check_bool",
    "check_depth",
    "check_integer",
    "check_limit_alpha",
    "check_loss",
    "check_positive_real",
    "check_real",
    "check_type",
    "diverged",
]


#: Losses of a :class:`limitsim.Task`: batch-mean squared error or softmax cross-entropy.
LOSSES = ("mse", "xent")


def check_loss(loss: object) -> Literal["mse", "xent"]:
    """Return ``loss`` after checking it is one of :data:`LOSSES` (ValueError otherwise)."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    return cast(Literal["mse", "xent"], loss)


def check_real(name: str, value: object) -> float:
    """Return ``value`` as a float after checking it is a finite real number (not a bool).

    Raises
    ------
    TypeError, ValueError
        Naming ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def check_positive_real(name: str, value: object) -> float:
    """Return ``value`` as a float after checking it is a real number ``> 0`` (inf allowed).

    Raises
    ------
    ValueError
        Naming ``name`` when ``value`` is not a number greater than 0.
    """
    try:
        number = float(cast(Any, value))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be > 0, got {value!r}") from None
    if not number > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return number


def check_depth(depth: object, name: str = "depth") -> int:
    """Return ``depth`` as an int after checking it is a positive integer.

    Used for every count that must be at least 1 (depth, width, steps, particles, ...).

    Raises
    ------
    ValueError, TypeError
        Naming ``name`` when ``depth`` is not an integer ≥ 1.
    """
    if isinstance(depth, bool) or not isinstance(depth, numbers.Real):
        raise TypeError(f"{name} must be a positive integer, got {type(depth).__name__}")
    if not float(depth).is_integer():
        raise ValueError(f"{name} must be a positive integer, got {depth}")
    if depth < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1), got {depth}")
    return int(cast(SupportsInt, depth))


def check_integer(name: str, value: object, *, minimum: int = 0, what: str = "") -> int:
    """Return ``value`` as an int after checking it is an integer ``>= minimum`` (not a bool).

    Raises
    ------
    ValueError
        ``"{name} must be {what}, got {value!r}"``; ``what`` defaults to "a non-negative
        integer" (``minimum`` 0), "a positive integer" (1) or "an integer >= minimum".
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        default = {0: "a non-negative integer", 1: "a positive integer"}
        kind = what or default.get(minimum, f"an integer >= {minimum}")
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(value)


def check_bool(name: str, flag: object) -> bool:
    """Return ``flag`` as a bool; TypeError naming ``name`` unless it is a (numpy) bool."""
    if not isinstance(flag, bool | np.bool_):
        raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
    return bool(flag)


def check_type(name: str, value: object, cls: type[Any], label: str = "") -> None:
    """TypeError ``"{name} must be a {label}, got {type}"`` unless ``value`` is a ``cls``.

    ``label`` defaults to ``limitsim.<class name>``.
    """
    if not isinstance(value, cls):
        what = label or f"limitsim.{cls.__name__}"
        raise TypeError(f"{name} must be a {what}, got {type(value).__name__}")


def check_limit_alpha(alpha: float, advice: str = "") -> None:
    """ValueError for α < 1/2: no infinite-width-then-depth limit exists (Claim 7.1).

    Parameters
    ----------
    alpha : float
        The branch exponent α of the parametrization.
    advice : str
        Appended to the message (what the caller's user can do instead).
    """
    if not alpha >= 0.5:
        raise ValueError(
            f"alpha must be >= 1/2, got {alpha}: for alpha < 1/2 the network is unstable at "
            "initialization and has no infinite-width-then-depth limit (Claim 7.1; kernels "
            f"grow like exp(L^(1-2 alpha))){advice}"
        )


def as_finite_array(value: ArrayLike, name: str, ndim: int) -> NDArray[np.float64]:
    """Return ``value`` as a float64 array of ``ndim`` dimensions with finite entries.

    Raises
    ------
    TypeError
        Naming ``name`` when ``value`` is not real-valued.
    ValueError
        Naming ``name`` for a wrong number of dimensions, an empty array, or NaN/inf entries.
    """
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real-valued array: {exc}") from None
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return array


# ------------------------------------------------------------------- divergence
def bounded(values: NDArray[Any], bound: float) -> NDArray[np.bool_]:
    """The divergence test of every route, per leading index.

    A configuration (or replica, or step) has *diverged* when any of its values is not finite
    or exceeds ``bound`` in absolute value.

    Parameters
    ----------
    values : ndarray, shape (K, ...)
        Outputs, one row per configuration.
    bound : float
        The route's ``divergence_bound`` (> 0).

    Returns
    -------
    ndarray of bool, shape (K,)
        True where every entry of the row is finite and ``|value| <= bound``.
    """
    flat = np.abs(values.reshape(values.shape[0], -1))
    return cast(NDArray[np.bool_], np.isfinite(flat).all(axis=1) & (flat <= bound).all(axis=1))


def diverged(values: NDArray[Any], bound: float) -> bool:
    """True when any entry of ``values`` (any shape) is not finite or exceeds ``bound``.

    The negation of :func:`bounded` for one row: the divergence test of the routes that
    train one system (the exact linear limit, the particle simulator).
    """
    return not bool(bounded(np.reshape(values, (1, -1)), bound)[0])
