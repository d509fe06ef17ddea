"""Nonlinearities φ with φ′, φ″ and their Gaussian expectations (route R1).

Built-ins (``linear``, ``relu``, ``abs``, ``erf``, ``tanh``, ``gelu``, ``silu``) are emitted
by ``derivations/activations.py``.  Parametrised families (``leaky_relu:<slope>``,
``homogeneous:<c_plus>,<c_minus>``) and expressions in ``x`` (``"x*erf(x)"``,
``"Abs(x)**1.5"``) are differentiated symbolically at run time and compiled to a small module
in the user cache directory (``$LIMITSIM_CACHE_DIR``, default ``~/.cache/limitsim``), so
numba's ``cache=True`` works for them as well.  Expressions are data, never code: they are
parsed by the grammar of :mod:`limitsim.nonlinearities._expression`, φ is checked by
:mod:`limitsim.nonlinearities._admissible`, and a cached module is imported only as the exact text
limitsim renders (``SECURITY.md``, "Nonlinearity specs").

Gaussian expectations for z ~ N(0, K) (``tp6-notes.md`` §3.6):

- ``second_moment(K)`` = E φ(z_i)φ(z_j);
- ``sigma(K)`` = Cov(φ(z_i), φ(z_j)) = Σ_φ(K) (the kernel after mean subtraction, MS);
- ``vprime(K)`` = E φ′(z_i)φ′(z_j) = V_φ′(K).

Closed forms (``derivations/gaussian.py``) serve the positively homogeneous family
φ(z) = c₊ z (z > 0), c₋ z (z < 0) and erf.  Every other φ (tanh, gelu, silu, expressions)
goes through :func:`limitsim.gaussian._expectations.numerical_moments`, accurate to a relative 1e-8
(of √(E φ(z_i)² E φ(z_j)²), of √(E φ′(z_i)² E φ′(z_j)²)) at any variance and correlation, or
a ValueError: the Hermite (Mehler) expansion E φ(z_i)φ(z_j) = Σ_k c_k(s_i) c_k(s_j) ρ^k
truncated after ``hermite_terms`` terms (default 128; :meth:`Nonlinearity.with_hermite_terms`)
for the inputs at which it has converged (smooth φ at moderate variance, e.g. tanh at unit
variance), adaptive Gauss–Kronrod quadrature split at φ's kinks (found in the
expression) for the others.  Tested against 30-digit quadrature at variances 1 to 1000
(``tests/test_expectations.py``).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import math
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from limitsim._generated import activations as _builtin
from limitsim.gaussian import _expectations
from limitsim.gaussian import _moments as _kernels
from limitsim.gaussian._expectations import MAX_HERMITE_TERMS, kink_points
from limitsim.nonlinearities._expression import MAX_LENGTH

__all__ = ["BUILTINS", "Nonlinearity", "nonlinearities", "nonlinearity"]

#: Built-in names; ``(c₊, c₋)`` for members of the positively homogeneous family.
BUILTINS: dict[str, tuple[float, float] | None] = {
    "linear": (1.0, 1.0),
    "relu": (1.0, 0.0),
    "abs": (1.0, -1.0),
    "erf": None,
    "tanh": None,
    "gelu": None,
    "silu": None,
}
FAMILIES = ("leaky_relu:<slope>", "homogeneous:<c_plus>,<c_minus>")
DEFAULT_HERMITE_TERMS = 128


@dataclass(frozen=True, eq=False)
class Nonlinearity:
    """A nonlinearity with numba-callable φ, φ′ (φ″ where it is a function) and expectations.

    Attributes
    ----------
    name : str
        Canonical spec (``nonlinearity(name)`` rebuilds it; used for pickling).
    phi, dphi : numba dispatcher
        Scalar φ and φ′, callable from jitted code and from Python.
    d2phi : numba dispatcher or None
        φ″ when it exists as a function (None for kinked φ such as relu and abs).
    homogeneous : (float, float) or None
        ``(c₊, c₋)`` for the positively homogeneous family, whose expectations are closed
        forms.
    expression : str
        The formula of φ in sympy syntax.
    hermite_terms : int
        Terms of the Hermite expansion used when no closed form exists (where the expansion
        has not converged, adaptive quadrature is used instead).
    kinks : tuple of float
        Points where φ may have a kink or jump (user expressions; breakpoints of the
        quadrature).
    """

    name: str
    phi: Any
    dphi: Any
    d2phi: Any | None
    expression: str
    homogeneous: tuple[float, float] | None = None
    hermite_terms: int = DEFAULT_HERMITE_TERMS
    kinks: tuple[float, ...] = ()
    _rule: tuple[NDArray[np.float64], ...] | None = field(default=None, init=False, repr=False)

    def __reduce__(self) -> tuple[Callable[..., Nonlinearity], tuple[str, int]]:
        return (_rebuild, (self.name, self.hermite_terms))

    def __repr__(self) -> str:
        return f"nonlinearity({self.name!r})"

    def with_hermite_terms(self, terms: int) -> Nonlinearity:
        """The same nonlinearity with ``terms`` terms of the Hermite expansion.

        More terms extend the fast path to larger variances; the accuracy of the
        expectations does not depend on ``terms`` (module docstring).  ``terms`` must be an
        integer in [2, ``MAX_HERMITE_TERMS``] (300: the largest whose Gauss–Hermite rule is
        accurate in float64).
        """
        if (
            isinstance(terms, bool)
            or not isinstance(terms, int)
            or not 2 <= terms <= MAX_HERMITE_TERMS
        ):
            raise ValueError(f"terms must be an integer in [2, {MAX_HERMITE_TERMS}], got {terms!r}")
        return replace(self, hermite_terms=terms)  # a fresh Hermite-rule cache

    @property
    def closed_form(self) -> str | None:
        """``"homogeneous"``, ``"erf"`` or None (Hermite expansion)."""
        if self.homogeneous is not None:
            return "homogeneous"
        return "erf" if self.name == "erf" else None

    # ------------------------------------------------------------ elementwise
    def __call__(self, x: ArrayLike) -> NDArray[Any]:
        """φ applied elementwise (keeps float32/float64)."""
        return _apply(self.phi, x)

    def derivative(self, x: ArrayLike) -> NDArray[Any]:
        """φ′ applied elementwise."""
        return _apply(self.dphi, x)

    def second_derivative(self, x: ArrayLike) -> NDArray[Any]:
        """φ″ applied elementwise (ValueError where φ″ is not a function)."""
        if self.d2phi is None:
            raise ValueError(f"{self.name}: φ'' is not a function (φ' has a jump)")
        return _apply(self.d2phi, x)

    # --------------------------------------------------- Gaussian expectations
    def moments(
        self, K: ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """``(E φ(z_i), E φ(z_i)φ(z_j), E φ′(z_i)φ′(z_j))`` for z ~ N(0, K).

        Parameters
        ----------
        K : ndarray, shape (P, P)
            Symmetric positive semidefinite covariance (rank deficiency is fine).

        Returns
        -------
        mean : ndarray, shape (P,)
        second : ndarray, shape (P, P)
        vprime : ndarray, shape (P, P)

        Raises
        ------
        ValueError
            Where φ has no closed form and a finite expectation cannot be computed to
            ``limitsim.gaussian._expectations.RTOL`` (module docstring).  Expectations that overflow
            float64 are inf or NaN, with or without a closed form.
        """
        K = np.ascontiguousarray(K, dtype=np.float64)
        if K.ndim != 2 or K.shape[0] != K.shape[1]:
            raise ValueError(f"K must be a square (P, P) matrix, got shape {K.shape}")
        P = K.shape[0]
        mean = np.empty(P)
        second = np.empty((P, P))
        vprime = np.empty((P, P))
        if self.homogeneous is not None:
            c_plus, c_minus = self.homogeneous
            _kernels.gauss_moments_homogeneous(c_plus, c_minus, K, mean, second, vprime)
        elif self.name == "erf":
            _kernels.gauss_moments_erf(K, mean, second, vprime)
        else:
            if self._rule is None:
                object.__setattr__(self, "_rule", _kernels.hermite_rule(self.hermite_terms))
            assert self._rule is not None
            points = np.unique(np.array([0.0, *self.kinks]))
            mean, second, vprime = _expectations.numerical_moments(
                self.name, self.phi, self.dphi, points, self._rule, K
            )
        return mean, second, vprime

    def second_moment(self, K: ArrayLike) -> NDArray[np.float64]:
        """E φ(z_i)φ(z_j), shape (P, P)."""
        return self.moments(K)[1]

    def sigma(self, K: ArrayLike) -> NDArray[np.float64]:
        """Σ_φ(K) = Cov(φ(z_i), φ(z_j)), shape (P, P): the kernel of MS(φ(h))."""
        mean, second, _ = self.moments(K)
        return second - np.outer(mean, mean)

    def vprime(self, K: ArrayLike) -> NDArray[np.float64]:
        """V_φ′(K) = E φ′(z_i)φ′(z_j), shape (P, P)."""
        return self.moments(K)[2]


def _apply(fn: Any, x: ArrayLike) -> NDArray[Any]:
    array = np.asarray(x)
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float64)
    flat = np.ascontiguousarray(array).reshape(-1)
    out = np.empty_like(flat)
    _kernels.map_scalar()(fn, flat, out)
    return out.reshape(array.shape)


# --------------------------------------------------------------------- registry
def nonlinearities() -> list[str]:
    """Names of the built-in nonlinearities and the patterns of the parametrised families."""
    return [*BUILTINS, *FAMILIES]


def nonlinearity(spec: str | Nonlinearity) -> Nonlinearity:
    """The nonlinearity named by ``spec``.

    Parameters
    ----------
    spec : str or Nonlinearity
        A built-in name (see :func:`nonlinearities`), ``"leaky_relu:<slope>"``,
        ``"homogeneous:<c_plus>,<c_minus>"`` (φ(z) = c₊ z for z > 0, c₋ z for z < 0), or an
        expression in ``x`` such as ``"x*erf(x)"`` or ``"log(1 + exp(x))"``: numbers, ``x``,
        ``pi``, ``E``, ``+ - * / **``, parentheses and the functions of
        :data:`limitsim.nonlinearities._expression.FUNCTIONS` (the grammar of
        :mod:`limitsim.nonlinearities._expression`; the text is parsed, never evaluated).

    Raises
    ------
    ValueError
        For an unknown name, a spec longer than
        :data:`limitsim.nonlinearities._expression.MAX_LENGTH`, or an expression outside the grammar
        (the message names what was refused and lists what is allowed and the valid names); for a φ
        that is not defined, finite and of at most exponential growth with φ′ at every real x
        (:data:`limitsim.nonlinearities._admissible.RULE`).
    """
    if isinstance(spec, Nonlinearity):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"phi must be a str or Nonlinearity, got {type(spec).__name__}")
    if len(spec) > MAX_LENGTH:
        raise ValueError(f"phi spec has {len(spec)} characters, more than {MAX_LENGTH}")
    return _build(spec.strip())


@cache
def _build(spec: str) -> Nonlinearity:
    if spec in BUILTINS:
        d2 = getattr(_builtin, f"d2phi_{spec}", None)
        return Nonlinearity(
            name=spec,
            phi=getattr(_builtin, f"phi_{spec}"),
            dphi=getattr(_builtin, f"dphi_{spec}"),
            d2phi=d2,
            expression=spec,
            homogeneous=BUILTINS[spec],
        )
    family, _, params = spec.partition(":")
    if family in ("leaky_relu", "homogeneous"):
        values = _parse_params(spec, params, 1 if family == "leaky_relu" else 2)
        c_plus, c_minus = (1.0, values[0]) if family == "leaky_relu" else tuple(values)
        phi, dphi = _compile_homogeneous(c_plus, c_minus)
        return Nonlinearity(
            name=spec,
            phi=phi,
            dphi=dphi,
            d2phi=None,
            expression=f"Piecewise(({c_plus!r}*x, x > 0), ({c_minus!r}*x, True))",
            homogeneous=(c_plus, c_minus),
        )
    phi, dphi, d2phi, expression, kinks = _compile_expression(spec)
    return Nonlinearity(
        name=spec, phi=phi, dphi=dphi, d2phi=d2phi, expression=expression, kinks=kinks
    )


def _rebuild(name: str, terms: int) -> Nonlinearity:
    """Unpickle: rebuild from the spec (dispatchers are not picklable across processes)."""
    phi = nonlinearity(name)
    return phi if phi.hermite_terms == terms else phi.with_hermite_terms(terms)


def _parse_params(spec: str, params: str, count: int) -> list[float]:
    try:
        values = [float(v) for v in params.split(",")]
    except ValueError:
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise ValueError(
            f"cannot parse nonlinearity {spec!r}: expected {count} number(s) after ':'; "
            f"valid names: {nonlinearities()}"
        )
    return values


def _compile_homogeneous(c_plus: float, c_minus: float) -> tuple[Any, Any]:
    """φ(x) = c₊ x (x > 0), c₋ x (x ≤ 0) and φ′ as a cached numba module (finite c±)."""
    import sympy as sp

    from limitsim._codegen import ScalarFunction

    x = sp.Symbol("x", real=True)
    expr = sp.Piecewise((sp.Float(repr(c_plus)) * x, x > 0), (sp.Float(repr(c_minus)) * x, True))
    first = sp.diff(expr, x)
    functions = [
        ScalarFunction("phi_user", (x,), (expr,), f"φ(x) = {expr}"),
        ScalarFunction("dphi_user", (x,), (first,), f"φ'(x) = {first}"),
    ]
    module = _import_functions(functions)
    return module.phi_user, module.dphi_user


def _compile_expression(spec: str) -> tuple[Any, Any, Any | None, str, tuple[float, ...]]:
    """φ, φ′, φ″ (None unless a checked function), the canonical formula of ``spec`` and
    its kinks (:func:`limitsim.gaussian._expectations.kink_points`).

    ``spec`` is parsed by the grammar of :mod:`limitsim.nonlinearities._expression` (never
    evaluated), φ is checked by :mod:`limitsim.nonlinearities._admissible`, and the functions are
    rendered from the sympy expression (the spec text never enters the module) and imported from the
    verified cache.
    """
    import sympy as sp

    from limitsim._codegen import ScalarFunction
    from limitsim.nonlinearities import _admissible
    from limitsim.nonlinearities._expression import parse_expression

    x = sp.Symbol("x", real=True)
    shown = repr(spec) if len(spec) <= 80 else repr(spec[:77]) + "..."
    try:
        expr = parse_expression(spec, x)
    except ValueError as exc:
        raise ValueError(
            f"unknown nonlinearity {shown}: {exc}; valid names: {nonlinearities()}"
        ) from None
    if not expr.has(x):
        raise ValueError(f"nonlinearity {shown} is constant in x")
    first = sp.diff(expr, x)
    second = sp.diff(first, x)
    try:
        _admissible.check_defined(expr, first)
        _admissible.check_growth(expr, first, x)
        kinked = any(expr.has(f) for f in (sp.Max, sp.Min, sp.Heaviside))
        functions = [
            ScalarFunction("phi_user", (x,), (expr,), f"φ(x) = {expr}"),
            ScalarFunction("dphi_user", (x,), (first,), f"φ'(x) = {first}"),
        ]
        if not kinked and _admissible.is_defined(second):
            functions.append(ScalarFunction("d2phi_user", (x,), (second,), f"φ''(x) = {second}"))
        module = _import_functions(functions)
        _admissible.check_grid("φ", module.phi_user.py_func)
        _admissible.check_grid("φ′", module.dphi_user.py_func)
    except ValueError as exc:
        raise ValueError(f"nonlinearity {shown}: {exc}") from None
    d2phi = getattr(module, "d2phi_user", None)
    try:
        if d2phi is not None:
            _admissible.check_grid("φ″", d2phi.py_func)
    except ValueError:
        d2phi = None
    return module.phi_user, module.dphi_user, d2phi, str(expr), kink_points(expr)


def _import_functions(functions: list[Any]) -> Any:
    """Render ``functions`` (ScalarFunction) into a module and import it from the cache."""
    from limitsim._codegen import render_module

    text = render_module(
        functions, origin="limitsim.nonlinearity", how="automatic", docstring="User nonlinearity"
    )
    return _import_source(text)


def _cache_dir() -> Path:
    root = os.environ.get("LIMITSIM_CACHE_DIR") or Path.home() / ".cache" / "limitsim"
    path = Path(root) / "expressions"
    path.mkdir(parents=True, exist_ok=True)
    return path


class _VerifiedLoader(importlib.abc.SourceLoader):
    """Loads a module from source text held in memory, never from ``.pyc`` bytecode.

    numba's ``cache=True`` needs the functions to live in a file, so the text is also on disk,
    but what is compiled is the text limitsim rendered, compared byte for byte with the file.
    """

    def __init__(self, path: Path, data: bytes) -> None:
        self.path, self.data = path, data

    def get_filename(self, fullname: str) -> str:
        return str(self.path)

    def get_data(self, path: str) -> bytes:
        if path != str(self.path):  # e.g. a bytecode cache: never read
            raise OSError(f"{path} is not read by limitsim")
        return self.data


def _import_source(text: str) -> Any:
    """Import ``text`` as a module whose file in the cache is byte-identical to ``text``.

    The file is named by the SHA-256 of ``text``.  A missing file, or one that differs from
    ``text`` in any byte (damaged or tampered with), is rewritten atomically; the module is
    compiled from ``text`` itself, so neither the file nor a bytecode cache is ever trusted.
    """
    data = text.encode()
    digest = hashlib.sha256(data).hexdigest()[:20]
    path = _cache_dir() / f"expr_{digest}.py"
    try:
        on_disk: bytes | None = path.read_bytes()
    except FileNotFoundError:
        on_disk = None
    if on_disk != data:
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    name = f"limitsim_expr_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    loader = _VerifiedLoader(path, data)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # numba's cache resolves functions through their module name
    loader.exec_module(module)
    return module
