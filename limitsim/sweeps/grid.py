"""Sweep grids: a product of named axes, minus filtered points, plus fixed parameters.

A grid point is a plain ``dict`` mapping every axis name and every fixed parameter to one
value; it is the *full configuration* of one run.  Everything a point function needs to be
reproducible is derived from that dict alone:

- :func:`point_key` is the identity of a point in a result store: a SHA-256 hash of the
  canonical JSON of the configuration, the point function's dotted name, the limitsim version
  and the store schema.
- :func:`point_seed` is the random seed of a point: a hash of (a subset of) the configuration,
  never of the execution order, so every executor and worker count gives the same numbers.

Filters are small Python *expressions* over axis and fixed names (``"depth * eta <= 8"``),
parsed once and evaluated by a whitelisting interpreter (arithmetic, comparisons, ``and``,
``or``, ``not``, tuples, and ``abs min max round log log2 sqrt``); no other syntax is allowed,
so a grid is plain data: it round-trips through JSON and TOML.  Filters are bounded in size
(:data:`MAX_FILTER_CHARS`, :data:`MAX_FILTER_NODES`) and so are the values they compute
(:data:`MAX_INT_BITS`, :data:`MAX_LENGTH`, checked before a power or a repetition is
computed), so every evaluation takes microseconds; a :class:`Grid` evaluates its filters on
every cell when it is built, and any failure (``x / 0``, ``x ** 10 ** 10``, ``log(0)``, a
comparison of a string with a number) is a ValueError naming the filter and the cell.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import math
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = ["Grid", "canonical_json", "point_key", "point_seed"]

#: Version of the point-key recipe and of the store layout (see :mod:`limitsim.sweeps.store`).
SCHEMA = 1

Scalar = bool | int | float | str

#: Longest filter text, in characters.
MAX_FILTER_CHARS = 1000
#: Most syntax-tree nodes of one filter (as counted by ``ast.walk``: ``depth * eta <= 8`` has 10).
MAX_FILTER_NODES = 200
#: Largest integer a filter may compute, in bits (a float covers 2^1024).
MAX_INT_BITS = 1024
#: Longest string or tuple a filter may compute.
MAX_LENGTH = 10_000


class _FilterError(Exception):
    """A filter's evaluation failed (turned into a ValueError naming the filter and cell)."""


def _power(base: Any, exponent: Any) -> Any:
    """``base ** exponent``, refusing integer results above :data:`MAX_INT_BITS` up front."""
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        if (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS:
            raise _FilterError(
                f"{base} ** {exponent} has more than {MAX_INT_BITS} bits; filters compute "
                "with numbers of at most that size"
            )
    return base**exponent


def _multiply(left: Any, right: Any) -> Any:
    """``left * right``, refusing repeated strings or tuples above :data:`MAX_LENGTH` up front."""
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, str | tuple) and isinstance(count, int):
            if len(seq) * count > MAX_LENGTH:
                raise _FilterError(f"a repetition of {len(seq) * count} items is too long")
    return left * right


def _round(number: Any, ndigits: Any = None) -> Any:
    """``round``, refusing ``ndigits`` beyond ±:data:`MAX_INT_BITS` (10**ndigits is computed)."""
    if isinstance(ndigits, int) and abs(ndigits) > MAX_INT_BITS:
        raise _FilterError(f"round(..., {ndigits}): ndigits must lie in ±{MAX_INT_BITS}")
    return round(number, ndigits)


def _modulo(left: Any, right: Any) -> Any:
    """``left % right`` of numbers (``str % ...`` formatting could build huge strings)."""
    if isinstance(left, str):
        raise _FilterError("string formatting with % is not allowed")
    return left % right


def _checked(value: Any) -> Any:
    """``value`` if it is a real scalar or sequence within the size bounds; _FilterError else."""
    if isinstance(value, complex):
        raise _FilterError(f"the value {value} is not real")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _FilterError(f"an integer of {value.bit_length()} bits exceeds {MAX_INT_BITS}")
    if isinstance(value, str | tuple) and len(value) > MAX_LENGTH:
        raise _FilterError(f"a string or tuple of {len(value)} items exceeds {MAX_LENGTH}")
    return value


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: _multiply,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: _modulo,
    ast.Pow: _power,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: operator.not_,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "min": min,
    "max": max,
    "round": _round,
    "log": math.log,
    "log2": math.log2,
    "sqrt": math.sqrt,
}

_ALLOWED = (
    ast.Expression,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.Compare,
    ast.Tuple,
    ast.List,
    ast.Call,
    *_BINARY,
    *_UNARY,
    *_COMPARE,
)


def _scalar(value: Any, name: str) -> Scalar:
    """``value`` as a plain Python scalar (numpy scalars unwrapped); TypeError otherwise."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        return value
    raise TypeError(f"{name} must be a bool, int, float or str, got {type(value).__name__}")


def _fixed_value(value: Any, name: str) -> Any:
    """A fixed parameter: a scalar or a (nested) list of scalars, stored as tuples."""
    if isinstance(value, list | tuple):
        return tuple(_fixed_value(v, name) for v in value)
    return _scalar(value, name)


def _axis_values(name: str, values: Any) -> tuple[Scalar, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise TypeError(f"axis {name!r} must be a sequence of values, got {values!r}")
    out = [_scalar(v, f"axis {name!r} value") for v in values]
    if not out:
        raise ValueError(f"axis {name!r} must have at least one value")
    kinds = {bool if isinstance(v, bool) else str if isinstance(v, str) else float for v in out}
    if len(kinds) > 1:
        raise TypeError(f"axis {name!r} mixes value types {sorted(k.__name__ for k in kinds)}")
    if kinds == {float} and any(isinstance(v, float) for v in out):
        out = [float(v) for v in out]  # [1, 0.5] is a float axis: 1 and 1.0 hash differently
    if len(set(out)) != len(out):
        raise ValueError(f"axis {name!r} has repeated values: {out}")
    return tuple(out)


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise ValueError(f"{what} names must be identifiers not starting with '_', got {name!r}")
    return name


@dataclass(frozen=True, slots=True)
class _Filter:
    """A parsed filter expression (see the module docstring for the allowed syntax)."""

    text: str
    tree: ast.Expression

    @classmethod
    def parse(cls, text: str, names: Iterable[str]) -> _Filter:
        if not isinstance(text, str):
            raise TypeError(f"filters must be expression strings, got {text!r}")
        if len(text) > MAX_FILTER_CHARS:
            raise ValueError(
                f"filter {text[:40]!r}... has {len(text)} characters; at most "
                f"{MAX_FILTER_CHARS} are allowed"
            )
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError as exc:
            raise ValueError(f"filter {text!r} is not a valid expression: {exc.msg}") from None
        nodes = list(ast.walk(tree))
        if len(nodes) > MAX_FILTER_NODES:
            raise ValueError(
                f"filter {text!r} has {len(nodes)} syntax nodes; at most {MAX_FILTER_NODES} "
                "are allowed"
            )
        known = set(names)
        for node in nodes:
            if not isinstance(node, _ALLOWED) or (
                isinstance(node, ast.Constant) and not isinstance(node.value, Scalar)
            ):
                raise ValueError(f"filter {text!r}: unsupported syntax {type(node).__name__}")
            if isinstance(node, ast.Call) and (
                not isinstance(node.func, ast.Name)
                or node.func.id not in _FUNCTIONS
                or node.keywords
            ):
                raise ValueError(
                    f"filter {text!r}: only the functions {sorted(_FUNCTIONS)} may be called"
                )
            if isinstance(node, ast.Name) and node.id not in known | set(_FUNCTIONS):
                raise ValueError(
                    f"filter {text!r} uses unknown axis {node.id!r}; "
                    f"axes and fixed parameters are {sorted(known)}"
                )
        return cls(text, tree)

    def __call__(self, point: Mapping[str, Any]) -> bool:
        """Is ``point`` kept?  ValueError, naming the filter and the point, when it fails."""
        try:
            return bool(_evaluate(self.tree.body, point))
        except (_FilterError, ArithmeticError, ValueError, TypeError) as exc:
            used = sorted({n.id for n in ast.walk(self.tree) if isinstance(n, ast.Name)})
            where = {name: point[name] for name in used if name in point}
            reason = exc if isinstance(exc, _FilterError) else f"{type(exc).__name__}: {exc}"
            raise ValueError(
                f"filter {self.text!r} cannot be evaluated at {where}: {reason}"
            ) from None


def _evaluate(node: ast.AST, env: Mapping[str, Any]) -> Any:
    """Evaluate a node of a filter (whitelisted by :meth:`_Filter.parse`)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, env), _evaluate(node.right, env)
        return _checked(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp):
        return _checked(_UNARY[type(node.op)](_evaluate(node.operand, env)))
    if isinstance(node, ast.BoolOp):
        values = (_evaluate(v, env) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, env)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comparator, env)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Tuple | ast.List):
        return tuple(_evaluate(e, env) for e in node.elts)
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    return _checked(_FUNCTIONS[node.func.id](*(_evaluate(a, env) for a in node.args)))


@dataclass(frozen=True, kw_only=True, slots=True)
class Grid:
    """The points of a sweep: the product of named axes, filtered, plus fixed parameters.

    Parameters
    ----------
    axes : Mapping[str, Sequence]
        Axis name → values (bool, int, float or str; one type per axis, no repeats; an axis
        mixing ints and floats becomes a float axis).  The order of the axes is the order of
        the dimensions of the result Dataset; points are enumerated in C order.
    filters : sequence of str
        Expressions over axis and fixed names; a point is kept when every filter is true
        (e.g. ``"depth * eta <= 8"``).  They are evaluated on every cell here: an unknown
        name, a filter beyond the size bounds, or one that fails on some cell (division by
        zero, a number too large, ...) raises ValueError naming the filter and the cell.
    fixed : Mapping[str, Any]
        Parameters shared by every point (scalars or lists of scalars); they are part of each
        point's configuration, hence of its key and seed.

    Examples
    --------
    >>> grid = Grid(axes={"depth": [2, 4], "eta": [0.1, 1.0]}, filters=["depth * eta < 4"])
    >>> [(p["depth"], p["eta"]) for p in grid.points()]
    [(2, 0.1), (2, 1.0), (4, 0.1)]
    """

    axes: Mapping[str, Sequence[Scalar]]
    filters: Sequence[str] = ()
    fixed: Mapping[str, Any] = field(default_factory=dict)
    _parsed: tuple[_Filter, ...] = field(default=(), init=False, repr=False, compare=False)
    _kept: bytes = field(default=b"", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.axes, Mapping) or not self.axes:
            raise ValueError(f"axes must be a non-empty mapping of name -> values, got {self.axes}")
        axes = {_check_name(k, "axis"): _axis_values(k, v) for k, v in self.axes.items()}
        if not isinstance(self.fixed, Mapping):
            raise TypeError(f"fixed must be a mapping of name -> value, got {self.fixed!r}")
        fixed = {
            _check_name(k, "fixed parameter"): _fixed_value(v, k) for k, v in self.fixed.items()
        }
        clash = sorted(set(axes) & set(fixed))
        if clash:
            raise ValueError(f"names {clash} are both axes and fixed parameters")
        filters = (self.filters,) if isinstance(self.filters, str) else tuple(self.filters)
        parsed = tuple(_Filter.parse(f, [*axes, *fixed]) for f in filters)
        object.__setattr__(self, "axes", MappingProxyType(axes))
        object.__setattr__(self, "fixed", MappingProxyType(fixed))
        object.__setattr__(self, "filters", tuple(f.text for f in parsed))
        object.__setattr__(self, "_parsed", parsed)
        kept = bytes(all(f(point) for f in parsed) for _, point in self._product())
        object.__setattr__(self, "_kept", kept)

    @property
    def names(self) -> tuple[str, ...]:
        """Axis names, in dimension order."""
        return tuple(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of values of each axis."""
        return tuple(len(v) for v in self.axes.values())

    def check_axes(self, names: Iterable[str], what: str) -> tuple[str, ...]:
        """``names`` as a tuple, each checked to be an axis (ValueError naming ``what``)."""
        names = (names,) if isinstance(names, str) else tuple(names)
        unknown = [n for n in names if n not in self.axes]
        if unknown:
            raise ValueError(f"{what}: unknown axis {unknown}; the axes are {list(self.axes)}")
        return names

    def cells(self) -> Iterator[tuple[tuple[int, ...], dict[str, Any], bool]]:
        """Every cell of the product: ``(index, point, kept)`` in C order."""
        for (index, point), kept in zip(self._product(), self._kept, strict=True):
            yield index, point, bool(kept)

    def _product(self) -> Iterator[tuple[tuple[int, ...], dict[str, Any]]]:
        """Every cell of the product: ``(index, point)`` in C order."""
        ranges = [range(n) for n in self.shape]
        for index in itertools.product(*ranges):
            point = {
                name: vals[j] for (name, vals), j in zip(self.axes.items(), index, strict=True)
            }
            point.update(self.fixed)
            yield index, point

    def points(self) -> list[dict[str, Any]]:
        """The kept points (axis values and fixed parameters), in C order of the axes."""
        return [point for _, point, kept in self.cells() if kept]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description; :meth:`from_dict` inverts it."""
        return {
            "axes": {k: list(v) for k, v in self.axes.items()},
            "filters": list(self.filters),
            "fixed": json.loads(canonical_json(dict(self.fixed))),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Grid:
        """Grid from :meth:`to_dict` output (or the ``axes``/``filters``/``fixed`` of a spec)."""
        unknown = sorted(set(data) - {"axes", "filters", "fixed"})
        if unknown:
            raise ValueError(f"unknown grid keys {unknown}; allowed: axes, filters, fixed")
        if "axes" not in data:
            raise ValueError("a grid needs an 'axes' table of name -> list of values")
        return cls(axes=data["axes"], filters=data.get("filters", ()), fixed=data.get("fixed", {}))


def canonical_json(value: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces, tuples as lists, exact float repr)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def point_key(point: Mapping[str, Any], function: str, version: str) -> str:
    """Store key of a point: SHA-256 (hex) of its configuration, function name and version.

    Parameters
    ----------
    point : Mapping
        The full configuration (axis values and fixed parameters).
    function : str
        Dotted name of the point function (``"module:qualname"``).
    version : str
        limitsim version; with :data:`SCHEMA` it makes keys of other versions distinct.
    """
    payload = {"config": dict(point), "function": function, "limitsim": version, "schema": SCHEMA}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def point_seed(point: Mapping[str, Any], keys: Iterable[str] | None = None) -> int:
    """Random seed of a grid point, derived from its configuration alone.

    Parameters
    ----------
    point : Mapping
        The point (as passed to the point function).
    keys : iterable of str, optional
        Hash only these entries (e.g. ``("seed", "depth", "width")`` to share one
        initialization across learning rates: common random numbers); default all.

    Returns
    -------
    int
        In ``[0, 2**63)``; use as ``np.random.default_rng(point_seed(point))``.  The same
        configuration always gives the same seed, whichever executor, worker or order.
    """
    if keys is not None:
        keys = tuple(keys)
        missing = [k for k in keys if k not in point]
        if missing:
            raise ValueError(f"keys {missing} are not in the point (it has {sorted(point)})")
        point = {k: point[k] for k in keys}
    digest = hashlib.sha256(b"limitsim.point_seed:" + canonical_json(dict(point)).encode())
    return int.from_bytes(digest.digest()[:8], "little") >> 1
