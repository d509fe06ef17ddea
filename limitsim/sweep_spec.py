"""Sweeps as data: :class:`SweepSpec`, its TOML file format, the point-function registry, presets.

A spec file (read with :func:`load_spec`; every key but ``function`` and ``axes`` optional)::

    description = "learning rate x depth, Depth-muP"
    function = "limitsim.sweep_spec:demo_point"    # a registered point function
    batch_axes = ["log2_eta", "seed"]               # batched into one call per network shape
    batch_size = 16
    requires = ["limitsim.finite.train_finite_batch"]  # checked before running
    filters = ["depth * 2.0 ** log2_eta <= 64"]

    [axes]
    depth = [2, 4, 8]
    log2_eta = [-4.0, -2.0, 0.0]
    seed = [0]

    [fixed]
    width = 32
    steps = 20

A spec is data: it runs no code of its own (``SECURITY.md``).  ``function`` names a point
function of the registry, limitsim's own (:func:`point_functions`) or one registered in Python
with :func:`register_point_function`, and ``requires`` names parts of limitsim.  Any other
``function`` (an import path ``"package.module:function"``) or ``requires`` entry imports
and runs code named by the file: it is refused unless ``allow_code=True`` (``limitsim sweep
run --allow-code``) is given for a spec the user trusts as code.
"""

from __future__ import annotations

import importlib
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, overload

import numpy as np

from limitsim.grid import Grid, point_seed

__all__ = [
    "PRESETS",
    "SweepSpec",
    "demo_point",
    "function_name",
    "get_point_function",
    "get_preset",
    "load_spec",
    "point_functions",
    "register_point_function",
]

_KEYS = (
    "description",
    "function",
    "batch_axes",
    "batch_size",
    "requires",
    "axes",
    "filters",
    "fixed",
)

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
_ALLOW_CODE = "pass --allow-code (allow_code=True) only for a spec you trust as code"


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
    return f"{module}:{qualname}"


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
        A top-level point function (:mod:`limitsim.sweep`); omitted for the decorator form.

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
    if name in _REGISTERED:
        return _REGISTERED[name]
    for function in _REGISTERED.values():
        if function_name(function) == name:
            return function
    if name in _BUILTIN:  # one of the constant names above: imports limitsim only
        builtin: Callable[..., Any] = _import_path(name)
        return builtin
    return None


def _unregistered(name: str) -> ValueError:
    return ValueError(
        f"function {name!r} is not a registered point function. A spec may name "
        f"{sorted(point_functions())} or a function registered in Python with "
        f"limitsim.register_point_function. An import path runs code from this file; {_ALLOW_CODE}"
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
            raise _unregistered(name)
        function = _import_path(name)
    function_name(function)
    return function


def _check_requires(requires: Sequence[str], allow_code: bool) -> None:
    for entry in requires:
        if not isinstance(entry, str) or not re.fullmatch(r"[A-Za-z_]\w*(\.\w+)+", entry):
            raise ValueError(f"requires entries must be dotted names 'module.name', got {entry!r}")
        if not allow_code and not entry.startswith("limitsim."):
            raise ValueError(
                f"requires entry {entry!r} is outside limitsim: a spec may require only names "
                "of limitsim (e.g. 'limitsim.finite.train_finite_batch'). Importing another "
                f"module runs code from this file; {_ALLOW_CODE}"
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class SweepSpec:
    """A sweep described as data: point function by name, grid, batching.

    Parameters
    ----------
    function : str
        Name of a registered point function (:func:`point_functions`), or an import path
        ``"package.module:function"`` (run only with ``allow_code``).
    grid : Grid
    batch_axes : tuple of str
        Axes batched into one call (the function then takes a list of points).
    batch_size : int, optional
        At most this many points per batch.
    requires : tuple of str
        Dotted names (``"limitsim.finite.train_finite_batch"``) that must import before running.
    description : str
    """

    function: str
    grid: Grid
    batch_axes: tuple[str, ...] = ()
    batch_size: int | None = None
    requires: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.function, str) or not self.function:
            raise TypeError(f"function must be a name string, got {self.function!r}")
        if not isinstance(self.grid, Grid):
            raise TypeError(f"grid must be a Grid, got {type(self.grid).__name__}")
        object.__setattr__(self, "batch_axes", self.grid.check_axes(self.batch_axes, "batch_axes"))
        object.__setattr__(self, "requires", tuple(self.requires))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, allow_code: bool = False) -> SweepSpec:
        """Spec from a parsed TOML table (format in the module docstring).

        Parameters
        ----------
        data : Mapping
            The table.
        allow_code : bool
            Accept a ``function`` import path and ``requires`` outside limitsim: the spec
            then runs code it names (module docstring).

        Raises
        ------
        ValueError
            Unknown or missing keys, a bad grid, or (without ``allow_code``) a ``function``
            or ``requires`` that would run code named by the spec.
        """
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise ValueError(f"unknown spec keys {unknown}; allowed: {list(_KEYS)}")
        for key in ("function", "axes"):
            if key not in data:
                raise ValueError(f"a sweep spec needs {key!r}")
        grid = Grid.from_dict({k: data[k] for k in ("axes", "filters", "fixed") if k in data})
        spec = cls(
            function=data["function"],
            grid=grid,
            batch_axes=tuple(data.get("batch_axes", ())),
            batch_size=data.get("batch_size"),
            requires=tuple(data.get("requires", ())),
            description=str(data.get("description", "")),
        )
        spec.check_code(allow_code=allow_code)
        return spec

    def check_code(self, *, allow_code: bool = False) -> None:
        """Refuse a ``function`` or ``requires`` that would run code named by the spec.

        Without ``allow_code``, ``function`` must be a registered point function
        (:func:`point_functions`) and every ``requires`` entry a name of limitsim.  Nothing is
        imported but limitsim's own modules.

        Raises
        ------
        ValueError
            Naming the refused field and what is allowed.
        """
        _check_requires(self.requires, allow_code)
        names = point_functions()
        if self.function in names or self.function in names.values():
            return
        if not allow_code:
            raise _unregistered(self.function)
        if not re.fullmatch(r"[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*)?", self.function):
            raise ValueError(
                f"function must be a registered name or 'package.module:function', "
                f"got {self.function!r}"
            )

    def check_requirements(self, *, allow_code: bool = False) -> None:
        """Raise ImportError naming each ``requires`` entry that cannot be imported.

        Entries outside limitsim are refused (ValueError) unless ``allow_code``.
        """
        _check_requires(self.requires, allow_code)
        for name in self.requires:
            module, _, attr = name.rpartition(".")
            try:
                getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                raise ImportError(
                    f"this sweep needs {name}, which this installation of limitsim does not "
                    f"provide yet ({type(exc).__name__}: {exc})"
                ) from None

    def run(
        self, *, store: str | os.PathLike[str], allow_code: bool = False, **options: Any
    ) -> Any:
        """Check the spec's code names and requirements, then :func:`limitsim.run_sweep`.

        Parameters
        ----------
        store : path-like
            Store directory.
        allow_code : bool
            Run a ``function`` import path and ``requires`` outside limitsim (module
            docstring): for a spec the user trusts as code.
        **options
            Passed on to :func:`limitsim.run_sweep`.
        """
        from limitsim.sweep import run_sweep

        self.check_code(allow_code=allow_code)
        self.check_requirements(allow_code=allow_code)
        return run_sweep(
            get_point_function(self.function, allow_code=allow_code),
            self.grid,
            store=store,
            batch_axes=self.batch_axes,
            batch_size=self.batch_size,
            **options,
        )


def load_spec(path: str | os.PathLike[str], *, allow_code: bool = False) -> SweepSpec:
    """Read a TOML sweep spec (ValueError naming the file for invalid content).

    Parameters
    ----------
    path : path-like
        The TOML file.
    allow_code : bool
        Accept a ``function`` import path and ``requires`` outside limitsim, which run code
        named by the file (:meth:`SweepSpec.from_dict`).
    """
    with open(path, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: invalid TOML: {exc}") from None
    try:
        return SweepSpec.from_dict(data, allow_code=allow_code)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{path}: {exc}") from None


def demo_point(points: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Batched point function of the ``demo`` preset: small finite resnets on a teacher task.

    All points of a batch share the network shape (``depth``, ``width``, ``phi``, ``param``)
    and the data: ``batch`` Gaussian inputs of dimension ``d_in`` with targets
    ``tanh(x·w/√d_in)`` of a random teacher ``w``, drawn from ``point_seed`` of ``data_seed``.
    Each point's learning rate is ``2**log2_eta``; its initialization seed is the
    ``point_seed`` of (``seed``, ``depth``, ``width``), shared across learning rates (common
    random numbers).  Training is one call of :func:`limitsim.finite.train_finite_batch`.

    Returns
    -------
    list of dict
        Per point: ``loss`` (steps,), ``final_loss`` and ``diverged``.
    """
    from limitsim.finite import train_finite_batch
    from limitsim.parametrization import Parametrization
    from limitsim.task import Task

    first = points[0]
    rng = np.random.default_rng(point_seed(first, keys=("data_seed",)))
    X = rng.standard_normal((first["batch"], first["d_in"]))
    Y = np.tanh(X @ rng.standard_normal(first["d_in"]) / np.sqrt(first["d_in"]))
    task = Task.full_batch(X, Y, first["steps"])
    params = [Parametrization.preset(p["param"], eta=2.0 ** p["log2_eta"]) for p in points]
    runs = train_finite_batch(
        task,
        params,
        depth=first["depth"],
        width=first["width"],
        phi=first["phi"],
        seeds=[point_seed(p, keys=("seed", "depth", "width")) for p in points],
    )
    return [
        {"loss": run.loss, "final_loss": run.final_loss(), "diverged": run.diverged} for run in runs
    ]


_DEMO = SweepSpec(
    description=(
        "learning rate x depth of small Depth-muP resnets on a teacher task "
        "(24 points, a few seconds; the largest rates diverge)"
    ),
    function="limitsim.sweep_spec:demo_point",
    grid=Grid(
        axes={
            "depth": [2, 4, 8],
            "log2_eta": [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0],
            "seed": [0],
        },
        fixed={
            "width": 32,
            "steps": 20,
            "batch": 16,
            "d_in": 8,
            "phi": "relu",
            "param": "depth_mup",
            "data_seed": 0,
        },
    ),
    batch_axes=("log2_eta", "seed"),
    requires=("limitsim.finite.train_finite_batch",),
)

#: Named sweeps for ``limitsim sweep run --preset NAME``.
PRESETS: Mapping[str, SweepSpec] = MappingProxyType({"demo": _DEMO})


def get_preset(name: str) -> SweepSpec:
    """The preset ``name`` (ValueError listing the presets if unknown)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {sorted(PRESETS)}")
    return PRESETS[name]
