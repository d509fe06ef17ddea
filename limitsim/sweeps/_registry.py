"""The registry of point functions a sweep spec may name, without running code named by the spec.

A spec file names its point function (:mod:`limitsim.sweeps.spec`); the name is resolved here:
limitsim's own point functions (``_BUILTIN``, imported on first use), functions registered in
Python with :func:`register_point_function`, or (only with ``allow_code``) an import path
``"package.module:function"``, which imports, hence runs, the module it names
(``SECURITY.md``).  A point function is known to the workers by its dotted name
(:func:`function_name`), which is also part of every point key of a store.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any, overload

__all__ = [
    "ALLOW_CODE_HINT",
    "function_name",
    "get_point_function",
    "point_functions",
    "register_point_function",
    "unregistered_error",
]

#: limitsim's own point functions, by dotted name (imported on first use).
_BUILTIN = (
    "limitsim.sweep_spec:demo_point",
    "limitsim.experiments._digits:train_points",
    "limitsim.experiments.convergence:finite_points",
    "limitsim.experiments.convergence:limit_point",
    "limitsim.experiments.diversity:limit_point",
    "limitsim.experiments.nonlinearity:train_family_points",
    "limitsim.experiments.scaling_exponents:step_points",
)
_REGISTERED: dict[str, Callable[..., Any]] = {}
_NAME = re.compile(r"[A-Za-z_][\w.:-]*")
#: How to accept a spec that runs code it names (the end of every refusal).
ALLOW_CODE_HINT = "pass --allow-code (allow_code=True) only for a spec you trust as code"


#: Point functions of limitsim whose module moved keep the name they had (a point key and a
#: store's ``store.json`` contain it, and spec files name it); the former module path still
#: imports (``limitsim.FORMER_MODULES``).
STABLE_NAMES = {"limitsim.sweeps.spec:demo_point": "limitsim.sweep_spec:demo_point"}


def function_name(function: Callable[..., Any]) -> str:
    """The dotted name ``"module:qualname"`` by which workers import ``function``.

    Raises
    ------
    TypeError
        For non-callables, lambdas, nested functions and other objects that workers cannot
        import by name.
    """
    if not callable(function):
        raise TypeError(f"function must be callable or a name, got {function!r}")
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", "")
    if not module or "<" in qualname:
        raise TypeError(
            f"the point function must be a top-level function that workers can import by "
            f"name, got {qualname or function!r} (lambdas and nested functions cannot be used)"
        )
    dotted = f"{module}:{qualname}"
    return STABLE_NAMES.get(dotted, dotted)


def _import_path(path: str) -> Any:
    """The object at ``"package.module:attr"`` (or ``"package.module.attr"``); imports code."""
    module, sep, qualname = path.partition(":")
    if not sep:
        module, _, qualname = path.rpartition(".")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(
            f"function {path!r} cannot be imported ({type(exc).__name__}: {exc}); "
            "give 'package.module:function' of a top-level function"
        ) from None
    return obj


@overload
def register_point_function(
    name: str, function: None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]: ...
@overload
def register_point_function(name: str, function: Callable[..., Any]) -> Callable[..., Any]: ...
def register_point_function(
    name: str, function: Callable[..., Any] | None = None
) -> Callable[..., Any]:
    """Let sweep spec files name ``function`` as ``name`` (or by its dotted name).

    Use it as a call, ``register_point_function("my_sweep", my_point)``, or as a decorator,
    ``@register_point_function("my_sweep")``.  Registering runs in Python, so only code the
    user runs can extend what a spec file may call (``SECURITY.md``).

    Parameters
    ----------
    name : str
        Name for the spec's ``function`` key: a letter or ``_``, then letters, digits and
        ``_.:-``.
    function : callable, optional
        A top-level point function (:mod:`limitsim.sweeps.sweep`); omitted for the decorator form.

    Returns
    -------
    callable
        ``function`` itself (or the decorator).

    Raises
    ------
    ValueError
        A malformed name, or a name already registered to another function.
    TypeError
        ``function`` cannot be imported by name in the workers (a lambda, a nested function).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"name must start with a letter or '_' and hold only letters, digits and '_.:-', "
            f"got {name!r}"
        )
    if function is None:
        return lambda fn: register_point_function(name, fn)
    dotted = function_name(function)
    known = point_functions().get(name)
    if known is not None and known != dotted:
        raise ValueError(f"point function name {name!r} is already registered to {known}")
    _REGISTERED[name] = function
    return function


def point_functions() -> dict[str, str]:
    """Name → dotted name of every point function a spec file may name without allow_code."""
    names = {dotted: dotted for dotted in _BUILTIN}
    names.update({name: function_name(fn) for name, fn in _REGISTERED.items()})
    return names


def _registered(name: str) -> Callable[..., Any] | None:
    """The function registered as ``name`` (or with that dotted name), else None."""
    name = STABLE_NAMES.get(name, name)  # a moved function's current path: its stable name
    if name in _REGISTERED:
        return _REGISTERED[name]
    for function in _REGISTERED.values():
        if function_name(function) == name:
            return function
    if name in _BUILTIN:  # one of the constant names above: imports limitsim only
        builtin: Callable[..., Any] = _import_path(name)
        return builtin
    return None


def unregistered_error(name: str) -> ValueError:
    """The error refusing ``name``, which is neither registered nor built in."""
    return ValueError(
        f"function {name!r} is not a registered point function. A spec may name "
        f"{sorted(point_functions())} or a function registered in Python with "
        "limitsim.register_point_function. An import path runs code from this file; "
        f"{ALLOW_CODE_HINT}"
    )


def get_point_function(name: str, *, allow_code: bool = False) -> Callable[..., Any]:
    """The point function a spec names: registered, built in, or (``allow_code``) imported.

    Parameters
    ----------
    name : str
        A name of :func:`point_functions`, or an import path ``"package.module:function"``.
    allow_code : bool
        Accept an import path (it imports, hence runs, the module the name gives).

    Raises
    ------
    ValueError
        ``name`` is not registered and ``allow_code`` is False, or it does not import.
    TypeError
        The object is not a top-level function.
    """
    if not isinstance(name, str):
        raise TypeError(f"function must be a name string, got {type(name).__name__}")
    function = _registered(name)
    if function is None:
        if not allow_code:
            raise unregistered_error(name)
        function = _import_path(name)
    function_name(function)
    return function
