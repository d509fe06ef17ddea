"""The grammar of nonlinearity expressions: text → sympy expression, without ``eval``.

A spec such as ``"x*erf(x)"`` is data.  It is parsed by :func:`ast.parse` (which only parses)
and the syntax tree is walked over a whitelist of node types, building the sympy expression
node by node; ``sympy.parse_expr``/``sympify`` are never given the text (they ``eval`` it).

Grammar::

    expr   := number | "x" | "pi" | "E" | expr op expr | "-" expr | "+" expr | "(" expr ")"
            | function "(" expr ("," expr)* ")"
    op     := "+" | "-" | "*" | "/" | "**"

with the functions of :data:`FUNCTIONS` (``abs`` is accepted for ``Abs``).  Limits, checked
before any symbolic work: at most :data:`MAX_LENGTH` characters drawn from letters, digits,
spaces and ``+-*/().,_``; at most :data:`MAX_NODES` syntax nodes nested at most
:data:`MAX_NESTING` deep; a constant exponent at most :data:`MAX_EXPONENT` in size; every
constant subexpression a finite real float64 (so ``1/0``, ``log(-1)`` and ``1e400`` are
refused).  Anything else raises ValueError naming what was refused and what is allowed.
"""

from __future__ import annotations

import ast
import math
import operator
import string
from typing import Any, Final, NoReturn

__all__ = [
    "FUNCTIONS",
    "GRAMMAR",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_NESTING",
    "MAX_NODES",
    "parse_expression",
]

MAX_LENGTH: Final = 1000
MAX_NODES: Final = 250
MAX_NESTING: Final = 32
MAX_EXPONENT: Final = 64

#: Allowed functions (sympy names) and their number of arguments (None: one or more).
FUNCTIONS: Final[dict[str, int | None]] = {
    "Abs": 1,
    "Heaviside": 1,
    "Max": None,
    "Min": None,
    "atan": 1,
    "cos": 1,
    "cosh": 1,
    "erf": 1,
    "erfc": 1,
    "exp": 1,
    "log": 1,
    "sign": 1,
    "sin": 1,
    "sinh": 1,
    "sqrt": 1,
    "tanh": 1,
}
_ALIASES: Final = {"abs": "Abs"}
_CONSTANTS: Final = ("pi", "E")
_CHARACTERS: Final = frozenset(string.ascii_letters + string.digits + " +-*/().,_")

GRAMMAR: Final = (
    "a nonlinearity expression may contain numbers, the variable x, the constants pi and E, "
    "+ - * / ** (a constant exponent at most "
    f"{MAX_EXPONENT} in size), unary minus, parentheses and the functions "
    f"{', '.join(FUNCTIONS)}; at most {MAX_LENGTH} characters and {MAX_NODES} terms, "
    f"nested at most {MAX_NESTING} deep"
)

_BINARY: Final = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_REFUSED: Final[dict[type, str]] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.Lambda: "lambda",
    ast.IfExp: "a conditional expression",
    ast.Compare: "a comparison",
    ast.BoolOp: "'and'/'or'",
    ast.Tuple: "a tuple",
    ast.List: "a list",
    ast.Set: "a set",
    ast.Dict: "a dict",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.Starred: "* unpacking",
    ast.JoinedStr: "an f-string",
    ast.NamedExpr: "an assignment expression",
    ast.FloorDiv: "'//'",
    ast.Mod: "'%'",
    ast.MatMult: "'@'",
    ast.BitXor: "'^' (write x**2 for a power)",
    ast.BitOr: "'|'",
    ast.BitAnd: "'&'",
    ast.LShift: "'<<'",
    ast.RShift: "'>>'",
    ast.Invert: "'~'",
    ast.Not: "'not'",
}


def parse_expression(text: str, x: Any) -> Any:
    """The sympy expression of ``text`` in the symbol ``x`` (see the module docstring).

    Parameters
    ----------
    text : str
        The spec, e.g. ``"x*erf(x)"`` or ``"Abs(x)**1.5"``.
    x : sympy.Symbol
        The real symbol the name ``x`` stands for.

    Returns
    -------
    sympy.Expr
        Built node by node from the syntax tree (sympy's automatic simplification applies).

    Raises
    ------
    ValueError
        Naming the refused character, syntax, name, function or constant, followed by
        :data:`GRAMMAR`.
    """
    if len(text) > MAX_LENGTH:
        _refuse(f"a spec of {len(text)} characters (more than {MAX_LENGTH})")
    for char in text:
        if char not in _CHARACTERS:
            hint = " (write x**2 for a power)" if char == "^" else ""
            _refuse(f"the character {char!r}{hint}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not a parsable expression ({exc.msg}); {GRAMMAR}") from None
    except (RecursionError, MemoryError):
        _refuse("an expression nested this deeply")
    _check_size(tree)
    return _Builder(x).build(tree.body)


def _refuse(what: str, why: str = "") -> NoReturn:
    raise ValueError(f"{what} is not allowed{why}; {GRAMMAR}")


def _check_size(tree: ast.AST) -> None:
    """Count nodes and nesting iteratively (no recursion on untrusted depth)."""
    stack = [(tree, 0)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            _refuse(f"an expression of more than {MAX_NODES} terms")
        if depth > MAX_NESTING:
            _refuse(f"an expression nested more than {MAX_NESTING} deep")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


class _Builder:
    """Walks a size-checked syntax tree, building sympy nodes from the whitelist only."""

    def __init__(self, x: Any) -> None:
        import sympy as sp

        self.sp = sp
        self.names = {"x": x, "pi": sp.pi, "E": sp.E}
        self.functions = {name: getattr(sp, name) for name in FUNCTIONS}
        self.non_finite = (sp.zoo, sp.oo, -sp.oo, sp.nan, sp.I)

    def build(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return self._number(node.value)
        if isinstance(node, ast.Name):
            if node.id not in self.names:
                _refuse(f"the name {node.id!r}", " (an expression in the single variable x)")
            return self.names[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            operand = self.build(node.operand)
            return self._constant(-operand if isinstance(node.op, ast.USub) else operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return self._binary(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.UnaryOp | ast.BinOp):
            op = node.op
            _refuse(_REFUSED.get(type(op), f"the operator {type(op).__name__}"))
        _refuse(_REFUSED.get(type(node), f"Python syntax {type(node).__name__}"))

    def _number(self, value: object) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            kind = "a string" if isinstance(value, str | bytes) else repr(value)
            _refuse(f"the constant {kind}")
        if isinstance(value, int):
            return self._constant(self.sp.Integer(value))
        if not math.isfinite(value):
            _refuse("a number beyond the float64 range")
        return self._constant(self.sp.Float(repr(value)))  # repr: every digit of the double

    def _binary(self, node: ast.BinOp) -> Any:
        left, right = self.build(node.left), self.build(node.right)
        if isinstance(node.op, ast.Pow) and right.is_number:
            size = abs(float(right))
            if size > MAX_EXPONENT:
                _refuse(f"the exponent {float(right):g} (more than {MAX_EXPONENT} in size)")
        return self._constant(_BINARY[type(node.op)](left, right))

    def _call(self, node: ast.Call) -> Any:
        func = node.func
        if not isinstance(func, ast.Name):
            _refuse(f"calling {_REFUSED.get(type(func), type(func).__name__)}")
        name = _ALIASES.get(func.id, func.id)
        if name not in self.functions:
            _refuse(f"the function {func.id!r}")
        if node.keywords:
            _refuse(f"keyword arguments to {name}")
        arity = FUNCTIONS[name]
        if (arity is None and not node.args) or (arity is not None and len(node.args) != arity):
            expected = "one or more arguments" if arity is None else f"{arity} argument"
            _refuse(f"{name} with {len(node.args)} arguments ({name} takes {expected})")
        args = [self.build(arg) for arg in node.args]
        return self._constant(self.functions[name](*args))

    def _constant(self, expr: Any) -> Any:
        """``expr``, after checking it has no infinity, NaN or i, and a constant is float64."""
        shown = str(expr) if len(str(expr)) <= 60 else str(expr)[:57] + "..."
        if expr.has(*self.non_finite):
            _refuse(f"{shown} (not a finite real number)")
        if expr.free_symbols:
            return expr
        value = expr.evalf(20)
        if not value.is_real:
            _refuse(f"the constant {shown} (not a finite real number)")
        if not math.isfinite(_as_float(value)):
            _refuse(f"the constant {shown} (beyond the float64 range)")
        return expr


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (OverflowError, TypeError, ValueError):
        return math.inf
