"""limitsim: infinite-width-then-depth limits of deep residual networks.

Implements the theory of *Tensor Programs VI: Feature Learning in Infinite-Depth Neural
Networks* (Yang, Yu, Zhu, Hayou 2023): depthwise parametrizations and their classification,
kernels at initialization (route R1), and training routes compared in ``theory/algorithms.md``.
"""

from importlib.metadata import PackageNotFoundError, version

from limitsim.classification import Classification, classify
from limitsim.depth import depth_limit
from limitsim.finite import train_finite, train_finite_batch
from limitsim.kernels import depth_limit_kernels, init_kernels
from limitsim.linear_depth import linear_depth_limit
from limitsim.linear_limit import linear_limit
from limitsim.nonlinearities import Nonlinearity, nonlinearities, nonlinearity
from limitsim.parametrization import Parametrization
from limitsim.particles import simulate_limit
from limitsim.run import Record, Recorded, Run
from limitsim.store import open_store
from limitsim.sweep import Grid, point_seed, run_sweep
from limitsim.task import Task

try:
    __version__ = version("limitsim")
except PackageNotFoundError:  # pragma: no cover - source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = [
    "Classification",
    "Grid",
    "Nonlinearity",
    "Parametrization",
    "Record",
    "Recorded",
    "Run",
    "Task",
    "__version__",
    "classify",
    "depth_limit",
    "depth_limit_kernels",
    "init_kernels",
    "linear_depth_limit",
    "linear_limit",
    "nonlinearities",
    "nonlinearity",
    "open_store",
    "point_seed",
    "run_sweep",
    "simulate_limit",
    "train_finite",
    "train_finite_batch",
]
