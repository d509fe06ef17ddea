"""limitsim: infinite-width-then-depth limits of deep residual networks.

Implements the theory of *Tensor Programs VI: Feature Learning in Infinite-Depth Neural
Networks* (Yang, Yu, Zhu, Hayou 2023) by four routes that check each other
(``theory/algorithms.md``): kernels at initialization (R1, :func:`init_kernels`), the exact
limit of linear resnets (R2, :func:`linear_limit`), the Tensor-Program Monte Carlo simulator
(R3, :func:`simulate_limit`) and finite networks (R4, :func:`train_finite`).

The public names are imported lazily (PEP 562), except those that share a submodule's name
(see the end of this file), so a sweep worker loads only the routes it calls.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("limitsim")
except PackageNotFoundError:  # pragma: no cover - source tree without installation
    __version__ = "0.0.0+unknown"

#: Public name -> the module that defines it.
_SOURCES = {
    "Architecture": "limitsim.architecture",
    "Classification": "limitsim.classification",
    "classify": "limitsim.classification",
    "depth_limit": "limitsim.particles.depth",
    "train_finite": "limitsim.finite.train",
    "train_finite_batch": "limitsim.finite.train",
    "depth_limit_kernels": "limitsim.kernels.limit",
    "init_kernels": "limitsim.kernels.recursion",
    "linear_depth_limit": "limitsim.linear.depth",
    "linear_limit": "limitsim.linear.limit",
    "Nonlinearity": "limitsim.nonlinearities.registry",
    "nonlinearities": "limitsim.nonlinearities.registry",
    "nonlinearity": "limitsim.nonlinearities.registry",
    "Parametrization": "limitsim.parametrization",
    "simulate_limit": "limitsim.particles.simulate",
    "Record": "limitsim.run",
    "Recorded": "limitsim.run",
    "Run": "limitsim.run",
    "open_store": "limitsim.sweeps.store",
    "Grid": "limitsim.sweeps.sweep",
    "point_seed": "limitsim.sweeps.sweep",
    "register_point_function": "limitsim.sweeps.sweep",
    "run_sweep": "limitsim.sweeps.sweep",
    "Task": "limitsim.task",
}

__all__ = sorted([*_SOURCES, "__version__"])


def __getattr__(name: str) -> Any:
    """Import a public name on first use (module docstring)."""
    try:
        module = _SOURCES[name]
    except KeyError:
        raise AttributeError(f"module 'limitsim' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


#: Public module paths of limitsim 0.1, whose modules sat in one flat folder, and where each
#: module is now.  Importing a former path gives the module itself (one object under both
#: names), so scripts, spec files and stores that name a former path keep working.
#: ``limitsim.linear_limit`` is not among them: at the top level that name is the function.
FORMER_MODULES = {
    "limitsim.depth": "limitsim.particles.depth",
    "limitsim.grid": "limitsim.sweeps.grid",
    "limitsim.linear_depth": "limitsim.linear.depth",
    "limitsim.store": "limitsim.sweeps.store",
    "limitsim.sweep": "limitsim.sweeps.sweep",
    "limitsim.sweep_dataset": "limitsim.sweeps.dataset",
    "limitsim.sweep_spec": "limitsim.sweeps.spec",
}


class _FormerPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import hook resolving :data:`FORMER_MODULES` to the modules at their current paths."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in FORMER_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> Any:
        module = importlib.import_module(FORMER_MODULES[spec.name])
        spec.loader_state = module.__spec__  # the import system overwrites __spec__ next
        return module

    def exec_module(self, module: Any) -> None:
        module.__spec__ = module.__spec__.loader_state  # the module keeps its own identity


sys.meta_path.append(_FormerPaths())

# A public name that is also a subpackage's name (``nonlinearities``) cannot be lazy:
# importing the subpackage binds it as an attribute of this package, which would then shadow
# the function.  Bind those functions now, after their modules.
for _name, _module in _SOURCES.items():
    if _module.startswith(f"{__name__}.{_name}."):
        globals()[_name] = __getattr__(_name)
