"""The residual block every route trains: nonlinearity, block type, block depth, pre-LN.

With ``m = a (L/L0)^-α`` (:meth:`limitsim.Parametrization.branch_multiplier`) and
``z = LN(x^{l-1})`` when ``pre_ln`` (else ``z = x^{l-1}``), block ``l`` of the resnet of
``theory/algorithms.md`` §1 is

==========  ===========  ================================================================
block       block depth  update
==========  ===========  ================================================================
``post``    1            ``x^l = x^{l-1} + m MS(φ(W^l z))``  (Tensor Programs VI, Sec. 6, eq. (1))
``post``    2            ``x^l = x^{l-1} + m MS(φ(W^{l2} φ(W^{l1} z)))``  (Sec. 9, eq. (6))
``pre``     1            ``x^l = x^{l-1} + m W^l φ(z)``  (no MS; the pre-nonlin block, Sec. 8.2)
``pre``     2            ``x^l = x^{l-1} + m W^{l2} φ(W^{l1} φ(z))``  (finite networks only)
==========  ===========  ================================================================

``MS(v) = v − mean(v)`` over the width, ``LN`` subtracts the mean and divides by the RMS
(no affine parameters, no ε).  :class:`Architecture` holds these four choices as one frozen,
validated value; every route takes it as ``arch=`` (or builds it from the loose keywords
``phi``, ``block``, ``block_depth``, ``pre_ln`` through :func:`resolve`).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Literal

from limitsim.nonlinearities.registry import Nonlinearity, nonlinearity
from limitsim.validation import check_bool

__all__ = ["BLOCKS", "MAX_BLOCK_DEPTH", "Architecture", "resolve"]

#: Block types: post-nonlinearity with mean subtraction, or pre-nonlinearity (table above).
BLOCKS = ("post", "pre")
#: Matrices per block supported by the routes (Sec. 9 studies block depth 2).
MAX_BLOCK_DEPTH = 2
#: The loose keywords of :func:`resolve` and their defaults (those of :class:`Architecture`).
DEFAULTS: dict[str, Any] = {"phi": "relu", "block": "post", "block_depth": 1, "pre_ln": False}


@dataclass(frozen=True, init=False, slots=True)
class Architecture:
    """One residual block's design, validated on construction (module docstring table).

    Parameters
    ----------
    phi : str or Nonlinearity
        The nonlinearity φ; a spec is parsed by :func:`limitsim.nonlinearity` and stored as
        the :class:`limitsim.Nonlinearity`.
    block : {"post", "pre"}
        ``"post"``: ``m MS(φ(W z))`` (Tensor Programs VI, Sec. 6, eq. (1)); ``"pre"``: ``m W φ(z)``.
    block_depth : {1, 2}
        Matrices per block (Sec. 9, eq. (6) for 2).  The kernels at initialization and the
        particle simulator support ``block="pre"`` with block depth 1 only
        (:meth:`require_pre_depth_one`); finite networks support both.
    pre_ln : bool
        LayerNorm (no affine, no ε) on ``x^{l-1}`` before each block.

    Raises
    ------
    ValueError, TypeError
        Naming the field, for an unknown block, a block depth other than 1 or 2, a ``pre_ln``
        that is not a bool, or a φ spec :func:`limitsim.nonlinearity` refuses.

    Examples
    --------
    >>> Architecture("tanh", block="pre")
    Architecture(phi='tanh', block='pre', block_depth=1, pre_ln=False)
    >>> Architecture("abs", "post", 2, True) == Architecture("abs", block_depth=2, pre_ln=True)
    True
    """

    phi: Nonlinearity
    block: Literal["post", "pre"]
    block_depth: int
    pre_ln: bool

    def __init__(
        self,
        phi: str | Nonlinearity = "relu",
        block: Literal["post", "pre"] = "post",
        block_depth: int = 1,
        pre_ln: bool = False,
    ) -> None:
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {BLOCKS}, got {block!r}")
        if (
            isinstance(block_depth, bool)
            or not isinstance(block_depth, numbers.Integral)
            or not 1 <= block_depth <= MAX_BLOCK_DEPTH
        ):
            raise ValueError(f"block_depth must be 1 or 2, got {block_depth!r}")
        object.__setattr__(self, "phi", nonlinearity(phi))
        object.__setattr__(self, "block", block)
        object.__setattr__(self, "block_depth", int(block_depth))
        object.__setattr__(self, "pre_ln", check_bool("pre_ln", pre_ln))

    def __repr__(self) -> str:
        return (
            f"Architecture(phi={self.phi.name!r}, block={self.block!r}, "
            f"block_depth={self.block_depth}, pre_ln={self.pre_ln})"
        )

    def require_pre_depth_one(self, message: str) -> None:
        """ValueError ``message`` for the pre-nonlin block with block depth 2.

        The infinite-width routes (R1 kernels, R3 particles) define the pre block for block
        depth 1 only; each passes its own message.
        """
        if self.block == "pre" and self.block_depth != 1:
            raise ValueError(message)

    def as_config(self) -> dict[str, Any]:
        """The fields as plain values (``phi`` by name), for :attr:`limitsim.Run.config`."""
        return {
            "phi": self.phi.name,
            "block": self.block,
            "block_depth": self.block_depth,
            "pre_ln": self.pre_ln,
        }


def resolve(arch: Architecture | None = None, **loose: Any) -> Architecture:
    """The :class:`Architecture` of a route call: ``arch`` or one built from loose keywords.

    Parameters
    ----------
    arch : Architecture, optional
        The architecture, when the caller passed ``arch=``.
    **loose
        The loose keywords ``phi``, ``block``, ``block_depth``, ``pre_ln`` the caller was
        given (``None`` = not given).  Without ``arch`` they build the Architecture (missing
        ones take their defaults); with ``arch`` each given one must agree with it.

    Raises
    ------
    ValueError
        When ``arch`` and a loose keyword disagree (the message names both).
    TypeError
        When ``arch`` is not an Architecture.
    """
    given = {key: value for key, value in loose.items() if value is not None}
    unknown = set(given) - set(DEFAULTS)
    if unknown:  # a programming error in the caller, not user input
        raise TypeError(f"unknown architecture keywords {sorted(unknown)}")
    if arch is None:
        return Architecture(**{**DEFAULTS, **given})
    if not isinstance(arch, Architecture):
        raise TypeError(f"arch must be a limitsim.Architecture, got {type(arch).__name__}")
    for key, value in given.items():
        mine = getattr(arch, key)
        same = nonlinearity(value) is mine if key == "phi" else value == mine
        if not same:
            shown = arch.phi.name if key == "phi" else mine
            raise ValueError(
                f"arch={arch!r} and {key}={value!r} conflict: pass the {key} in arch only "
                f"(arch.{key} is {shown!r})"
            )
    return arch
