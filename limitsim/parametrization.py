"""Depthwise parametrizations: branch multiplier a·L^-α and update size L^-γ.

The scalings follow Tensor Programs VI (Yang, Yu, Zhu, Hayou 2023), Def. 6.1–6.2 and Sec. 10.2
(``theory/tp6-notes.md`` §1).  Every depth-dependent factor that a route needs is computed
here, so no caller ever re-derives a scaling:

- branch multiplier ``a (L/L0)^-α`` (:meth:`Parametrization.branch_multiplier`);
- SGD: raw learning rate on the true gradient ``η (L/L0)^(α-γ)``, because the gradient of
  ``W^l`` already carries ``L^-α`` (footnote 5; :meth:`Parametrization.learning_rate`);
- Adam: the entrywise optimizer sees the rescaled gradient ``n (L/L0)^α g`` and the step is
  ``η n^-1 (L/L0)^-γ`` (:meth:`Parametrization.gradient_scale`).

``L0`` is ``base_depth``: all parametrizations coincide at ``L = L0`` (the paper uses 8).

Adam convention (kept everywhere in limitsim): ε sits *inside* the square root, as printed in
Def. 6.1, ``m̂ / sqrt(v̂ + ε)`` with bias-corrected moments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from limitsim.validation import check_depth, check_real

# check_depth and check_real live in limitsim.validation; they stay importable from here.
__all__ = ["OPTIMIZERS", "PRESETS", "Parametrization", "check_depth", "check_real"]

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True, kw_only=True, slots=True)
class Parametrization:
    """Depthwise parametrization {α, γ} with multiplier ``a`` and learning rate ``η``.

    Parameters
    ----------
    alpha : float
        Branch exponent α: block ``l`` adds ``a (L/L0)^-α MS(φ(h^l))``.
    gamma : float
        Update-size exponent γ: the weight update of every block is ``∝ (L/L0)^-γ``.
    a : float
        Branch multiplier (> 0).
    eta : float
        Learning rate η (> 0); the raw per-layer rate comes from :meth:`learning_rate`.
    optimizer : {"sgd", "adam"}
        Entrywise optimizer Q of Def. 6.1.
    base_depth : float
        ``L0``: every ``L`` in a scaling is replaced by ``L / L0`` (default 1).
    beta1, beta2, eps : float
        Adam's moment decay rates and ε (inside the square root, Def. 6.1).

    Examples
    --------
    >>> p = Parametrization.depth_mup(eta=0.1)
    >>> p.branch_multiplier(16)
    0.25
    """

    alpha: float = 0.5
    gamma: float = 0.5
    a: float = 1.0
    eta: float = 1.0
    optimizer: Literal["sgd", "adam"] = "sgd"
    base_depth: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        for name in ("alpha", "gamma", "a", "eta", "base_depth", "beta1", "beta2", "eps"):
            object.__setattr__(self, name, check_real(name, getattr(self, name)))
        if self.a <= 0:
            raise ValueError(f"a (branch multiplier) must be > 0, got {self.a}")
        if self.eta <= 0:
            raise ValueError(f"eta (learning rate) must be > 0, got {self.eta}")
        if self.base_depth <= 0:
            raise ValueError(f"base_depth must be > 0, got {self.base_depth}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)}")
        if self.eps < 0:
            raise ValueError(f"eps must be >= 0, got {self.eps}")

    # ----------------------------------------------------------------- presets
    @classmethod
    def depth_mup(cls, **kwargs: object) -> Parametrization:
        """Depth-µP, (α, γ) = (1/2, 1/2) (Claim 7.5; SGD and Adam alike)."""
        return cls.preset("depth_mup", **kwargs)

    @classmethod
    def block_only(cls, **kwargs: object) -> Parametrization:
        """Block-only scaling, (α, γ) = (1/2, 0): unstable during training (Claim 7.2)."""
        return cls.preset("block_only", **kwargs)

    @classmethod
    def ode(cls, **kwargs: object) -> Parametrization:
        """ODE / 1/L scaling, (α, γ) = (1, 0): stable, faithful but redundant (Claim 7.4)."""
        return cls.preset("ode", **kwargs)

    @classmethod
    def standard(cls, **kwargs: object) -> Parametrization:
        """Standard parametrization, (α, γ) = (0, 0): no depth scaling at all."""
        return cls.preset("standard", **kwargs)

    @classmethod
    def standard_gamma1(cls, **kwargs: object) -> Parametrization:
        """Standard parametrization with γ = 1, (α, γ) = (0, 1) (Sec. 10.2 text, Fig. 23)."""
        return cls.preset("standard_gamma1", **kwargs)

    @classmethod
    def preset(cls, name: str, **kwargs: object) -> Parametrization:
        """Build a preset by name (one of :data:`PRESETS`), other fields as keywords."""
        if name not in PRESETS:
            raise ValueError(f"unknown parametrization {name!r}; valid names: {sorted(PRESETS)}")
        for key in ("alpha", "gamma"):
            if key in kwargs:
                raise TypeError(f"preset {name!r} fixes {key}; use Parametrization(...) instead")
        alpha, gamma = PRESETS[name]
        return cls(alpha=alpha, gamma=gamma, **kwargs)  # type: ignore[arg-type]

    # ----------------------------------------------------------------- scalings
    def relative_depth(self, depth: int) -> float:
        """``L / L0``: the depth as it enters every scaling."""
        return check_depth(depth) / self.base_depth

    def branch_multiplier(self, depth: int) -> float:
        """Actual multiplier of every residual branch, ``a (L/L0)^-α``."""
        multiplier: float = self.a * self.relative_depth(depth) ** (-self.alpha)
        return multiplier

    def update_scale(self, depth: int) -> float:
        """``η (L/L0)^-γ``: the depth part of the step, common to SGD and Adam (eq. 4)."""
        scale: float = self.eta * self.relative_depth(depth) ** (-self.gamma)
        return scale

    def learning_rate(self, depth: int, width: int | None = None) -> float:
        """Raw per-layer learning rate of the hidden weights ``W^l``.

        SGD: ``η (L/L0)^(α-γ)``, applied to the true gradient of the batch-mean loss (width
        independent in µP).  Adam: ``η n^-1 (L/L0)^-γ``, applied to the Adam direction computed
        from the rescaled gradients ``gradient_scale(depth, width) · g`` (needs ``width``).
        """
        if self.optimizer == "sgd":
            rate: float = self.eta * self.relative_depth(depth) ** (self.alpha - self.gamma)
            return rate
        if width is None:
            raise ValueError("width is required for the Adam learning rate (η n^-1 L^-γ)")
        return self.update_scale(depth) / check_depth(width, "width")

    def gradient_scale(self, depth: int, width: int) -> float:
        """``n (L/L0)^α``: the factor that makes Adam's input Θ(1) (Def. 6.2, δ = α)."""
        scale: float = check_depth(width, "width") * self.relative_depth(depth) ** self.alpha
        return scale

    def io_learning_rate(self, layer: Literal["input", "output"], width: int) -> float:
        """Learning rate of a trainable input (U) or output (V) layer, µP (Table 2).

        SGD, on the true gradient: input ``η n``, output ``η n^-1``.  Adam, on the rescaled
        gradient ``io_gradient_scale(layer, width) · g``: input ``η``, output ``η n^-1``.  No
        depth factor: these layers are not summed over depth (the paper keeps them frozen).
        """
        n = check_depth(width, "width")
        if layer == "output":
            return self.eta / n
        if layer != "input":
            raise ValueError(f"layer must be 'input' or 'output', got {layer!r}")
        return self.eta * n if self.optimizer == "sgd" else self.eta

    def io_gradient_scale(self, layer: Literal["input", "output"], width: int) -> float:
        """Adam's gradient scale for the input (``n``) or output (``1``) layer: Θ(1) entries."""
        n = check_depth(width, "width")
        if layer not in ("input", "output"):
            raise ValueError(f"layer must be 'input' or 'output', got {layer!r}")
        return float(n) if layer == "input" else 1.0

    def as_config(self) -> dict[str, object]:
        """``parametrization`` (:attr:`name`) and every field, for :attr:`limitsim.Run.config`."""
        config: dict[str, object] = {"parametrization": self.name}
        config.update({f: getattr(self, f) for f in self.__dataclass_fields__})
        return config

    @property
    def name(self) -> str:
        """Preset name when (α, γ) is a preset, else ``"(α, γ)"``."""
        for preset, (alpha, gamma) in PRESETS.items():
            if (self.alpha, self.gamma) == (alpha, gamma):
                return preset
        return f"({self.alpha:g}, {self.gamma:g})"


#: (α, γ) of the named presets (paper, Sec. 10.2).  The paper defines SP twice: Fig. 10
#: (bottom) and Fig. 20 are labelled (0, 0) ("standard"); the text of Sec. 10.2 and footnote 26
#: give SP the learning rate scaled by L^-1, (0, 1) ("standard_gamma1"), and Fig. 23 ("SP with
#: γ = 1", x axis log(η·L)) uses it.
PRESETS: dict[str, tuple[float, float]] = {
    "depth_mup": (0.5, 0.5),
    "block_only": (0.5, 0.0),
    "ode": (1.0, 0.0),
    "standard": (0.0, 0.0),
    "standard_gamma1": (0.0, 1.0),
}
