"""Sweeps as data: :class:`SweepSpec`, its TOML file format and the presets.

A spec file (read with :func:`load_spec`; every key but ``function`` and ``axes`` optional)::

    description = "learning rate x depth, Depth-muP"
    function = "limitsim.sweep_spec:demo_point"    # a registered point function
    batch_axes = ["log2_eta", "seed"]               # batched into one call per network shape
    batch_size = 16
    requires = ["limitsim.finite.train.train_finite_batch"]  # checked before running
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
run --allow-code``) is given for a spec the user trusts as code.  The registry lives in
:mod:`limitsim.sweeps._registry`; its public functions are importable from here.
"""

from __future__ import annotations

import importlib
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from limitsim.sweeps._registry import (
    ALLOW_CODE_HINT,
    function_name,
    get_point_function,
    point_functions,
    register_point_function,
    unregistered_error,
)
from limitsim.sweeps._run import run_sweep
from limitsim.sweeps.grid import Grid, point_seed

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


def _check_requires(requires: Sequence[str], allow_code: bool) -> None:
    for entry in requires:
        if not isinstance(entry, str) or not re.fullmatch(r"[A-Za-z_]\w*(\.\w+)+", entry):
            raise ValueError(f"requires entries must be dotted names 'module.name', got {entry!r}")
        if not allow_code and not entry.startswith("limitsim."):
            raise ValueError(
                f"requires entry {entry!r} is outside limitsim: a spec may require only names "
                "of limitsim (e.g. 'limitsim.finite.train.train_finite_batch'). Importing another "
                f"module runs code from this file; {ALLOW_CODE_HINT}"
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
        Dotted names (``"limitsim.finite.train.train_finite_batch"``) that must import before
        running.
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
            raise unregistered_error(self.function)
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
    random numbers).  Training is one call of :func:`limitsim.finite.train.train_finite_batch`.

    Returns
    -------
    list of dict
        Per point: ``loss`` (steps,), ``final_loss`` and ``diverged``.
    """
    from limitsim.finite.train import train_finite_batch
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
    requires=("limitsim.finite.train.train_finite_batch",),
)

#: Named sweeps for ``limitsim sweep run --preset NAME``.
PRESETS: Mapping[str, SweepSpec] = MappingProxyType({"demo": _DEMO})


def get_preset(name: str) -> SweepSpec:
    """The preset ``name`` (ValueError listing the presets if unknown)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {sorted(PRESETS)}")
    return PRESETS[name]
